"""What every feature's CLI needs of the creditors: finding one by the slug typed on the command line.

It lives here, not in `app.commands` (which the creditors' own CLI imports), so that the commands'
helpers depend on no feature."""

from __future__ import annotations

import click
from sqlalchemy import select

from app.creditors.models import Creditor
from app.extensions import db


def creditor_or_fail(slug: str) -> Creditor:
    """The creditor with this slug, or a ClickException naming the command that lists them."""
    creditor = db.session.scalar(select(Creditor).where(Creditor.slug == slug))
    if creditor is None:
        raise click.ClickException(f"No creditor with slug {slug!r} ('flask creditors list' shows them).")
    return creditor
