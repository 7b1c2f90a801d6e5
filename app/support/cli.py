"""`flask support`: answer a customer's request (until the back office does)."""

import click

support = click.Group("support", help="Customers' contact requests.")
