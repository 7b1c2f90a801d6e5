"""localstripe (a fake, stateful Stripe API) in a subprocess on 127.0.0.1, for tests.

`LocalStripe` runs this file as a script: it serves localstripe's aiohttp app on a free
port of 127.0.0.1 (the `localstripe` console script listens on every interface, `::`),
prints the port, and keeps its objects in memory only (the console script also writes
/tmp/localstripe.pickle, shared by every run on the machine).

localstripe 1.15.10 lacks a few things real Stripe does and the Stripe adapter relies on;
the script patches them in, in the subprocess only:

- PaymentIntents accept `description`, `receipt_email` and `allowed_payment_method_types`
  (localstripe answers 400), show the allowed types as `payment_method_types` (as Stripe
  does, without filtering them), and report `amount_received`;
- an `Idempotency-Key` replays the first response, and a different request with the same
  key is refused with an `idempotency_error` (localstripe ignores the header);
- the test card 4000 0000 0000 0002 is declined when charged (localstripe declines it
  only when it is attached to a customer);
- Checkout Sessions (create, retrieve, expire) and their hosted page, which localstripe lacks;
- the Payment Element API on its Stripe.js stand-in (`elements({clientSecret})`, `confirmPayment`).
"""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

READY_KEY = "sk_test_localstripe_ready"


class LocalStripe:
    """Start with `start()` (or `with LocalStripe() as server:`); `api_base` is its URL."""

    def __init__(self, startup_timeout: float = 20.0) -> None:
        self.startup_timeout = startup_timeout
        self.api_base = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115  the server's stderr while it runs; stop() closes it

    def start(self) -> str:
        """Launch the server, wait until it answers an API call, and return its base URL."""
        self._process = subprocess.Popen(
            [sys.executable, __file__], stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + self.startup_timeout
        try:
            self.api_base = f"http://127.0.0.1:{self._read_port(deadline)}"
            self._wait_until_ready(deadline)
        except BaseException:
            self.stop()
            raise
        return self.api_base

    def stop(self) -> None:
        """Terminate the server (kill it if it does not exit within five seconds)."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        assert self._process.stdout is not None
        self._process.stdout.close()
        self._process = None
        self._log.close()

    def __enter__(self) -> LocalStripe:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _read_port(self, deadline: float) -> int:
        assert self._process is not None and self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], max(deadline - time.monotonic(), 0))
        line = self._process.stdout.readline() if ready else b""
        if not line.strip().isdigit():
            raise RuntimeError(f"localstripe did not start: {self._log_tail()}")
        return int(line)

    def _wait_until_ready(self, deadline: float) -> None:
        assert self._process is not None
        request = urllib.request.Request(
            self.api_base + "/v1/balance", headers={"Authorization": f"Bearer {READY_KEY}"}
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
        while True:
            try:
                with opener.open(request, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError):
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"localstripe did not answer on {self.api_base}: {self._log_tail()}")
            time.sleep(0.05)

    def _log_tail(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]


def _patch_localstripe() -> None:
    """Make localstripe behave like Stripe where the adapter needs it (see the module docstring)."""
    from localstripe import resources

    resources.Store.dump_to_disk = lambda self: None

    payment_intent_init = resources.PaymentIntent.__init__

    def payment_intent_with_fields(
        self: Any, description: str | None = None, receipt_email: str | None = None,
        allowed_payment_method_types: list[str] | None = None, **kwargs: Any,
    ) -> None:
        payment_intent_init(self, **kwargs)
        self.description = description
        self.receipt_email = receipt_email
        self.payment_method_types = allowed_payment_method_types or ["card"]

    resources.PaymentIntent.__init__ = payment_intent_with_fields
    resources.PaymentIntent.amount_received = property(
        lambda intent: intent.amount if intent.status == "succeeded" else 0
    )

    charging_is_declined = resources.PaymentMethod._charging_is_declined
    resources.PaymentMethod._charging_is_declined = lambda method: charging_is_declined(method) or (
        method.type == "card" and method._card_number == "4000000000000002"
    )


def _idempotency_middleware() -> Callable[..., Awaitable[Any]]:
    """Stripe's idempotent requests: the same key replays the first answer."""
    from aiohttp import web

    answers: dict[str, tuple[str, bytes, int, bytes]] = {}

    @web.middleware
    async def idempotency(request: web.Request, handler: Callable[..., Awaitable[web.StreamResponse]]) -> Any:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        body = await request.read()
        if key in answers:
            path, first_body, status, answer = answers[key]
            if (path, first_body) != (request.path, body):
                message = "Keys for idempotent requests can only be used with the same parameters."
                return web.json_response({"error": {"type": "idempotency_error", "message": message}}, status=400)
            return web.Response(
                status=status, body=answer, content_type="application/json", headers={"Idempotent-Replayed": "true"}
            )
        response = await handler(request)
        if isinstance(response, web.Response) and response.status < 500 and isinstance(response.body, bytes):
            answers[key] = (request.path, body, response.status, response.body)
        return response

    return idempotency


#: Appended to localstripe's Stripe.js stand-in: the Payment Element API the bill's checkout page
#: uses (`elements({clientSecret})`, `create("payment")`, `confirmPayment`). The stand-in's card
#: element collects the card; confirming goes through `/_browser/confirm/<intent>` with the
#: publishable key and the client secret, as Stripe.js confirms with them against Stripe.
PAYMENT_ELEMENT_SHIM = r"""
;(function () {
  const standIn = Stripe;
  Stripe = function (apiKey, options) {
    const client = standIn(apiKey, options);
    const makeElements = client.elements;
    client.elements = function (opts) {
      const elements = makeElements.call(client, opts);
      elements._clientSecret = opts && opts.clientSecret;
      return elements;
    };
    client.confirmPayment = async function (args) {
      const elements = args.elements, secret = elements._clientSecret;
      const card = (elements.getElement("payment") || {}).value;
      if (!card) return {error: {message: "Your card number is incomplete."}};
      const pi = secret.match(/^(pi_\w+)_secret_/)[1];
      const body = new URLSearchParams({key: apiKey, client_secret: secret, number: card.card.number,
        exp_month: card.card.exp_month, exp_year: card.card.exp_year, cvc: card.card.cvc});
      const response = await fetch(`${LOCALSTRIPE_BASE_API}/_browser/confirm/${pi}`, {method: "POST", body});
      let intent = await response.json().catch(() => ({}));
      if (response.status !== 200 || intent.error) return {error: intent.error || {message: "error"}};
      if (intent.status === "requires_action") {
        const result = await client.confirmCardPayment(secret);
        if (result.error) return result;
        intent = result.paymentIntent;
      }
      const url = new URL(args.confirmParams.return_url);
      url.searchParams.set("payment_intent", intent.id);
      url.searchParams.set("payment_intent_client_secret", secret);
      url.searchParams.set("redirect_status", intent.status === "succeeded" ? "succeeded" : "processing");
      window.location.assign(url.toString());
      return {};
    };
    return client;
  };
})();
"""


def _new_try(intent: Any) -> None:
    """A declined intent takes another payment method, as on Stripe (localstripe keeps the failed
    charge, and with it the status requires_payment_method, for good)."""
    if intent.latest_charge is not None and intent.latest_charge.status == "failed":
        intent.latest_charge = None


def _browser_middleware() -> Callable[..., Awaitable[Any]]:
    """Serve the stand-in with the Payment Element shim, and confirm an intent the way Stripe.js
    does: with the publishable key and the intent's client secret, never the secret key."""
    from pathlib import Path

    import localstripe
    from aiohttp import web
    from localstripe import resources
    from localstripe.errors import UserError

    script = (Path(localstripe.__file__).parent / "localstripe-v3.js").read_text() + PAYMENT_ELEMENT_SHIM

    @web.middleware
    async def browser(request: web.Request, handler: Callable[..., Awaitable[web.StreamResponse]]) -> Any:
        if request.method == "GET" and request.path == "/js.stripe.com/v3/":
            return web.Response(text=script, content_type="application/javascript")
        if request.method == "POST" and request.path.startswith("/_browser/confirm/"):
            data = await request.post()
            try:
                intent = resources.PaymentIntent._api_retrieve(request.path.rsplit("/", 1)[1])
                if not str(data.get("key", "")).startswith("pk_") or data.get("client_secret") != intent.client_secret:
                    raise UserError(401, "Unauthorized")
                card = {k: data.get(k, "") for k in ("number", "exp_month", "exp_year", "cvc")}
                method = resources.PaymentMethod._api_create(type="card", card=card)
                _new_try(intent)
                resources.PaymentIntent._api_update(intent.id, payment_method=method.id)
                resources.PaymentIntent._api_confirm(intent.id)
            except UserError as error:
                return web.json_response(error.body, status=error.code)
            response = web.json_response(resources.PaymentIntent._api_retrieve(intent.id)._export())
            response.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
            return response
        return await handler(request)

    return browser


CHECKOUT_PAGE = """<!doctype html><html lang="en"><title>Stripe Checkout (localstripe)</title><main>
<h1>Pay {currency} {amount:.2f}</h1><p>{description}</p>{error}
<form method="post"><label for="card">Card number</label>
<input id="card" name="number" value="4242424242424242" autocomplete="off">
<button type="submit">Pay</button></form><p><a href="{cancel_url}">Cancel</a></p></main></html>"""


def _checkout_middleware() -> Callable[..., Awaitable[Any]]:
    """Checkout Sessions, which localstripe lacks: create, retrieve (payment_intent expandable) and
    expire under /v1/checkout/sessions, and the hosted page at the session's `url`, where the
    shopper pays with a test card and is sent to the success URL (or sees the decline)."""
    import html
    import secrets as random
    import time as clock

    from aiohttp import web
    from localstripe import resources
    from localstripe.errors import UserError
    from localstripe.server import unflatten_data

    sessions: dict[str, dict[str, Any]] = {}

    def exported(session: dict[str, Any], expand: list[str]) -> dict[str, Any]:
        answer = {k: v for k, v in session.items() if not k.startswith("_")}
        if "payment_intent" in expand:
            answer["payment_intent"] = resources.PaymentIntent._api_retrieve(session["payment_intent"])._export()
        return answer

    def create(data: dict[str, Any], origin: str) -> dict[str, Any]:
        items = data.get("line_items") or []
        if data.get("mode") != "payment" or not items or not data.get("success_url"):
            raise UserError(400, "mode=payment, line_items and success_url are required")
        prices = [item["price_data"] for item in items]
        amount = sum(int(price["unit_amount"]) * int(item.get("quantity", 1))
                     for price, item in zip(prices, items, strict=True))
        intent_data = data.get("payment_intent_data") or {}
        intent = resources.PaymentIntent._api_create(
            amount=amount, currency=prices[0]["currency"], metadata=intent_data.get("metadata"),
            description=intent_data.get("description"), receipt_email=intent_data.get("receipt_email"),
            allowed_payment_method_types=data.get("allowed_payment_method_types"),
        )
        session_id = "cs_test_" + random.token_hex(12)
        session = {
            "id": session_id, "object": "checkout.session", "mode": "payment", "status": "open",
            "payment_status": "unpaid", "payment_intent": intent.id, "amount_total": amount,
            "currency": prices[0]["currency"], "url": f"{origin}/checkout.stripe.test/{session_id}",
            "success_url": data["success_url"], "cancel_url": data.get("cancel_url"),
            "client_reference_id": data.get("client_reference_id"), "customer_email": data.get("customer_email"),
            "metadata": data.get("metadata") or {}, "locale": data.get("locale"),
            "expires_at": int(clock.time()) + 86400, "_description": intent_data.get("description") or "",
        }
        sessions[session_id] = session
        return session

    async def hosted_page(request: web.Request, session: dict[str, Any]) -> web.StreamResponse:
        error = ""
        if request.method == "POST" and session["status"] == "open":
            number = (await request.post()).get("number", "")
            try:
                card = {"number": number, "exp_month": "12", "exp_year": "2034", "cvc": "123"}
                method = resources.PaymentMethod._api_create(type="card", card=card)
                _new_try(resources.PaymentIntent._api_retrieve(session["payment_intent"]))
                resources.PaymentIntent._api_update(session["payment_intent"], payment_method=method.id)
                resources.PaymentIntent._api_confirm(session["payment_intent"])
            except UserError as failure:
                error = f'<p role="alert">{html.escape(failure.body["error"].get("message", "Declined"))}</p>'
            else:
                session.update(status="complete", payment_status="paid")
                raise web.HTTPSeeOther(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]))
        page = CHECKOUT_PAGE.format(
            currency=session["currency"].upper(), amount=session["amount_total"] / 100, error=error,
            description=html.escape(session["_description"]), cancel_url=html.escape(session["cancel_url"] or ""))
        return web.Response(text=page, content_type="text/html", status=402 if error else 200)

    @web.middleware
    async def checkout(request: web.Request, handler: Callable[..., Awaitable[web.StreamResponse]]) -> Any:
        path = request.path
        if path.startswith("/checkout.stripe.test/"):
            session = sessions.get(path.rsplit("/", 1)[1])
            if session is None:
                return web.Response(status=404, text="No such checkout")
            return await hosted_page(request, session)
        if not path.startswith("/v1/checkout/sessions"):
            return await handler(request)
        if not request.headers.get("Authorization", "").startswith("Bearer sk_"):
            refused = {"error": {"type": "invalid_request_error", "message": "Unauthorized"}}
            return web.json_response(refused, status=401)
        parts = path.split("/")[4:]  # after /v1/checkout/sessions
        try:
            if request.method == "POST" and not parts:
                session = create(unflatten_data(await request.post()), f"{request.scheme}://{request.host}")
                return web.json_response(exported(session, []))
            session = sessions.get(parts[0]) if parts else None
            if session is None:
                raise UserError(404, "No such checkout.session")
            if request.method == "POST" and parts[1:] == ["expire"]:
                if session["status"] != "open":
                    raise UserError(400, "Only open sessions can be expired")
                session["status"] = "expired"
                return web.json_response(exported(session, []))
            expand = unflatten_data(request.query).get("expand") or []
            return web.json_response(exported(session, expand))
        except UserError as error:
            return web.json_response(error.body, status=error.code)

    return checkout


def serve() -> None:
    """Serve localstripe on a free port of 127.0.0.1, printing the port first."""
    from aiohttp import web

    _patch_localstripe()
    from localstripe import server

    server.app.middlewares.insert(0, _checkout_middleware())
    server.app.middlewares.insert(0, _idempotency_middleware())  # before the sessions: keys replay them too
    server.app.middlewares.insert(0, _browser_middleware())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    web.run_app(server.app, sock=sock, print=None, access_log=None)


if __name__ == "__main__":
    serve()
