"""Dunning: the portal sends the reminders itself, by the channels each customer can be reached on, on a
lawful schedule, and stops when the customer has arranged something.

Layer "the customer's choices" (beside support and resolutions): it imports creditors, outbox,
billing, links, support and resolutions; debt collection may import it, never the reverse.

Modules and what each offers the features built on them:

- `models`: `Plan` (versioned, never changed once saved) and `Step`; `Settings` (a creditor's
  languages, the cap, quiet hours, Germany's consumer default notice); `Notice` (one per invoice
  and step, unique per (invoice, plan, position)); `Message` (one per message to a customer,
  carrying one notice or several; its text as sent); `Letter` (a message by letter, waiting for
  the printer); `ContactChange` (a new e-mail or mobile waiting for its code). The enums:
  `StepKind`, `Anchor`, `Channel` (= `billing.models.ReminderChannel`), `Jurisdiction`,
  `NoticeStatus`, `MessageStatus`, `LetterStatus`, `ContactKind`.
- `jurisdictions`: the law as data (dated values with their sources: the inkassosats, the German
  base rate, the reminder cost cap, the EUR 40 flat fee), `check_plan` (each broken rule a
  `Violation` naming its section and field), `default_interest_amount` (pure).
- `templates`: step texts with named variables (`VARIABLES`), `unknown_variables`, `fill` (never a
  format string), `consequences(jurisdiction)`, `render`.
- `settings`: `settings_of`, `save_settings`, `languages_of`, `consumer_default_notice(creditor)`
  (for the bill page and the PDF: say that consumers are in default 30 days after the due date).
- `services` (add and flush; the caller commits):
  plans: `parse_plan`, `check_plan`, `save_plan(creditor, data, actor=)` (refused with InvalidData by
  field, nothing saved), `plans_of`, `find_plan`, `default_plan`, `set_default`, `plan_as_data`,
  `preview_step(creditor, plan_or_data, position, locale, invoice=)`, `shipped_plan(jurisdiction)`;
  the schedule: `assign_plan`, `reschedule(invoice, today)` (call it when a bill comes back: a
  refund reopened it, a recall from collection), `exclude_invoice`, `exclude_customer`,
  `next_step(invoice)` (what happens next and when: the bill page and the API),
  `hand_off_not_before(invoice_id)` (the hand-off asks this: the day after the deadline of the
  notice that started the hand-off clock); contact points: `update_contact_points(customer, data)`
  (validated by field: e-mail, E.164 mobile, postal address, preferences, consents),
  `check_address`; agents: `skip_next_step`, `postpone_next_step` (with a reason; the view checks the
  role and audits); `fall_back(message_or_notice, reason)` (a bounce or a failed SMS: the next
  channel, or a letter; provider status callbacks call it); `letters_pending(creditor_id)`.
- `outlook`: what happens next to a bill, in facts (the bill page and the API): the next step that is
  not a nudge, its day, fee and channel, the last notice's deadline, the hand-off's first day, why
  reminders wait; `next_step(invoice, today)` (nudges included), `has_open_question`,
  `default_notice_date(invoice)` (Germany's § 286(3) notice on the page and the PDF).
- `options`: what a creditor says through the API and the import: a plan by name, exclusions, the
  contact body (`update_contact`, its problems named as the body names them).
- `contact`: the customer's own contact details (`details_of`, masked; `request_change` and
  `confirm_change`: a new e-mail or mobile by a 6-digit code, hashed, 15 minutes, 5 tries,
  rate-limited; `save_preferences`), the unsubscribe link (`unsubscribe_token`, `unsubscribe_url`,
  `unsubscribe`) and the code's outbox renderers ("contact.code"). Its pages: `views`, `forms`
  (docs/dunning/contact-points.md).
- `variants`: experiments on a step's text: `assign(step_id, customer_id, variants)` (weighted rendezvous
  hashing: the same customer always gets the same variant; stopping one moves only its customers),
  `texts_for`, `stop`. The variants (`StepVariant`) are saved with their plan version; the run records
  the key on the `Message` (docs/dunning/console.md).
- `renewal`: "send me a new link" (`send_new_link`: the preferred channel that works, the bill's
  daily allowance, the outbox; the old links stay).
- `interest`: German default interest on an invoice: `default_begins`, `default_interest(invoice,
  today)` (minor units, the rates and the day it runs from), `interest_due`.
- `calendar`: quiet hours on the customer's clock, Sundays and public holidays (`holidays`).
- `engine`: the run's set-wise decisions and writes for one batch of customers (no commits);
  `KIND` ("dunning.message", the outbox kind), `reason_words`.
- `worker`: `run()` (`flask dunning run`: commits per batch, safe in parallel) and `preview()`.
- `messages`: the outbox renderers of "dunning.message" (e-mail, SMS) and their batch preparer
  (`prepare`: what a dispatcher's batch needs, read at once), registered by the factory; each issues a
  fresh signed link at delivery and keeps the text as sent on the `Message`.
- `delivery`: what became of a message after it left (connected by the factory to `outbox.feedback`'s
  signals and `links.services.link_opened`): progress (queued, sent, delivered, opened: the first
  opening of the link it carried), never backwards; a failure or bounce calls `fall_back`; STOP and
  START replies (and Twilio's 21610) set and clear `sms_stopped_at`.
- `cli`: `flask dunning run | preview | plans … | exclude | settings`.
- `letters/`: the letter PDF (`document`: what it says, the envelope window, the deterministic PDF), the
  print run (`batch`: `print_batch`, `reprint_batch`, `request_reprint`, `copy_of`, `letters_of`),
  `LetterPrint` (each printing), `flask letters batch`. Its docstring and docs/dunning/letters.md say more.

Seams left for the next changes: the bill page's contact form and the code confirmation write
`ContactChange` rows and call `update_contact_points` (done: `contact`); unsubscribe links (done:
`contact`, `messages`) and SMS STOP (done: `delivery`) set `email_unsubscribed_at` / `sms_stopped_at`;
provider status callbacks set the outbox row's `provider_status` and call `fall_back` (done:
`outbox.feedback`, `delivery`); the print run (`letters`) prints pending letters, fills `pages`,
`sha256`, `batch`, `printed_at` and `Message.subject/body` (done:
`letters/`);
the bill page, the API and the back office read `outlook`, `Notice`, `Message` (done: the bill page's
"what happens next" and other bills, the API's `dunning`, the back office's panel and timeline); the
hand-off asks `hand_off_not_before` (done: `debt_collection.services.check`).
"""
