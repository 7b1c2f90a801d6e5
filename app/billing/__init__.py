"""Billing: customers, invoices and their lines, the invoice state machine, the invoice PDF."""
