"""Dunning: the portal sends the reminders itself (placeholder docstring, rewritten below)."""
