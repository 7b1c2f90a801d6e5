"""Creditors: the tenants. Brand, bank account, reference scheme, API keys."""
