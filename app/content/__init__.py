"""Creditor content blocks (docs/content.md): what the creditor says to its customers on the bill page,
the receipt and reminder e-mails. `models` (blocks, variants, exposures, leads), `markup` (the safe
Markdown subset, cleaned by nh3), `targeting` (the rules and the tact rules, pure), `services` (writing
blocks, choosing them from a per-process copy, the signed references, impressions, clicks, leads),
`results` (an experiment's figures with their intervals); its web half: `views` (the click redirect,
the impression, "I am interested", "no offers, please", images)."""
