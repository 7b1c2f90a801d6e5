"""Targeting and the tact rules (app.content.targeting): pure functions, no database."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import date

import pytest

from app.content.targeting import Audience, BlockView, VariantView, assign, bill_statuses, choose, rules_allow

TODAY = date(2026, 12, 6)
TEXTS = {"en": {"title": "Hello", "html": "<p>Hi</p>", "cta": "Go"}, "nb": {"title": "Hei", "html": "", "cta": "Gå"}}


def block(id_=1, kind="information", **changes) -> BlockView:
    fields = {"id": id_, "public_id": f"blk_{id_}", "kind": kind, "placements": ("bill", "receipt"), "priority": 0,
              "starts_on": None, "ends_on": None, "action": "none", "target_url": None, "targeting": {},
              "cap_days": None, "image_version": None, "livemode": True,
              "variants": (VariantView(id_ * 10, "A", 1, TEXTS),)}
    fields.update(changes)
    return BlockView(**fields)


def audience(**changes) -> Audience:
    fields = {"placement": "bill", "locale": "en", "country": "NO", "statuses": frozenset({"not_due", "due_soon"}),
                  "amount": 50000, "bills": 1}
    fields.update(changes)
    return Audience(**fields)


def shown(blocks, who, most=5):
    return [s.block.id for s in choose(blocks, who, today=TODAY, max_blocks=most, customer_key="7")]


# --- tact ---------------------------------------------------------------------------------------------------

KINDS = [block(1, "information"), block(2, "engagement"), block(3, "offer")]


def test_a_customer_in_good_standing_sees_every_kind():
    assert shown(KINDS, audience()) == [1, 2, 3]


@pytest.mark.parametrize("difficulty", ["in_difficulty", "no_offers"])
def test_offers_never_reach_a_customer_in_difficulty_or_who_said_no(difficulty):
    assert shown(KINDS, audience(**{difficulty: True})) == [1, 2]


def test_before_payment_on_an_overdue_bill_only_information_shows():
    who = audience(statuses=frozenset({"overdue"}), overdue_unpaid=True)
    assert shown(KINDS, who) == [1]
    # the creditor's rules cannot override it
    assert shown([block(3, "offer", targeting={"statuses": ["overdue"]})], who) == []


def test_at_most_the_set_number_of_blocks_the_highest_priority_first():
    blocks = [block(1, priority=1), block(2, priority=9), block(3, priority=5)]
    assert shown(blocks, audience(), most=2) == [2, 3]
    assert shown(blocks, audience(), most=0) == []


def test_the_cap_per_customer_over_time():
    capped = block(1, cap_days=3)
    assert shown([capped], audience(seen_days={"1": 2})) == [1]
    assert shown([capped], audience(seen_days={"1": 3})) == []


def test_schedule_placement_mode_and_language():
    assert shown([block(1, starts_on=date(2026, 12, 7))], audience()) == []
    assert shown([block(1, ends_on=date(2026, 12, 5))], audience()) == []
    assert shown([block(1, starts_on=TODAY, ends_on=TODAY)], audience()) == [1]
    assert shown([block(1, placements=("email",))], audience()) == []
    assert shown([block(1, livemode=False)], audience()) == []
    assert shown([block(1, livemode=False)], audience(livemode=False)) == [1]
    assert shown([block(1)], audience(locale="de")) == []  # no German text: not shown
    assert choose([block(1)], audience(locale="nb"), today=TODAY, max_blocks=2, customer_key="7")[0].title == "Hei"


# --- the creditor's rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("rules", "who", "expected"), [
    ({"countries": ["NO"]}, {}, True),
    ({"countries": ["DE", "SE"]}, {}, False),
    ({"languages": ["nb"]}, {}, False),
    ({"languages": ["en", "nb"]}, {}, True),
    ({"statuses": ["due_soon"]}, {}, True),
    ({"statuses": ["overdue"]}, {}, False),
    ({"statuses": ["plan"]}, {"statuses": frozenset({"overdue", "plan"})}, True),
    ({"statuses": ["paid"]}, {"statuses": frozenset({"paid"})}, True),
    ({"amount_min": 10000, "amount_max": 50000}, {}, True),
    ({"amount_min": 50001}, {}, False),
    ({"amount_max": 49999}, {}, False),
    ({"tags": ["vip", "fibre"]}, {"tags": frozenset({"fibre"})}, True),
    ({"tags": ["vip"]}, {"tags": frozenset({"fibre"})}, False),
    ({"tags": ["vip"]}, {}, False),
    ({"product_codes": ["FIBRE-500"]}, {"product_codes": frozenset({"FIBRE-500", "TV"})}, True),
    ({"product_codes": ["FIBRE-500"]}, {"product_codes": frozenset({"TV"})}, False),
    ({"bills_min": 2}, {}, False),
    ({"bills_min": 2}, {"bills": 3}, True),
    ({"bills_max": 1}, {"bills": 3}, False),
    ({"channels": ["sms"]}, {"channel": "sms"}, True),
    ({"channels": ["sms", "letter"]}, {"channel": "email"}, False),
    ({"channels": ["email"]}, {}, False),  # a grant given before the channel was kept in it
    ({}, {"channel": "api"}, True),
    ({}, {}, True),
])
def test_each_rule(rules, who, expected):
    assert rules_allow(rules, audience(**who)) is expected


def test_bill_statuses():
    assert bill_statuses(paid=False, overdue=False, days_to_due=20, plan=False) == {"not_due"}
    assert bill_statuses(paid=False, overdue=False, days_to_due=6, plan=False) == {"not_due", "due_soon"}
    assert bill_statuses(paid=False, overdue=True, days_to_due=-3, plan=True) == {"overdue", "plan"}
    assert bill_statuses(paid=True, overdue=False, days_to_due=-3, plan=False) == {"paid"}


# --- variants --------------------------------------------------------------------------------------------


def experiment(*weights, stopped=()) -> BlockView:
    variants = tuple(VariantView(i, name, w, TEXTS) for i, (name, w) in enumerate(zip("ABC", weights, strict=False))
                     if name not in stopped)
    return block(1, variants=variants)


def test_each_customer_always_gets_the_same_variant():
    found = experiment(1, 1)
    for customer in range(200):
        first = assign(found, str(customer))
        assert all(assign(found, str(customer)) == first for _ in range(3))


def test_variants_are_assigned_by_weight():
    counts = Counter(assign(experiment(1, 3), str(customer)).name for customer in range(4000))
    assert 0.70 < counts["B"] / 4000 < 0.80


def test_stopping_a_variant_moves_only_its_own_customers():
    both, only_a = experiment(1, 1, 1), experiment(1, 1, 1, stopped=("B",))
    for customer in map(str, range(500)):
        before = assign(both, customer).name
        after = assign(only_a, customer).name
        if before != "B":
            assert after == before
        else:
            assert after in ("A", "C")


def test_no_running_variant_no_block():
    assert assign(block(1, variants=()), "7") is None
    assert shown([replace(block(1), variants=(VariantView(1, "A", 0, TEXTS),))], audience()) == []
