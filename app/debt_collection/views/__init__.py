"""Debt collection's pages: the partner API (`api`) and the case file's signed PDF address (`pdf`)."""
