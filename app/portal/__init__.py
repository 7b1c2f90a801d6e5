"""The customer-facing blueprint: link landing, step-up, bill page, PDF, language switch."""
