"""CLI commands for links (filled in by the CLI work)."""

import click


@click.group(help="links commands.")
def links():
    pass
