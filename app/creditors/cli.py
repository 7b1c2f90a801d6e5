"""CLI commands for creditors (filled in by the CLI work)."""

import click


@click.group(help="creditors commands.")
def creditors():
    pass
