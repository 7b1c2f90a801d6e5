"""Payments' own pages: providers' notifications (webhooks) and the test-mode simulator's hosted page."""
