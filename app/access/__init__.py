"""Who may see a bill, shared by every customer blueprint (the portal, support, self-service, the
contact details): the grants an opened link leaves in the browser (`grants`), the bill's
one-statement access read and the step-up's check (`services`), and the guard with its one neutral
answer (`guard.bill_required`). It imports no blueprint and no feature above payments."""
