"""Registers every command group on the app (`flask --app wsgi --help`), the `translate`
group, and the helpers every group shares: `cli_transaction()` (commit once, or roll back and
exit non-zero with every problem listed), `creditor_or_fail()` and `format_errors()`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from flask import Flask
from sqlalchemy import select

from app import ROOT
from app.creditors.models import Creditor
from app.errors import Conflict, IllegalTransition, InvalidData
from app.extensions import db

TRANSLATIONS = os.path.join(ROOT, "app", "translations")
POT = os.path.join(ROOT, "messages.pot")


def _pybabel(*args: str) -> None:
    cmd = [sys.executable, "-m", "babel.messages.frontend", *args]
    if subprocess.call(cmd, cwd=ROOT) != 0:
        raise click.ClickException("pybabel " + " ".join(args) + " failed")


def extract_messages(output: str = POT) -> None:
    _pybabel("extract", "-F", "babel.cfg", "-k", "_l", "--no-location", "--sort-output",
             "--project", "portal", "--omit-header", "-o", output, ".")


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


def creditor_or_fail(slug: str) -> Creditor:
    """The creditor with this slug, or a ClickException naming the command that lists them."""
    creditor = db.session.scalar(select(Creditor).where(Creditor.slug == slug))
    if creditor is None:
        raise click.ClickException(f"No creditor with slug {slug!r} ('flask creditors list' shows them).")
    return creditor


@click.group(help="Extract, update and compile the translations (en, nb, de).")
def translate():
    pass


@translate.command(help="Extract messages to messages.pot and merge them into every locale's .po file.")
def update():
    extract_messages()
    _pybabel("update", "-i", POT, "-d", TRANSLATIONS, "--no-fuzzy-matching", "--ignore-obsolete")


@translate.command(help="Add a new language: translate init LOCALE.")
@click.argument("locale")
def init(locale):
    extract_messages()
    _pybabel("init", "-i", POT, "-d", TRANSLATIONS, "-l", locale)


@translate.command(help="Compile the .po files to .mo files (run after every change and on deploy).")
def compile():
    _pybabel("compile", "-d", TRANSLATIONS, "--use-fuzzy")


@translate.command(help="Extract messages to messages.pot only.")
def extract():
    extract_messages()


def register_cli(app: Flask) -> None:
    from app.backoffice.cli import agents
    from app.billing.cli import invoices
    from app.creditors.cli import creditors
    from app.debt_collection.cli import collection
    from app.demo import demo
    from app.links.cli import links
    from app.outbox.cli import outbox
    from app.payments.bank.cli import bank
    from app.payments.cli import payments
    from app.resolutions.cli import resolutions
    from app.support.cli import support

    for group in (translate, creditors, invoices, links, payments, bank, outbox, support, resolutions, agents,
                  collection, demo):
        app.cli.add_command(group)
