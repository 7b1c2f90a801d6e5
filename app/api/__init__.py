"""Creditor JSON API v1."""
