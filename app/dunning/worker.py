"""The dunning run (`flask dunning run`, cron every few minutes) and its preview: it owns its
transactions, one per batch of customers, as the outbox dispatcher does.

Per creditor with a plan: enrol open bills in the default plan (`engine.enrol`, committed in
slices), list the customers with a bill due (one index range scan), and take them in batches of
`batch_size` customers: claim (their rows `FOR UPDATE SKIP LOCKED`, so two runners share the work
and never decide one customer twice), decide, write, commit. A batch that fails is rolled back and
counted; the next goes on. Killed at any point, a run leaves whole batches or nothing of one; the
next run takes up what is left and sends nothing twice (the notices' unique key).

`preview` decides the same way and writes nothing (everything, the enrolment too, is rolled back).
"""

from __future__ import annotations

import logging
import time as clock_time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, time

from sqlalchemy import select

from app.creditors.models import Creditor
from app.dunning import engine
from app.dunning.engine import Clock, Decision
from app.dunning.models import Plan
from app.extensions import db

log = logging.getLogger(__name__)

DEFAULT_AT = time(10, 0)  # --date D is D at this time, local: the clock quiet hours are read at
BATCH_SIZE = 1000  # customers per transaction


@dataclass
class RunReport:
    creditors: int = 0
    enrolled: int = 0
    customers: int = 0
    bills: int = 0
    messages: int = 0
    notices: int = 0
    letters: int = 0
    fees: int = 0
    failed_batches: int = 0
    by_channel: Counter = field(default_factory=Counter)
    waiting: Counter = field(default_factory=Counter)  # reason -> bills
    stopped: Counter = field(default_factory=Counter)

    def add(self, decisions: Sequence[Decision], written: engine.Written | None) -> None:
        self.customers += len(decisions)
        for decision in decisions:
            for outcome in decision.outcomes:
                self.bills += 1
                if outcome.action == "wait":
                    self.waiting[outcome.reason] += 1
                elif outcome.action == "stop":
                    self.stopped[outcome.reason] += 1
        if written is not None:
            self.messages += written.messages
            self.notices += written.notices
            self.letters += written.letters
            self.fees += written.fees
            self.by_channel.update(written.by_channel)

    def summary(self) -> str:
        channels = ", ".join(f"{n} by {channel}" for channel, n in sorted(self.by_channel.items())) or "none"
        return (f"{self.messages} messages ({channels}) carrying {self.notices} steps, {self.fees} fee lines; "
                f"{sum(self.waiting.values())} bills wait, {sum(self.stopped.values())} stopped; "
                f"{self.customers} customers, {self.bills} bills decided; {self.enrolled} enrolled"
                + (f"; {self.failed_batches} batches failed" if self.failed_batches else ""))


def creditors_with_plans(slug: str | None = None) -> list[Creditor]:
    query = select(Creditor).where(Creditor.id.in_(select(Plan.creditor_id))).order_by(Creditor.id)
    if slug is not None:
        query = query.where(Creditor.slug == slug)
    return list(db.session.scalars(query))


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def run(*, on: date | None = None, at: time = DEFAULT_AT, slug: str | None = None, batch_size: int = BATCH_SIZE,
        progress: Callable[[str], None] | None = None) -> RunReport:
    """Decide and send every step due (see the module's docstring). Commits per batch."""
    report = RunReport()
    creditors = [(c.id, c.slug, c.country) for c in creditors_with_plans(slug)]
    db.session.commit()
    last_print = clock_time.monotonic()
    for creditor_id, creditor_slug, country in creditors:
        report.creditors += 1
        clock = Clock.of(country, on, at)
        creditor = db.session.get(Creditor, creditor_id)
        assert creditor is not None  # listed a moment ago; creditors are not deleted under a run
        ctx = engine.load_context(creditor)
        while True:
            enrolled = engine.enrol(ctx, clock.today)
            db.session.commit()
            report.enrolled += enrolled
            if enrolled < 5000:
                break
        customers = engine.candidate_customers(creditor_id, clock.today)
        db.session.commit()
        done = 0
        for chunk in _chunks(customers, batch_size):
            try:
                batch = engine.claim(ctx, chunk, clock.today, lock=True)
                decisions = engine.decide(ctx, batch, clock)
                written = engine.write(ctx, decisions, clock)
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.exception("dunning batch of %s customers of %s failed", len(chunk), creditor_slug)
                report.failed_batches += 1
                continue
            report.add(decisions, written)
            done += len(chunk)
            if progress and clock_time.monotonic() - last_print >= 2:
                last_print = clock_time.monotonic()
                progress(f"{creditor_slug}: {done}/{len(customers)} customers, {report.messages} messages so far")
        if progress:
            progress(f"{creditor_slug} ({clock.today.isoformat()}): {len(customers)} customers with a bill due")
    return report


@dataclass
class PreviewLine:
    number: str
    customer: str
    action: str  # send | wait | stop
    step: str = ""  # "2 reminder"
    channel: str = ""
    fee: int = 0
    reason: str | None = None
    next_on: date | None = None


def preview(creditor: Creditor, *, on: date | None = None, at: time = DEFAULT_AT,
            batch_size: int = BATCH_SIZE) -> tuple[RunReport, list[PreviewLine]]:
    """What a run would do now for this creditor, bill by bill, and why the rest waits. Changes nothing."""
    report, lines = RunReport(), []
    clock = Clock.of(creditor.country, on, at)
    try:
        ctx = engine.load_context(creditor)
        while engine.enrol(ctx, clock.today) == 5000:
            pass
        for chunk in _chunks(engine.candidate_customers(creditor.id, clock.today), batch_size):
            decisions = engine.decide(ctx, engine.claim(ctx, chunk, clock.today, lock=False), clock)
            report.add(decisions, None)
            for decision in decisions:
                if decision.channel:
                    report.messages += 1
                    report.by_channel[decision.channel] += 1
                lines += [_line(ctx, decision, outcome) for outcome in decision.outcomes]
            report.notices += sum(len(decision.sending) for decision in decisions if decision.channel)
    finally:
        db.session.rollback()
    return report, lines


def _line(ctx: engine.Context, decision: Decision, outcome: engine.Outcome) -> PreviewLine:
    bill = outcome.bill
    plan = ctx.plans.get(bill.dunning_plan_id)
    step = outcome.step or (plan.steps.get(bill.dunning_next_position) if plan else None)
    sending = outcome.action == "send"
    return PreviewLine(bill.number, decision.customer.name, outcome.action,
                       f"{step.position} {step.kind}" if step else "", decision.channel or "" if sending else "",
                       step.fee if step and sending else 0, outcome.reason, None if sending else outcome.next_on)
