"""What every command group shares: `cli_transaction()` (commit once, or roll back and exit
non-zero with every problem listed), `creditor_or_fail()`, `format_errors()` and the workers'
`stop_on_signals()`. The groups
import this module; `app.cli` registers the groups."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click

from app.errors import Conflict, IllegalTransition, InvalidData
from app.extensions import db


def format_errors(errors: dict[str, str], options: dict[str, str] | None = None, indent: str = "  ") -> str:
    """One problem per line, `field: problem`; `options` renames fields to the options the user typed."""
    options = options or {}
    return "\n".join(f"{indent}{options.get(name, name)}: {problem}" for name, problem in errors.items())


@contextmanager
def cli_transaction(failure: str, options: dict[str, str] | None = None) -> Iterator[None]:
    """Commit once when the block succeeds; otherwise roll back and exit non-zero.

    `failure` heads the message, e.g. "Creditor not created"; invalid input lists every
    problem, one per line, named by its option when `options` maps the field to one."""
    try:
        yield
        db.session.commit()
    except InvalidData as exc:
        db.session.rollback()
        raise click.ClickException(f"{failure}:\n{format_errors(exc.errors, options)}") from None
    except (Conflict, IllegalTransition) as exc:
        db.session.rollback()
        raise click.ClickException(f"{failure}: {exc}") from None
    except BaseException:
        db.session.rollback()
        raise


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM, so a worker's loop ends between two pieces of work, not in the
    middle of one."""
    stop = threading.Event()

    def handler(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop
