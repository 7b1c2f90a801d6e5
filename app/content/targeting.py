"""Who sees a block: the creditor's targeting rules, and the tact rules no block can override. Pure
functions over what the page already knows (`Audience`): no database, no Flask.

Tact (docs/content.md):
- an offer never reaches a customer in difficulty: an overdue bill past its first reminder, an open
  dispute, a promise, a deferral, an instalment plan (running or asked for), a bill in collection;
  nor a customer who said "no offers, please";
- before payment on an overdue bill only information shows (no engagement, no offer);
- at most the creditor's number of blocks per page (`max_blocks`), the highest priority first, and a
  block reaches one customer on at most its `cap_days` days.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

#: The bill states a rule may name.
STATUSES = ("not_due", "due_soon", "overdue", "paid", "plan")
#: A bill due within this many days (today included) is "due soon".
DUE_SOON_DAYS = 7
#: The rule keys and what each holds.
LIST_RULES = ("countries", "languages", "statuses", "tags", "product_codes", "channels")
NUMBER_RULES = ("amount_min", "amount_max", "bills_min", "bills_max")


@dataclass(frozen=True)
class Audience:
    """What is known, when a block may be shown, of the customer and the bill."""

    placement: str
    locale: str
    country: str
    statuses: frozenset[str]
    amount: int  # the balance (what a paid bill was: its total), minor units
    bills: int  # the customer's open bills at the creditor, this one included
    livemode: bool = True
    tags: frozenset[str] = frozenset()
    product_codes: frozenset[str] = frozenset()
    in_difficulty: bool = False
    overdue_unpaid: bool = False
    no_offers: bool = False
    seen_days: Mapping[str, int] = field(default_factory=dict)  # {block id as text: days seen}
    # The channel of the link the customer came by (links.models.CHANNELS; an e-mail's blocks: "email");
    # None when not known (a grant given before the channel was kept in it): no channel rule takes it.
    channel: str | None = None


@dataclass(frozen=True)
class VariantView:
    id: int
    name: str
    weight: int
    texts: Mapping[str, Mapping[str, str]]


@dataclass(frozen=True)
class BlockView:
    """A block as the pages use it: plain data, kept per process (`services.active_blocks`)."""

    id: int
    public_id: str
    kind: str
    placements: tuple[str, ...]
    priority: int
    starts_on: date | None
    ends_on: date | None
    action: str
    target_url: str | None
    targeting: Mapping[str, Any]
    cap_days: int | None
    image_version: str | None
    livemode: bool
    variants: tuple[VariantView, ...]  # the running ones


@dataclass(frozen=True)
class Shown:
    """A block chosen for one customer: its variant and the texts in the page's language."""

    block: BlockView
    variant: VariantView
    title: str
    html: str
    cta: str


def bill_statuses(*, paid: bool, overdue: bool, days_to_due: int, plan: bool) -> frozenset[str]:
    """The rule states a bill is in."""
    found = set()
    if paid:
        found.add("paid")
    elif overdue:
        found.add("overdue")
    else:
        found.add("not_due")
        if days_to_due < DUE_SOON_DAYS:
            found.add("due_soon")
    if plan:
        found.add("plan")
    return frozenset(found)


def tact_allows(kind: str, audience: Audience) -> bool:
    """Whether a block of this kind may be shown at all, whatever its rules say."""
    if kind == "information":
        return True
    if audience.overdue_unpaid:
        return False  # before payment on an overdue bill: information only
    if kind == "offer":
        return not (audience.in_difficulty or audience.no_offers)
    return True


def _any(wanted: Iterable[str] | None, have: Iterable[str]) -> bool:
    wanted = [w for w in (wanted or ()) if w]
    return not wanted or bool(set(wanted) & set(have))


def rules_allow(rules: Mapping[str, Any], audience: Audience) -> bool:
    """Whether the creditor's targeting rules take this audience (an empty rule takes everyone)."""
    if not _any(rules.get("countries"), [audience.country]):
        return False
    if not _any(rules.get("languages"), [audience.locale]):
        return False
    if not _any(rules.get("statuses"), audience.statuses):
        return False
    if not _any(rules.get("tags"), audience.tags):
        return False
    if not _any(rules.get("product_codes"), audience.product_codes):
        return False
    if not _any(rules.get("channels"), [audience.channel] if audience.channel else []):
        return False
    lowest, highest = rules.get("amount_min"), rules.get("amount_max")
    if (lowest is not None and audience.amount < lowest) or (highest is not None and audience.amount > highest):
        return False
    fewest, most = rules.get("bills_min"), rules.get("bills_max")
    return not ((fewest is not None and audience.bills < fewest) or (most is not None and audience.bills > most))


def assign(block: BlockView, customer_key: str) -> VariantView | None:
    """The variant this customer gets: always the same one (rendezvous hashing by weight, so stopping a
    variant moves only its own customers), None when no variant runs."""
    best, best_score = None, math.inf
    for variant in block.variants:
        if variant.weight <= 0:
            continue
        digest = hashlib.sha256(f"{block.public_id}:{variant.name}:{customer_key}".encode()).digest()
        unit = (int.from_bytes(digest[:8], "big") + 1) / (2**64 + 1)  # in (0, 1)
        score = -math.log(unit) / variant.weight
        if score < best_score:
            best, best_score = variant, score
    return best


def choose(blocks: Sequence[BlockView], audience: Audience, *, today: date, max_blocks: int,
           customer_key: str) -> list[Shown]:
    """The blocks this customer sees here: running today, in this placement and mode, allowed by tact
    and the rules, under the cap, with a text in the page's language; the highest priority first, at
    most `max_blocks`."""
    shown: list[Shown] = []
    for block in sorted(blocks, key=lambda b: (-b.priority, b.id)):
        if len(shown) >= max(0, max_blocks):
            break
        if audience.placement not in block.placements or block.livemode != audience.livemode:
            continue
        if (block.starts_on and today < block.starts_on) or (block.ends_on and today > block.ends_on):
            continue
        if not tact_allows(block.kind, audience) or not rules_allow(block.targeting, audience):
            continue
        if block.cap_days is not None and audience.seen_days.get(str(block.id), 0) >= block.cap_days:
            continue
        variant = assign(block, customer_key)
        if variant is None:
            continue
        texts = variant.texts.get(audience.locale)
        if not texts or not texts.get("title"):
            continue  # no text in the customer's language: not shown
        shown.append(Shown(block, variant, texts["title"], texts.get("html", ""), texts.get("cta", "")))
    return shown
