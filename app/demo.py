"""Demo data (filled in by the CLI work)."""

import click


@click.command(help="Load demo data.")
def demo():
    pass
