"""Every table that refers to a customer, or to a bill, payment, message... of one, is a holding: the
export and the erasure cover it. A new model about customers fails here until it is added to
`app/privacy/holdings.py` with what the export shows and what minimisation does to it."""

from __future__ import annotations

import re

from sqlalchemy import JSON

from app.extensions import db
from app.privacy.holdings import BY_NAME, HOLDINGS, Treatment

#: Tables with a column that looks like someone's details but that are not about the creditor's customers.
NOT_CUSTOMERS = {
    "creditors": "the creditor's own support contact and address",
    "agents": "the agents' accounts (their own data, not customers')",
    "collection_partners": "the partners' contact details",
    "simulator_payments": "the test-mode gateway's own records: no customer's details",
    "privacy_marks": "what the retention did (ids only)",
    "audit_entries": "the audit log: ids and counts, kept for accountability (docs/privacy.md)",
    "reply_templates": "agents' saved answers, with placeholders, not filled in",
    "bank_imports": "a statement file's name and counts",
    "collection_policies": "a creditor's hand-off rules",
    "dunning_plans": "a creditor's reminder plans",
    "dunning_steps": "a plan's step texts, with placeholders, not filled in",
    "dunning_step_variants": "a step's text variants, with placeholders, not filled in",
    "dunning_settings": "a creditor's reminder settings",
    "creditor_gateways": "a creditor's payment providers",
    "job_runs": "the periodic jobs' names and times",
    "content_blocks": "a creditor's content blocks: its own name for one, its texts",
    "content_variants": "a block's variants: the creditor's texts",
}
PERSONAL_LOOKING = re.compile(r"(email|phone|recipient|payer|address|name|body|message|note|text|payload)")


def referring_tables() -> set[str]:
    """`customers` and every table with a foreign key into one of these, to a fixed point."""
    tables = db.metadata.tables
    found = {"customers"}
    while True:
        more = {name for name, table in tables.items() if name not in found
                and any(fk.column.table.name in found for fk in table.foreign_keys)}
        if not more:
            return found
        found |= more


def test_every_table_that_refers_to_a_customer_is_a_holding(app):
    missing = sorted(referring_tables() - set(BY_NAME))
    assert not missing, f"tables about customers that the export and the erasure do not cover: {missing}"


def test_every_table_with_details_of_a_person_is_a_holding_or_said_not_to_be_about_customers(app):
    unplaced = sorted(name for name, table in db.metadata.tables.items()
                      if name not in BY_NAME and name not in NOT_CUSTOMERS and name not in referring_tables()
                      and any(PERSONAL_LOOKING.search(column.name) for column in table.c))
    assert not unplaced, f"tables with a person's details in no holding: {unplaced}"


def test_each_holding_names_real_columns_and_reduces_something(app):
    for holding in HOLDINGS:
        table = holding.table
        for column in (*holding.personal, *holding.omit):
            assert column in table.c, f"{holding.name}.{column}"
        if holding.treatment == Treatment.REDUCED:
            assert holding.personal, holding.name
        else:
            assert not holding.personal, holding.name
        assert "id" in table.c, holding.name


def test_the_reduced_columns_that_must_hold_a_value_are_text_or_json(app):
    for holding in HOLDINGS:
        for name in holding.personal:
            column = holding.table.c[name]
            emptiable = column.nullable or isinstance(column.type, JSON) or column.type.python_type is str
            assert emptiable, (holding.name, name)
