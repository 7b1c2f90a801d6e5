"""Debt collection: the hand-off late in the process, the standard case file, signed and reliable
delivery to any partner through the outbox, and the partner API."""
