"""`flask agents`: create agents and give them roles; sign an agent out everywhere."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.backoffice import services
from app.backoffice.models import Role
from app.commands import cli_transaction, creditor_or_fail


@click.group(cls=AppGroup, help="Back-office agents: who may sign in, for which creditors, in which role.")
def agents():
    pass


@agents.command("create", help="Create an agent with a role at a creditor. The password is asked for (twice); "
                               "the second factor is set up at the first sign-in.")
@click.argument("email")
@click.option("--creditor", "slug", required=True, help="The creditor the agent works for.")
@click.option("--role", type=click.Choice(Role.values()), default=Role.AGENT.value, show_default=True)
@click.option("--name", prompt="The agent's name", help="The agent's name, as customers and the audit log show it "
                                                        "(asked for when not given).")
@click.password_option(help="At least 12 characters (asked for when not given).")
def create(email: str, slug: str, role: str, name: str, password: str):
    creditor = creditor_or_fail(slug)
    with cli_transaction("Agent not created"):
        agent = services.create_agent(email, name, password, creditor, role)
        services.audit(None, "agent_created", creditor_id=creditor.id, record_type="agent", record_id=agent.id,
                       role=role, by="cli")
    click.echo(f"Agent {agent.email} created: {role} at {creditor.slug}. They set up the second factor at "
               f"their first sign-in.")


@agents.command("grant", help="Give an agent a role at another creditor (or change it there).")
@click.argument("email")
@click.option("--creditor", "slug", required=True)
@click.option("--role", type=click.Choice(Role.values()), required=True)
def grant(email: str, slug: str, role: str):
    creditor = creditor_or_fail(slug)
    agent = services.find_agent(email)
    if agent is None:
        raise click.ClickException(f"No agent {email!r}.")
    with cli_transaction("Role not granted"):
        services.grant_role(agent, creditor, role)
        services.audit(None, "role_granted", creditor_id=creditor.id, record_type="agent", record_id=agent.id,
                       role=role, by="cli")
    click.echo(f"{agent.email}: {role} at {creditor.slug}.")


@agents.command("sign-out", help="End every session of an agent (a lost laptop, someone leaving).")
@click.argument("email")
def sign_out(email: str):
    agent = services.find_agent(email)
    if agent is None:
        raise click.ClickException(f"No agent {email!r}.")
    with cli_transaction("Not signed out"):
        services.sign_out_everywhere(agent)
        services.audit(None, "sign_out_everywhere", record_type="agent", record_id=agent.id, by="cli")
    click.echo(f"{agent.email} is signed out everywhere.")
