"""Registers every command group on the app (`flask --app wsgi --help`) and holds the `translate`
group. What the groups share is in `app.commands`, which they import (never this module)."""

from __future__ import annotations

import os
import subprocess
import sys

import click
from flask import Flask

from app.config import ROOT

TRANSLATIONS = os.path.join(ROOT, "app", "translations")
POT = os.path.join(ROOT, "messages.pot")


def _pybabel(*args: str) -> None:
    cmd = [sys.executable, "-m", "babel.messages.frontend", *args]
    if subprocess.call(cmd, cwd=ROOT) != 0:  # noqa: S603  this Python, babel's module, our own arguments
        raise click.ClickException("pybabel " + " ".join(args) + " failed")


def extract_messages(output: str = POT) -> None:
    _pybabel("extract", "-F", "babel.cfg", "-k", "_l", "--no-location", "--sort-output",
             "--project", "portal", "--omit-header", "-o", output, ".")


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
    from app.analytics.cli import analytics
    from app.backoffice.cli import agents
    from app.billing.cli import invoices
    from app.creditors.cli import creditors
    from app.debt_collection.cli import collection
    from app.demo import demo
    from app.dunning.cli import dunning
    from app.dunning.letters.cli import letters_group
    from app.events.cli import events
    from app.links.cli import links
    from app.outbox.cli import outbox
    from app.payments.bank.cli import bank
    from app.payments.cli import payments
    from app.privacy.cli import privacy
    from app.resolutions.cli import resolutions
    from app.support.cli import support

    for group in (translate, creditors, invoices, links, payments, bank, outbox, support, resolutions, agents,
                  collection, dunning, letters_group, privacy, events, analytics, demo):
        app.cli.add_command(group)
