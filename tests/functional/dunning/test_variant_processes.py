"""A customer's text variant is the same in another process, whatever its hash seed (issue 18, item 3):
the assignment hashes with SHA-256, not Python's salted `hash()`. Here rather than in the unit tier: it
starts a Python process (about 3 s)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

from app.dunning import variants


@dataclass(frozen=True)
class V:
    key: str
    weight: int


def test_the_assignment_is_the_same_in_another_process():
    arms = [V("short", 1), V("friendly", 3)]
    here = [variants.assign(42, customer_id, arms) for customer_id in range(1, 60)]
    code = ("from app.dunning import variants\n"
            "from collections import namedtuple\n"
            "V = namedtuple('V', 'key weight')\n"
            "arms = [V('short', 1), V('friendly', 3)]\n"
            "print(','.join(variants.assign(42, c, arms) for c in range(1, 60)))")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "12345", "PATH": ""})  # another hash seed: no effect
    assert there.stdout.strip().split(",") == here
