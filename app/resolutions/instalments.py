"""Instalment plans' arithmetic: the offers a bill's rules allow (amounts, interest, dates) and how
far a running plan has come. Reading only; `resolutions.plans` records plans."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from app.billing.models import Invoice
from app.core.dates import local_today
from app.money import round_half_up
from app.resolutions.credit_cost import CreditCost, credit_cost
from app.resolutions.models import Instalment, Resolution
from app.resolutions.offer_rules import plans_fit

PLAN_FIRST_DUE_DAYS = 14  # the first instalment is due in two weeks (or on the due date, if later)


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the month's last day when it is shorter (31 Jan -> 28 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class PlanOffer:
    months: int
    principal: int  # the balance today
    fee: int
    interest: int
    schedule: tuple[tuple[date, int], ...]  # (due date, amount)
    offered_on: date | None = None  # the day of the offer: the APR counts from it

    @property
    def total(self) -> int:
        """What the customer pays in all: the sum of the schedule (the balance, the fee and the interest)."""
        return sum(amount for _day, amount in self.schedule)

    @property
    def instalment(self) -> int:
        """The usual instalment (the first one carries any remainder)."""
        return self.schedule[-1][1]

    @property
    def first(self) -> int:
        return self.schedule[0][1]

    @property
    def even(self) -> bool:
        """Every instalment the same amount."""
        return len({amount for _day, amount in self.schedule}) == 1

    @property
    def cost(self) -> CreditCost:
        """The total cost of credit and the APR of this plan, counted from the day of the offer."""
        return credit_cost(self.principal, self.offered_on or self.schedule[0][0], self.schedule)


def plan_interest(principal: int, annual_bp: int, months: int) -> int:
    """Interest on a balance paid down in equal monthly parts: each month's interest is on what is
    still owed that month, which sums to principal × rate × (months + 1) / 24. Half up."""
    return round_half_up(Decimal(principal) * annual_bp * (months + 1) / (10000 * 24))


def plan_first_due(invoice: Invoice, today: date) -> date:
    return max(invoice.due_date, today + timedelta(days=PLAN_FIRST_DUE_DAYS))


def plan_offer(invoice: Invoice, months: int, today: date) -> PlanOffer:
    """The plan of `months` monthly instalments for the balance today, with the creditor's fee and
    interest; the first instalment carries the remainder of the division."""
    creditor = invoice.creditor
    principal = invoice.balance
    interest = plan_interest(principal, creditor.plan_interest_bp, months)
    total = principal + creditor.plan_fee + interest
    part, remainder = divmod(total, months)
    amounts = [part + remainder] + [part] * (months - 1)
    first_due = plan_first_due(invoice, today)
    schedule = tuple((add_months(first_due, k), amount) for k, amount in enumerate(amounts))
    return PlanOffer(months, principal, creditor.plan_fee, interest, schedule, today)


def plan_offers(invoice: Invoice, today: date) -> list[PlanOffer]:
    """The plans the creditor's rules allow for this balance: 2 to plan_max_months monthly
    instalments, none below plan_min_instalment; none at all for a bill plans do not fit (its kind,
    a balance below the least one: `offer_rules`)."""
    creditor = invoice.creditor
    if invoice.balance <= 0 or creditor.plan_max_months < 2 or not plans_fit(invoice):
        return []
    offers = []
    for months in range(2, creditor.plan_max_months + 1):
        offer = plan_offer(invoice, months, today)
        if offer.instalment < max(creditor.plan_min_instalment, 1):
            break  # more months only make the instalments smaller
        offers.append(offer)
    return offers


@dataclass(frozen=True)
class InstalmentState:
    instalment: Instalment
    paid: int  # of this instalment's amount
    state: str  # paid | part_paid | due | overdue

    @property
    def left(self) -> int:
        return self.instalment.amount - self.paid


def plan_progress(plan: Resolution, invoice: Invoice, today: date) -> list[InstalmentState]:
    """Which instalments the payments made since the plan began cover, in order."""
    paid = max(invoice.amount_paid - (plan.paid_before or 0), 0)
    states = []
    for instalment in plan.instalments:
        covered = min(paid, instalment.amount)
        paid -= covered
        if covered >= instalment.amount:
            state = "paid"
        elif instalment.due_date < today:
            state = "overdue"
        else:
            state = "part_paid" if covered else "due"
        states.append(InstalmentState(instalment, covered, state))
    return states


def plan_cost(plan: Resolution, country: str) -> CreditCost:
    """The total cost of credit and the APR of a running plan: the balance it took over (its total less
    its fee and interest) drawn down on the day it was recorded (a plan an agent granted: the day it
    was asked for, which can only lower the rate shown by a few days' worth)."""
    schedule = [(i.due_date, i.amount) for i in plan.instalments]
    principal = (plan.amount or 0) - (plan.fee or 0) - (plan.interest or 0)
    made = local_today(country, plan.created_at) if plan.created_at else schedule[0][0]
    return credit_cost(principal, made, schedule)


def next_instalment(plan: Resolution, invoice: Invoice, today: date) -> InstalmentState | None:
    return next((s for s in plan_progress(plan, invoice, today) if s.state != "paid"), None)


def missed_instalment(plan: Resolution, invoice: Invoice, today: date) -> InstalmentState | None:
    """The first instalment still unpaid after its due date plus the creditor's grace days."""
    grace = timedelta(days=invoice.creditor.grace_days)
    return next(
        (s for s in plan_progress(plan, invoice, today)
         if s.state == "overdue" and s.instalment.due_date + grace < today),
        None,
    )
