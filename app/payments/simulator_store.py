"""The simulator's provider side: its records in our database (`simulator_payments`)."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import inspect, select

from app.extensions import db
from app.payments.gateways.simulator import SimulatedPayment
from app.payments.models import SimulatorRecord

#: `Session.info` key: the simulator's records this session has read, by ref.
RECORDS_KEY = "simulator_records"


class DatabaseSimulatorStore:
    """`SimulatorStore` on the `simulator_payments` table (the session of the current request or job).

    The records read are kept with the session (its `info`), for as long as it lives: the hosted
    page's choice reads its payment, updates it and reads it again, one SELECT where there were three.
    The session would hand back the same objects anyway (its identity map); it only cannot find them
    by `ref` without asking the database. Not on the store: a store can outlive its request (the
    gateways `payment_gateway` keeps per process), and a record of an ended session is stale."""

    def _record(self, **where) -> SimulatorRecord | None:
        column, value = next(iter(where.items()))
        kept: dict[str, SimulatorRecord] = db.session.info.setdefault(RECORDS_KEY, {})
        if column == "ref" and value in kept:
            state = inspect(kept[value])
            if state.persistent and not state.expired:  # as read, not expired by a commit or a rollback
                return kept[value]
        record = db.session.scalar(select(SimulatorRecord).where(getattr(SimulatorRecord, column) == value))
        if record is not None:
            kept[record.ref] = record
        return record

    @staticmethod
    def _payment(record: SimulatorRecord | None) -> SimulatedPayment | None:
        if record is None:
            return None
        return SimulatedPayment(
            ref=record.ref, idempotency_key=record.idempotency_key, amount=record.amount, currency=record.currency,
            description=record.description, return_url=record.return_url, cancel_url=record.cancel_url,
            status=record.status, method=record.method, refunded=record.refunded,
        )

    def by_idempotency_key(self, key: str) -> SimulatedPayment | None:
        return self._payment(self._record(idempotency_key=key))

    def get(self, ref: str) -> SimulatedPayment | None:
        return self._payment(self._record(ref=ref))

    def create(self, payment: SimulatedPayment) -> None:
        db.session.add(SimulatorRecord(**vars(replace(payment))))
        db.session.flush()

    def update(self, ref: str, *, status=None, method=None, refunded=None) -> None:
        record = self._record(ref=ref)
        for name, value in (("status", status), ("method", method), ("refunded", refunded)):
            if value is not None:
                setattr(record, name, value)
        db.session.flush()
