"""Experiments on a reminder step's text: variants of the text, each with a key and a weight.

**Assignment** (`assign`) is weighted rendezvous hashing: for each active variant the customer gets a
score from SHA-256 of (the step's id, the customer's id, the variant's key), mapped onto (0, 1) as `u`,
and the variant with the highest `-weight / ln(u)` wins. So

- the same customer always gets the same variant of a step: across calls, runs and processes (no
  random state, no Python `hash()`, which is salted per process);
- over many customers each variant gets its share `weight / sum of the active weights`;
- stopping a variant moves only the customers who were on it, each to one of the remaining active
  variants by their weights; everyone else keeps theirs.

A step whose variants are all stopped (or which has none) speaks with its own text: the message then
carries no variant key.

Pure apart from `stop`, which changes a variant (adds and flushes; the caller commits and audits).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from typing import Protocol

from app.dunning.models import StepVariant
from app.errors import InvalidData
from app.extensions import db
from app.models import utcnow

KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_VARIANTS = 5
WEIGHT_RANGE = (1, 1000)


class Weighted(Protocol):
    @property
    def key(self) -> str: ...

    @property
    def weight(self) -> int: ...


def _unit(step_id: int, customer_id: int, key: str) -> float:
    """A number in (0, 1), the same for the same three inputs everywhere."""
    digest = hashlib.sha256(f"dunning-variant:{step_id}:{customer_id}:{key}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") + 0.5) / 2.0**64


def assign(step_id: int, customer_id: int, variants: Sequence[Weighted]) -> str | None:
    """The key of the variant this customer gets at this step among `variants` (the active ones), or
    None when there are none."""
    best: tuple[float, str] | None = None
    for variant in variants:
        score = -variant.weight / math.log(_unit(step_id, customer_id, variant.key))
        if best is None or (score, variant.key) > best:
            best = (score, variant.key)
    return best[1] if best else None


def texts_for(step_texts: dict, variants: Sequence[StepVariant], key: str | None) -> dict:
    """The texts a message with variant `key` is written in: that variant's (stopped or not: the message
    was decided with it), else the step's own."""
    for variant in variants:
        if key is not None and variant.key == key:
            return variant.texts
    return step_texts


def stop(variant: StepVariant, *, actor: str) -> bool:
    """Stop a variant: new messages go to the step's other active variants. False when it was stopped
    already (nothing changes)."""
    if variant.stopped_at is not None:
        return False
    if not isinstance(actor, str) or not actor:
        raise InvalidData({"actor": "who stops it"})
    variant.stopped_at, variant.stopped_by = utcnow(), actor[:120]
    db.session.flush()
    return True
