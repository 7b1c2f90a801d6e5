"""The cost of an instalment plan as consumer credit law asks it to be shown: the total cost of
credit and the annual percentage rate of charge (APR; "effektiv rente" in Norway, "effektiver
Jahreszins" in Germany). Pure: dates and minor units in, figures out. docs/instalments.md.

The APR is the rate X that makes the credit drawn down today equal to the instalments, each
discounted to today (Directive 2008/48/EC, Annex I; the same equation in Directive (EU) 2023/2225,
Annex III; Norway: finansavtaleloven § 1-7 (5) with finansavtaleforskriften § 1-4; Germany: § 6
PAngV and its annex):

    Σ_k C_k (1 + X)^(-s_k)  =  Σ_l D_l (1 + X)^(-t_l)

C_k: the drawdowns (here one: the balance the plan takes over, today, s = 0); D_l: the instalments;
t_l: the years from today to the l-th instalment, counted in days / 365 (Annex I, remark (c)).
X is shown rounded to one decimal place (Annex I, remark (d)).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

DAYS_IN_YEAR = 365  # Annex I, remark (c): a year has 365 days (leap years may count 366)
SOURCES = {
    "EU": "Directive 2008/48/EC, Article 19 and Annex I (from 20 November 2026: Directive (EU) 2023/2225, "
          "Article 31 and Annex III)",
    "NO": "Finansavtaleloven (LOV-2020-12-18-146) § 1-7 (5) and finansavtaleforskriften "
          "(FOR-2022-09-19-1612) § 1-4: definition and formula of effektiv rente",
    "DE": "§ 6 Preisangabenverordnung (PAngV) and its annex (effektiver Jahreszins); § 491a BGB with "
          "Art. 247 EGBGB",
    "IE": "European Communities (Consumer Credit Agreements) Regulations 2010 (S.I. No. 281/2010)",
}


@dataclass(frozen=True)
class CreditCost:
    credit: int  # what the plan takes over (the balance today), minor units
    total_repaid: int  # the sum of the instalments
    apr: Decimal  # percent a year, one decimal place

    @property
    def cost(self) -> int:
        """The total cost of credit: everything paid beyond the credit (the plan's fee and interest)."""
        return self.total_repaid - self.credit


def _present_value(rate: float, today: date, schedule: Sequence[tuple[date, int]]) -> float:
    return sum(amount * (1.0 + rate) ** (-((day - today).days / DAYS_IN_YEAR)) for day, amount in schedule)


def annual_percentage_rate(credit: int, today: date, schedule: Sequence[tuple[date, int]]) -> Decimal:
    """The X of Annex I for one drawdown of `credit` today and the `schedule` of (date, amount), in
    percent, one decimal place (half up). 0.0 when the instalments add up to no more than the credit."""
    total = sum(amount for _day, amount in schedule)
    if credit <= 0 or total <= credit:
        return Decimal("0.0")
    low, high = 0.0, 1.0
    while _present_value(high, today, schedule) > credit:  # the present value falls as the rate rises
        high *= 2
        if high > 1e6:
            break
    for _step in range(200):  # bisection: far below the 0.05 % that rounding to one decimal needs
        middle = (low + high) / 2
        if _present_value(middle, today, schedule) > credit:
            low = middle
        else:
            high = middle
    return Decimal(repr((low + high) / 2 * 100)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def credit_cost(credit: int, today: date, schedule: Sequence[tuple[date, int]]) -> CreditCost:
    total = sum(amount for _day, amount in schedule)
    return CreditCost(credit, total, annual_percentage_rate(credit, today, schedule))
