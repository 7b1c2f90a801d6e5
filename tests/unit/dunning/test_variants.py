"""Experiments on a reminder step's text (issue 18, item 3): variants saved with the plan version and
checked as the step's text; each customer always gets the same variant (across calls here; across
processes in tests/functional/dunning/test_variant_processes.py), the variants' shares follow their
weights, stopping one moves only its customers; the run records the key on the message and the message
says the variant's text."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.dunning import services, variants
from app.dunning.models import Message, StepVariant
from app.errors import InvalidData
from app.extensions import db
from app.outbox.base import render
from app.outbox.models import OutboxMessage
from tests.unit.dunning.conftest import TODAY, bill, run


@dataclass(frozen=True)
class V:
    key: str
    weight: int


def test_the_same_customer_always_gets_the_same_variant():
    arms = [V("a", 1), V("b", 1), V("c", 2)]
    for customer_id in range(1, 200):
        first = variants.assign(7, customer_id, arms)
        assert all(variants.assign(7, customer_id, arms) == first for _ in range(3))
        assert variants.assign(7, customer_id, list(reversed(arms))) == first  # the order given does not matter
    assert variants.assign(7, 1, []) is None


def test_the_shares_follow_the_weights():
    arms = [V("a", 1), V("b", 3), V("c", 6)]
    n = 20_000
    counts = Counter(variants.assign(3, customer_id, arms) for customer_id in range(n))
    for arm in arms:
        share = counts[arm.key] / n
        assert abs(share - arm.weight / 10) < 0.015, (arm.key, share)
    other_step = Counter(variants.assign(4, customer_id, arms) for customer_id in range(2000))
    same = sum(variants.assign(3, c, arms) == variants.assign(4, c, arms) for c in range(2000))
    assert same < 2000 * 0.6 and other_step  # another step draws its own lots


def test_stopping_a_variant_moves_only_its_customers_by_the_remaining_weights():
    arms = [V("a", 1), V("b", 1), V("c", 2)]
    left = [V("b", 1), V("c", 2)]
    n = 12_000
    before = {c: variants.assign(9, c, arms) for c in range(n)}
    after = {c: variants.assign(9, c, left) for c in range(n)}
    assert "a" not in after.values()
    assert all(after[c] == before[c] for c in range(n) if before[c] != "a")  # the others keep theirs
    moved = Counter(after[c] for c in range(n) if before[c] == "a")
    assert abs(moved["c"] / sum(moved.values()) - 2 / 3) < 0.04  # the stopped one's customers, by weight
    assert after == {c: variants.assign(9, c, left) for c in range(n)}  # and deterministically


def with_variants(data: dict, position: int, *arms: tuple[str, int, str]) -> dict:
    """`data` with variants on a step: each (key, weight, a word put before each of the step's texts)."""
    step = data["steps"][position - 1]
    step["variants"] = [{"key": key, "weight": weight,
                         "texts": {locale: {part: f"{word} {text}" for part, text in parts.items()}
                                   for locale, parts in step["texts"].items()}} for key, weight, word in arms]
    return data


def test_variants_are_saved_with_the_version_and_checked_as_the_steps_text(norway):
    creditor, _plan = norway
    data = with_variants(services.shipped_plan("NO"), 2, ("short", 1, "Kort:"), ("kind", 2, "Vennlig:"))
    plan = services.save_plan(creditor, data, actor="test", today=TODAY)
    assert [(v.key, v.weight, v.active) for v in plan.steps[1].variants] == [("short", 1, True), ("kind", 2, True)]
    assert plan.steps[1].variants[0].texts["nb"]["sms"].startswith("Kort: {creditor}")
    shown = services.plan_as_data(plan)
    assert [v["key"] for v in shown["steps"][1]["variants"]] == ["short", "kind"]
    assert "variants" not in shown["steps"][0]
    shown.pop("version")
    again = services.save_plan(creditor, shown, actor="test", today=TODAY)  # the data saves again
    assert [v.key for v in again.steps[1].variants] == ["short", "kind"]

    bad = with_variants(services.shipped_plan("NO"), 3, ("bare", 1, "X"))
    bad["steps"][2]["variants"][0]["texts"]["nb"]["body"] = "Betal {amount}: {link}"  # no deadline, no consequences
    bad["steps"][1]["variants"] = [{"key": "Bad Key", "weight": 0, "texts": {"nb": {"sms": "{belop}"}}}]
    with pytest.raises(InvalidData) as caught:
        services.save_plan(creditor, bad, actor="test", today=TODAY)
    errors = caught.value.errors
    assert set(errors) >= {"steps[2].variants[1].key", "steps[2].variants[1].weight",
                           "steps[2].variants[1].texts.nb.sms", "steps[2].variants[1].texts.en"}
    bad["steps"][1].pop("variants")
    with pytest.raises(InvalidData) as caught:
        services.save_plan(creditor, bad, actor="test", today=TODAY)
    assert caught.value.errors == {"steps[3].variants[1].texts.nb.body": caught.value.errors[
        "steps[3].variants[1].texts.nb.body"]}
    assert caught.value.errors["steps[3].variants[1].texts.nb.body"].startswith("inkassoloven § 9")


def test_the_run_records_each_customers_variant_and_sends_its_text(norway):
    creditor, _plan = norway
    data = with_variants(services.shipped_plan("NO"), 2, ("short", 1, "KORT"), ("kind", 1, "VENNLIG"))
    plan = services.save_plan(creditor, data, actor="test", today=TODAY)
    step = plan.steps[1]
    bills = [bill(creditor, plan, due=TODAY - timedelta(days=14), ref=f"V-{n}") for n in range(12)]
    run(creditor, TODAY)
    sent = {m.customer_id: m for m in db.session.scalars(select(Message))}
    assert len(sent) == 12
    for invoice in bills:
        message = sent[invoice.customer_id]
        expected = variants.assign(step.id, invoice.customer_id, step.variants)
        assert message.variant == expected
        outbox = db.session.get(OutboxMessage, message.outbox_message_id)
        assert render(outbox).startswith("KORT " if expected == "short" else "VENNLIG ")
    assert {m.variant for m in sent.values()} == {"short", "kind"}

    variants.stop(db.session.scalar(select(StepVariant).where(StepVariant.step_id == step.id,
                                                              StepVariant.key == "short")), actor="test")
    later = [bill(creditor, plan, due=TODAY - timedelta(days=14), ref=f"W-{n}") for n in range(8)]
    run(creditor, TODAY)
    fresh = [m for m in db.session.scalars(select(Message)) if m.customer_id in {b.customer_id for b in later}]
    assert len(fresh) == 8 and {m.variant for m in fresh} == {"kind"}
    assert services.plan_as_data(plan)["steps"][1]["variants"] == [
        {"key": "kind", "weight": 1, "texts": step.variants[1].texts}]  # a stopped variant is not carried on


def test_the_preview_shows_a_variants_text(norway):
    creditor, _plan = norway
    plan = services.save_plan(creditor, with_variants(services.shipped_plan("NO"), 2, ("short", 1, "KORT")),
                              actor="test", today=TODAY)
    assert services.preview_step(creditor, plan, 2, "nb", variant="short").sms.startswith("KORT ")
    assert not services.preview_step(creditor, plan, 2, "nb").sms.startswith("KORT ")
    with pytest.raises(InvalidData):
        services.preview_step(creditor, plan, 2, "nb", variant="nope")
