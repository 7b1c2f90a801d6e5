"""Letters: the dunning messages that go by post, printed as A4 PDFs in batches for a print-and-mail
service, and printed again when an agent asks.

- `models`: `LetterPrint`, each printing of a letter (its batch, link, pages, SHA-256, file name and
  the facts it was made from).
- `document`: what a letter says (`facts_for`: a JSON snapshot of the step's text in the customer's
  language, each bill with its fees and interest, the deadline, the creditor's bank account and
  references, the EPC QR payloads), where the address goes (`window_for`: DIN 5008 form B, or the
  Nordic C5/E65 window; docs/dunning/letters.md) and the PDF (`render_letter`: WeasyPrint, the
  invoice PDF's typography, fonts embedded, nothing fetched, the same bytes for the same facts).
- `batch`: the print run (`print_batch`: one PDF per letter due, a fresh short-code link for each,
  the letter marked printed), `reprint_batch` (a batch's files made again, byte for byte, from what
  was stored), `request_reprint` (an agent's "print again": into the next batch, with a new link),
  `copy_of` (the latest print again, for the back office's download).
- `cli`: `flask letters batch --date D --out DIR [--creditor SLUG] [--reprint-batch]`.

Every function adds and flushes; the command (or the back office's view) commits.
"""
