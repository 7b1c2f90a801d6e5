"""Bank transfers: statements and giro files imported, entries matched to invoices, the rest kept for agents."""
