"""Payments: attempts at providers, money received, provider notifications; the gateways."""
