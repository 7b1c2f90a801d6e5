"""Disputes, promises to pay, deferrals and instalment plans: everything that pauses dunning."""
