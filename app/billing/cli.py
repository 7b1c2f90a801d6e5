"""CLI commands for billing (filled in by the CLI work)."""

import click


@click.group(help="billing commands.")
def invoices():
    pass
