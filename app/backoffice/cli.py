"""`flask agents`: create agents and give them roles; sign an agent out everywhere; what changes an
agent at every creditor (disable, enable, reset the second factor with a one-time enrolment code,
shown here once); encrypt second-factor secrets stored in clear before migration 0009."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from app.audit import audit
from app.backoffice import services
from app.backoffice.models import Role
from app.commands import cli_transaction
from app.creditors.commands import creditor_or_fail
from app.models import utcnow


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
        audit(None, "agent_created", operator=True, creditor_id=creditor.id, record_type="agent",
                       record_id=agent.id, role=role, by="cli")
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
        audit(None, "role_granted", operator=True, creditor_id=creditor.id, record_type="agent",
                       record_id=agent.id, role=role, by="cli")
    click.echo(f"{agent.email}: {role} at {creditor.slug}.")


def _agent_or_fail(email: str):
    agent = services.find_agent(email)
    if agent is None:
        raise click.ClickException(f"No agent {email!r}.")
    return agent


def _record(agent, action: str) -> None:
    """An operator's change to an agent: the business of every creditor the agent works for."""
    audit(None, action, operator=True, creditor_ids=agent.creditor_ids(), record_type="agent",
                   record_id=agent.id, by="cli")


@agents.command("sign-out", help="End every session of an agent (a lost laptop, someone leaving).")
@click.argument("email")
def sign_out(email: str):
    agent = _agent_or_fail(email)
    with cli_transaction("Not signed out"):
        services.sign_out_everywhere(agent)
        _record(agent, "sign_out_everywhere")
    click.echo(f"{agent.email} is signed out everywhere.")


@agents.command("disable", help="Disable an agent at every creditor (every session ends at once).")
@click.argument("email")
def disable(email: str):
    agent = _agent_or_fail(email)
    with cli_transaction("Not disabled"):
        services.set_disabled(agent, True)
        _record(agent, "agent_disable")
    click.echo(f"{agent.email} is disabled.")


@agents.command("enable", help="Enable a disabled agent again.")
@click.argument("email")
def enable(email: str):
    agent = _agent_or_fail(email)
    with cli_transaction("Not enabled"):
        services.set_disabled(agent, False)
        _record(agent, "agent_enable")
    click.echo(f"{agent.email} is enabled.")


@agents.command("reset-second-factor",
                help="A lost phone: remove the agent's second factor, end their sessions, and print a one-time "
                     "enrolment code (shown once, for you to give the agent) that their next sign-in asks for "
                     "before a new factor is set up.")
@click.argument("email")
def reset_second_factor(email: str):
    agent = _agent_or_fail(email)
    with cli_transaction("Not reset"):
        services.reset_second_factor(agent)
        code = services.issue_enrolment_code(agent, utcnow())
        _record(agent, "agent_reset_mfa")
    click.echo(f"{agent.email}: the second factor is reset and every session ended.")
    click.echo(f"One-time enrolment code (valid {services.ENROLMENT_CODE_HOURS} hours, shown only now): {code}")


@agents.command("encrypt-secrets", help="Encrypt every second-factor secret still stored in clear (from before "
                                        "migration 0009) with DATA_ENCRYPTION_KEYS. Run once after upgrading.")
def encrypt_secrets():
    with cli_transaction("Nothing encrypted"):
        count = services.encrypt_clear_secrets()
    click.echo(f"{count} second-factor secret(s) encrypted.")


@agents.command("answer-target", help="Show or set a creditor's service level: what waits for an agent is "
                                      "answered within so many working days (Monday to Friday, not a public "
                                      "holiday where the creditor is). The inbox counts down to it.")
@click.argument("slug")
@click.option("--days", type=click.IntRange(1, 30), help="Working days, 1 to 30 (default for a new creditor: 1).")
def answer_target(slug: str, days: int | None):
    creditor = creditor_or_fail(slug)
    if days is not None:
        with cli_transaction("Target not changed"):
            before = creditor.answer_within_days
            creditor.answer_within_days = days
            audit(None, "answer_target_set", operator=True, creditor_id=creditor.id, record_type="creditor",
                           record_id=creditor.slug, before=before, days=days, by="cli")
    click.echo(f"{creditor.slug}: answer within {creditor.answer_within_days} working "
               f"day{'s' if creditor.answer_within_days != 1 else ''}.")
