"""Running the portal: metrics (Prometheus), health and readiness, JSON logs, periodic runs' last success.

Its domain half (`metrics`, `logs`, `jobs`) sits in the foundation layer: payments, the outbox and the
workers count through it. Its web half (`views`) serves `/healthz`, `/readyz` and `/metrics`, and reads
the outbox and the notifications at scrape time. See docs/operations.md."""
