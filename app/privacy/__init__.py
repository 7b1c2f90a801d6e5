"""Personal data kept only as long as needed (docs/privacy.md).

- `rules`: the law as data: per country, how long bookkeeping law keeps an invoice and whether the
  buyer's name and address must stay on the kept copy; the default retention of everything else.
- `models`: a creditor's retention period (`PrivacySettings`) and what was done to which record
  (`PrivacyMark`: an invoice or customer minimised, a customer anonymised), the run's memory.
- `holdings`: every table that holds data about a customer, how to find a customer's (or an
  invoice's) rows in it, what is exported and what minimisation does to it. A test walks the
  models so that a new table about customers cannot be forgotten.
- `services`: due invoices, minimisation, the export, the erasure plan and erasure. Add and flush.
- `worker`: `flask privacy run`'s loop, one transaction per batch (it commits).
- `pdf`: the export as a readable PDF (WeasyPrint).
"""
