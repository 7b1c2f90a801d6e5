"""Who gets the CPU first: the pages and the APIs, then the PDFs and the background work.

`WORKER_NICE` (0 to 19, default 0) makes a process that much nicer. The documents pool's gunicorn applies
it to its workers after the fork (deploy/gunicorn.conf.py); the long-running workers (`flask outbox run`,
`flask payments apply-events`) apply it to themselves when their loop starts (`lower_priority`). Where a
customer waits on a page, the kernel then hands the CPU to the page and gives the PDFs, the receipts and
the providers' notifications what the pages leave; under a steady load short of saturation that is still
all they need, a little later.

A nice value counts only among the processes the kernel schedules as one group. Linux groups each
session's processes (its autogroup) and shares the CPU between the groups before it looks at nice values
inside them: a worker started as a session of its own (`setsid`, a container's init, the soak) with a
nice of 10 would still get as much CPU as the whole web pool. So a process that leads its session makes
its whole group nicer too (/proc/self/autogroup). Under systemd the units' cgroups share the CPU instead,
by `CPUWeight=` (docs/operations.md, "systemd units"), and the group changes nothing."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from app.config import ConfigError

AUTOGROUP = "/proc/self/autogroup"


def worker_nice(environ: Mapping[str, str] = os.environ) -> int:
    """WORKER_NICE, a whole number from 0 to 19 (what nice accepts); unset or empty is 0. Anything else
    stops the process at its start with a message naming the setting."""
    value = environ.get("WORKER_NICE", "").strip() or "0"
    if not value.isdigit() or int(value) > 19:
        raise ConfigError(f"WORKER_NICE must be a whole number from 0 to 19, not {value!r}")
    return int(value)


def autogroup_nice(path: str = AUTOGROUP) -> int | None:
    """This process's autogroup's nice; None on a kernel without autogroups, and in the default group of
    init's own session (a process init started without a session of its own, as CI's runner is), where
    the file reads empty: there is no group of ours to make nicer."""
    try:
        fields = Path(path).read_text().split()
    except OSError:
        return None
    return int(fields[-1]) if len(fields) == 3 and fields[1] == "nice" else None


def nicer_session(nicer: int) -> bool:
    """Make this process's session group (its autogroup) `nicer`, when the process leads its session: never
    a shell's other processes. True when the group was made nicer."""
    if nicer <= 0 or os.getsid(0) != os.getpid() or autogroup_nice() is None:
        return False
    try:
        with open(AUTOGROUP, "w") as autogroup:
            autogroup.write(str(nicer))
    except OSError:  # a kernel without autogroups, or one that refuses: the process's own nice still holds
        return False
    return True


def lower_priority(environ: Mapping[str, str] = os.environ) -> int:
    """A background worker's start: its session group and itself nicer by WORKER_NICE. Only ever nicer
    (giving priority back needs a privilege a service user lacks). Returns the nice applied."""
    nicer = worker_nice(environ)
    if nicer > 0:
        nicer_session(nicer)
        os.nice(nicer)
    return nicer
