"""The payment portal. create_app(config=None): config -> extensions -> blueprints -> errors -> cli."""

from __future__ import annotations

import logging
import os

from flask import Flask, Response, g, has_request_context, request
from sqlalchemy.exc import OperationalError
from werkzeug.datastructures import Headers
from werkzeug.middleware.proxy_fix import ProxyFix

from app.config import ROOT, load_config
from app.errors import database_busy
from app.extensions import babel, csrf, db, limiter, login_manager, migrate
from app.ops.logs import configure_logging
from app.sessions import CachedSerializerSessionInterface

log = logging.getLogger(__name__)

#: Methods whose requests read: on SQLite their transactions start deferred (no write lock).
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The most functions `Portal.ensure_sync` remembers: the app's hooks, views and handlers are a few hundred.
MAX_SYNC_FUNCTIONS = 2048


class ScanningHeaders(Headers):
    """werkzeug's Headers, answering `name in headers` by a scan of the few there are: werkzeug's own
    raises and catches a KeyError (an HTTP exception, built) whenever the name is absent, which it is
    on every response it makes (werkzeug asks for Content-Type before it sets it)."""

    def __contains__(self, key) -> bool:
        if not isinstance(key, str):
            return super().__contains__(key)
        lower = key.lower()
        return any(name.lower() == lower for name, _value in self._list)


class PortalResponse(Response):
    """Flask's response, with `ScanningHeaders`."""

    def __init__(self, response=None, status=None, headers=None, *args, **kwargs):
        if not isinstance(headers, Headers):
            headers = ScanningHeaders(headers) if headers else ScanningHeaders()
        super().__init__(response, status, headers, *args, **kwargs)


class Portal(Flask):
    """Flask, with one addition on SQLite: a reading request (GET, HEAD) that needed to write and
    found the database busy runs once more, in a transaction that takes the write lock at its
    start (see `_configure_sqlite` and docs/decisions.md, "SQLite under concurrency")."""

    retry_busy_reads = False
    response_class = PortalResponse

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sync_functions: dict = {}

    def ensure_sync(self, func):
        """Flask's, remembered per function: Flask asks it of every hook and view on every request
        (eleven times on a bill page), and each answer inspects the function's code. Bounded: a
        function made per request (`copy_current_request_context`) is answered but not kept."""
        try:
            return self._sync_functions[func]
        except KeyError:
            sync = super().ensure_sync(func)
            if len(self._sync_functions) < MAX_SYNC_FUNCTIONS:
                self._sync_functions[func] = sync
            return sync
        except TypeError:  # an unhashable callable
            return super().ensure_sync(func)

    def dispatch_request(self):
        if not self.retry_busy_reads:
            return super().dispatch_request()
        try:  # free in the common case (Python 3.11's zero-cost try): the method is read on failure only
            return super().dispatch_request()
        except OperationalError as exc:
            if request.method not in READ_METHODS or not database_busy(exc) or g.get("sqlite_write_lock"):
                raise
        log.info("database busy on %s %s: running it again with the write lock", request.method, request.path)
        db.session.rollback()
        g.sqlite_write_lock = True
        return super().dispatch_request()


def create_app(config: dict | None = None) -> Flask:
    app = Portal(
        __name__,
        instance_path=os.environ.get("PORTAL_INSTANCE_PATH", os.path.join(ROOT, "instance")),
        template_folder=os.path.join(ROOT, "templates"),
        static_folder=os.path.join(ROOT, "static"),
    )
    app.config.update(load_config(app.instance_path))
    app.config.update(config or {})
    configure_logging(app.config)
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)  # a line per request, at INFO
    app.session_interface = CachedSerializerSessionInterface()

    _init_extensions(app)
    _register_blueprints(app)
    _init_gate(app)

    # WSGI middleware, innermost first: the link's gate and the bill page's, the proxy's headers, the security
    # headers (init_security), the request timer (_init_metrics).
    if app.config["PROXY_FIX_COUNT"]:
        n = app.config["PROXY_FIX_COUNT"]
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]  # WSGI middleware, as Flask documents it
            app.wsgi_app, x_for=n, x_proto=n, x_host=0)
    _register_renderers()
    _connect_signals()

    from app.billing.invoice_law import seller_identity
    from app.creditors.services import portal_origins
    from app.errors import register_error_handlers
    from app.security import init_security
    from app.templating import init_templating

    register_error_handlers(app)
    init_security(app, portal_origins)
    init_templating(app)
    # The seller's identity as its country's law wants it: the PDFs, letters and every page's footer.
    app.jinja_env.globals["seller_identity"] = seller_identity
    # Creditor texts and the portal's own line words in the reader's language, with `lang` where a text's
    # language is not the page's (billing.texts; docs/texts.md): every template shows them through these.
    from app.billing.texts import creditor_text, line_text, line_words

    app.jinja_env.globals.update(creditor_text=creditor_text, line_text=line_text, line_words=line_words)
    _init_metrics(app)
    _register_cli(app)
    return app


def _init_gate(app: Portal) -> None:
    """A forged link, and a link opened again, answered before Flask (`portal.gate`), inside ProxyFix:
    it counts the rate limit by the client's address, as the view does; and a cached bill page
    (`portal.bill_gate`)."""
    from app.portal.bill_gate import BillGate
    from app.portal.gate import LinkGate

    app.wsgi_app = BillGate(app, LinkGate(app, app.wsgi_app))  # type: ignore[method-assign]  # WSGI middleware


def _init_metrics(app: Portal) -> None:
    """Time every request (outermost, so error pages and the security headers count too), and count
    what services count when their transaction commits."""
    from app.core.metrics import RequestTimer, listen_for_commits, note_endpoint

    app.before_request_funcs.setdefault(None, []).insert(0, note_endpoint)
    app.wsgi_app = RequestTimer(app.wsgi_app)  # type: ignore[method-assign]  # WSGI middleware, as Flask documents it
    listen_for_commits()


def _init_extensions(app: Portal) -> None:
    from app.i18n import install_template_gettext, select_locale

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(ROOT, "migrations"), render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(
        app,
        locale_selector=select_locale,
        default_translation_directories=os.path.join(ROOT, "app", "translations"),
    )
    install_template_gettext(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    _configure_sqlite(app)
    _configure_postgresql(app)

    # Import the models so that Alembic and the ORM see every table.
    from app import model_registry  # noqa: F401


def _configure_sqlite(app: Portal) -> None:
    """WAL, a busy timeout, and transactions that take the write lock at their start where they
    may write: every request but a reading one (GET, HEAD), and all work outside a request (the
    CLI, the workers). In WAL a deferred transaction that has read cannot wait for the write
    lock: SQLite answers SQLITE_BUSY at once when it asks for it while another connection
    writes, or has committed since the read began (the busy handler is not called then). A
    BEGIN IMMEDIATE waits for the lock (up to the busy timeout) before it reads anything. A
    reading request that writes all the same (a link's first open, the return from paying) and
    finds the database busy runs again with the lock (`Portal.dispatch_request`)."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    from sqlalchemy import event

    app.retry_busy_reads = True
    with app.app_context():
        engine = db.engine

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            # Let SQLAlchemy, not pysqlite, open transactions, so SAVEPOINTs work.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection):
            # Straight to the driver: every request's transaction starts here, and the
            # statement machinery would cost more than the BEGIN itself.
            connection.connection.driver_connection.execute("BEGIN IMMEDIATE" if _may_write() else "BEGIN")


def _configure_postgresql(app: Portal) -> None:
    """A pooled connection that the server ended is replaced at checkout, found without a round trip;
    a reading request's transaction begins with its first write (`app.core.connections`)."""
    from app.core.connections import begin_at_first_write, check_on_checkout

    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            check_on_checkout(db.engine)
            begin_at_first_write(db.engine, reading=_reading_request)


def _reading_request() -> bool:
    return has_request_context() and request.method in READ_METHODS


#: How long a connection waits for SQLite's write lock (or a checkpoint) before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 10_000


def _may_write() -> bool:
    """Whether this transaction should take SQLite's write lock at its start: not in a reading
    request (the bill page, the back office's lists: they stay cheap and never wait for a writer)
    unless it is being run again after it found the database busy."""
    if not has_request_context():
        return True
    return request.method not in READ_METHODS or g.get("sqlite_write_lock", False)


def _register_blueprints(app: Flask) -> None:
    """Every blueprint; CSRF exemptions of the token APIs; Flask-Login's hook on the back office only."""
    from app.api.views import bp as api_bp
    from app.backoffice.views import bp as backoffice_bp
    from app.content.views import bp as content_bp
    from app.debt_collection.views.api import bp as partner_api_bp
    from app.debt_collection.views.pdf import bp as debt_collection_bp
    from app.dunning import views as dunning_views
    from app.ops.views import bp as ops_bp
    from app.outbox.views import bp as outbox_hooks_bp
    from app.payments.views.simulator import bp as simulator_bp
    from app.payments.views.webhooks import bp as payments_bp
    from app.portal.views import bp as portal_bp
    from app.resolutions.views import bp as resolutions_bp
    from app.support.views import bp as support_bp

    app.register_blueprint(ops_bp)
    app.register_blueprint(portal_bp)
    app.register_blueprint(content_bp)
    app.register_blueprint(support_bp)
    app.register_blueprint(resolutions_bp)
    app.register_blueprint(dunning_views.bp)
    csrf.exempt(dunning_views.one_click)  # RFC 8058's one-click POST: no cookies; its signed token is the proof
    app.register_blueprint(backoffice_bp, url_prefix="/backoffice")
    # Flask-Login's after-request hook keeps a "remember me" cookie up to date (set, refreshed,
    # cleared at sign-out): only agents sign in, so it runs on the back office's responses only,
    # not on every customer page (where it read the session, and so marked every answer
    # `Vary: Cookie`, for nothing).
    remember_hook = login_manager._update_remember_cookie
    app.after_request_funcs[None].remove(remember_hook)
    app.after_request_funcs.setdefault(backoffice_bp.name, []).append(remember_hook)
    app.register_blueprint(payments_bp)
    app.register_blueprint(outbox_hooks_bp)
    app.register_blueprint(simulator_bp)
    app.register_blueprint(api_bp, url_prefix="/api/v1")
    csrf.exempt(api_bp)  # bearer-token API: no cookies, no CSRF
    app.register_blueprint(debt_collection_bp)
    app.register_blueprint(partner_api_bp, url_prefix="/api/partner/v1")
    csrf.exempt(partner_api_bp)


def _register_renderers() -> None:
    """Each kind of outbox message with the function that renders it, by channel and kind prefix."""
    from app.backoffice import emails as agent_emails
    from app.debt_collection.deliveries import render_webhook as collection_webhook
    from app.dunning import contact as contact_codes
    from app.dunning import messages as dunning_messages
    from app.events.deliveries import render_webhook as creditor_webhook
    from app.links import notices as link_notices
    from app.outbox.base import renderers as registry
    from app.payments.receipts import KIND as RECEIPT
    from app.payments.receipts import receipt_email
    from app.resolutions.emails import render_email as resolution_email
    from app.support.emails import render_email as support_email

    renderers = registry()
    renderers.register("email", RECEIPT, receipt_email)
    renderers.register("email", "support", support_email)
    renderers.register("email", "resolution", resolution_email)
    renderers.register("email", "link", link_notices.render_email)
    renderers.register("sms", "link", link_notices.render_sms)
    renderers.register("email", "agent", agent_emails.render_email)
    renderers.register("webhook", "collection", collection_webhook)
    renderers.register("webhook", "events", creditor_webhook)
    renderers.register("email", "dunning", dunning_messages.render_email)
    renderers.register("sms", "dunning", dunning_messages.render_sms)
    renderers.register_preparer("dunning", dunning_messages.prepare)
    renderers.register("email", "contact", contact_codes.render_email)
    renderers.register("sms", "contact", contact_codes.render_sms)


def _connect_signals() -> None:
    """What one feature hears of another: a payment of a bill in collection goes to the partner;
    a bill's total lowered below what was paid makes money owed back, and a bill in collection credited
    or corrected, or its customer's contact details changed, is news to the partner (`case.updated`);
    a bill closed (cancelled, written off) stops its open payments; an import asks whether the creditor's
    payment providers take a currency its bank account does not; a message's delivery status, a STOP
    reply and the opening of a message's link reach the dunning message (`dunning.delivery`); a reminder
    e-mail asks for the creditor's content blocks (`content.mail`); what happens
    to a bill becomes the creditor's event (`events.handlers`)."""
    from app.billing.services import (
        contact_changed,
        currency_receivable,
        event_recorded,
        invoice_closed,
        invoice_imported,
        total_changed,
    )
    from app.content.mail import reminder_blocks
    from app.debt_collection.services import report_contact_change, report_correction, report_payment
    from app.dunning import delivery, options
    from app.dunning.engine import reminders_written
    from app.dunning.messages import email_blocks
    from app.events import handlers as events
    from app.links.services import link_opened
    from app.outbox.feedback import message_delivered, message_failed, sms_opt_out
    from app.payments.bank.settlement import payments_booked
    from app.payments.providers import receives
    from app.payments.refunds import owe_back_excess
    from app.payments.services import paid_during_collection, payment_failed, stop_open_attempts

    paid_during_collection.connect(report_payment)
    total_changed.connect(owe_back_excess)
    total_changed.connect(report_correction)
    contact_changed.connect(report_contact_change)
    invoice_closed.connect(stop_open_attempts)
    currency_receivable.connect(receives)  # an invoice's currency that the creditor's providers take
    invoice_imported.connect(options.on_invoice_imported)  # a plan named in the import, or an exclusion
    # What became of a dunning message: progress, a failure (the next channel), a STOP reply, its link opened.
    message_delivered.connect(delivery.on_delivered)
    message_failed.connect(delivery.on_failed)
    sms_opt_out.connect(delivery.on_sms_opt_out)
    link_opened.connect(delivery.on_link_opened)
    # The creditor's content blocks placed in reminder e-mails (app.content), asked for by the renderer.
    email_blocks.connect(reminder_blocks)
    # The creditor's events (app.events), each in the transaction of what it reports.
    event_recorded.connect(events.on_invoice_event)
    reminders_written.connect(events.on_reminders_written)
    message_failed.connect(events.on_message_failed)
    payment_failed.connect(events.on_payment_failed)
    payments_booked.connect(events.on_bank_payments)
    contact_changed.connect(events.on_contact_changed)


def _register_cli(app: Flask) -> None:
    from app.cli import register_cli

    register_cli(app)
