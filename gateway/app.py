"""create_app(settings) -> the Starlette app. The route table of the merchant API is below."""
from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from typing import Any, Iterable

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send
from structlog.typing import FilteringBoundLogger

from gateway.api import events, health, ledger, notify, payments, payouts, refunds, statements
from gateway.api.common import error_response, json_response
from gateway.api.openapi import openapi_document
from gateway.api.text import check_pairs, check_target
from gateway.clock import Clock
from gateway.config import Settings
from gateway.console import console_app, console_favicon
from gateway.errors import PaymuxError, invalid_request
from gateway.logs import get_logger
from gateway.metrics import Metrics, route_of
from gateway.service import Gateway

MAINTENANCE_EVERY_SECONDS = 60.0
_REQUEST_ID = re.compile(r"^[A-Za-z0-9_\-.]{1,64}$")


def routes() -> list[Route]:
    return [
        # First: a channel's callbacks are most of the requests at a peak, and Starlette tries routes in order.
        Route("/v1/notify/{channel_account}", notify.notify, methods=["POST", "GET"]),
        Route("/v1/payments", payments.create_payment, methods=["POST"]),
        Route("/v1/payments", payments.find_payment, methods=["GET"]),
        Route("/v1/payments/{payment_id}", payments.get_payment, methods=["GET"]),
        Route("/v1/payments/{payment_id}/close", payments.close_payment, methods=["POST"]),
        Route("/v1/payments/{payment_id}/attempts", payments.new_attempt, methods=["POST"]),
        Route("/v1/payments/{payment_id}/attempts", payments.list_attempts, methods=["GET"]),
        Route("/v1/payments/{payment_id}/refunds", refunds.create_refund, methods=["POST"]),
        Route("/v1/refunds/{refund_id}", refunds.get_refund, methods=["GET"]),
        Route("/v1/payments/{payment_id}/splits", payouts.create_split, methods=["POST"]),
        Route("/v1/payments/{payment_id}/splits", payouts.list_splits, methods=["GET"]),
        Route("/v1/payments/{payment_id}/splits/finish", payouts.finish_splits, methods=["POST"]),
        Route("/v1/splits/{split_id}", payouts.get_split, methods=["GET"]),
        Route("/v1/receivers", payouts.create_receiver, methods=["POST"]),
        Route("/v1/receivers/{receiver_id}", payouts.get_receiver, methods=["GET"]),
        Route("/v1/receivers/{receiver_id}/payouts", payouts.create_receiver_payout, methods=["POST"]),
        Route("/v1/payouts", payouts.create_payout, methods=["POST"]),
        Route("/v1/payouts", payouts.find_payout, methods=["GET"]),
        Route("/v1/payouts/{payout_id}", payouts.get_payout, methods=["GET"]),
        Route("/v1/balance", ledger.balance, methods=["GET"]),
        Route("/v1/ledger/entries", ledger.entries, methods=["GET"]),
        Route("/v1/events", events.list_events, methods=["GET"]),
        Route("/v1/statements/{business_date}.csv", statements.get_statement_csv, methods=["GET"]),
        Route("/v1/statements/{business_date}", statements.get_statement, methods=["GET"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/metrics", health.metrics, methods=["GET"]),
        Route("/openapi.json", lambda request: json_response(openapi_document()), methods=["GET"]),
    ]


# Sent with every answer, JSON or HTML; a page that set its own (the console's CSP) keeps it.
SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"))
_FORM = b"application/x-www-form-urlencoded"


class RequestContextMiddleware:
    """Request id, one log line per request, security headers, the body-size limit (checked while
    reading), and text no handler should see (NUL, lone surrogates, bytes that are not UTF-8) in the
    path, the query or a form: a 400 before any route."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, log: FilteringBoundLogger, metrics: Metrics | None = None,
                 methods: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.log = log
        self.metrics = metrics
        self.methods = methods

    def too_large(self) -> PaymuxError:
        return invalid_request("request_too_large", f"The request body exceeds {self.max_body} bytes", status=413)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else "req_" + secrets.token_hex(8)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_wrapper(message: dict) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                sent = list(message.get("headers", []))
                present = {name.lower() for name, _ in sent}
                message["headers"] = sent + [(b"x-request-id", request_id.encode())] + [
                    header for header in SECURITY_HEADERS if header[0] not in present]
            await send(message)

        received = 0

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise self.too_large()
            return message

        declared = headers.get(b"content-length", b"")
        try:
            if declared.isdigit() and int(declared) > self.max_body:
                raise self.too_large()
            check_target(scope)
            # One Content-Type: the check below and the parser behind it must read the same one.
            if sum(name.lower() == b"content-type" for name, _ in scope.get("headers") or []) > 1:
                raise invalid_request("duplicate_header", "Content-Type is given more than once", "Content-Type")
            checked_receive = await _checked_body(headers.get(b"content-type", b""), limited_receive)
        except PaymuxError as refused:
            await error_response(refused)(scope, receive, send_wrapper)
        else:
            await self.app(scope, checked_receive, send_wrapper)
        seconds = time.perf_counter() - started
        self.log.info("http.request", method=scope["method"], path=scope["path"], status=status_holder["status"],
                      duration_ms=round(seconds * 1000, 2))
        if self.metrics is not None:   # a method no route takes is one label value, whatever was sent
            method = scope["method"] if scope["method"] in self.methods else "other"
            self.metrics.request(route_of(scope), method, status_holder["status"], seconds)


async def _checked_body(content_type: bytes, receive: Receive) -> Receive:
    """A form body is read whole (within the limit) and checked; a multipart one is refused (no route
    takes one). Any other body is passed on as it streams: JSON is checked where it is parsed."""
    kind = content_type.split(b";")[0].strip().lower()
    if kind == b"multipart/form-data":
        raise invalid_request("unsupported_media_type", "multipart bodies are not accepted", status=415)
    if kind != _FORM:
        return receive
    chunks, message = [], {"more_body": True}
    while message.get("more_body"):
        message = await receive()
        if message["type"] != "http.request":
            return receive   # the client went away: nothing to check
        chunks.append(message.get("body", b""))
    body = b"".join(chunks)
    if body:
        check_pairs(body, "body")
    replayed = False

    async def replay() -> dict:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _paymux_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PaymuxError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "route_not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return error_response(PaymuxError(exc.status_code, "invalid_request_error", code, str(exc.detail)))


async def _unexpected(request: Request, exc: Exception) -> Response:
    get_logger().exception("http.unhandled_error", path=request.url.path, error=type(exc).__name__)
    return error_response(PaymuxError(500, "api_error", "internal_error",
                                      "Something went wrong on our side; it is logged. Retry with the same Idempotency-Key."))


def create_app(settings: Settings, *, clock: Clock | None = None, extra_plugins: Iterable[Any] = (),
               log: FilteringBoundLogger | None = None, run_workers: bool = True) -> Starlette:
    log = log or get_logger()
    gateway = Gateway.build(settings, log, clock, extra_plugins)
    hosted = [Mount(f"/hosted/{account.id}", app=app)
              for account in gateway.host.accounts.values()
              if account.enabled and (app := account.channel.hosted_app()) is not None]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):  # noqa: ANN202
        tasks = [asyncio.create_task(_maintenance_loop(gateway)), asyncio.create_task(gateway.health_loop())]
        if run_workers:  # one machine: `paymux serve` also delivers; `paymux worker` scales this out
            tasks += [asyncio.create_task(gateway.notifier.run()), asyncio.create_task(gateway.janitor.run())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await gateway.aclose()

    console = [Route("/console", lambda request: RedirectResponse("/console/", 307)),
               Route("/favicon.ico", console_favicon, methods=["GET"]),
               Mount("/console", app=console_app(gateway))]
    table = routes()
    methods = frozenset(method for route in table for method in route.methods or ())
    app = Starlette(
        routes=table + hosted + console,
        exception_handlers={PaymuxError: _paymux_error, HTTPException: _http_error, Exception: _unexpected},
        middleware=[Middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, log=log,
                               metrics=gateway.metrics, methods=methods)],
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return app


async def _maintenance_loop(gateway: Gateway) -> None:
    while True:
        try:
            await gateway.maintenance()
        except Exception as exc:  # noqa: BLE001  housekeeping must never take the server down
            gateway.log.warning("maintenance.failed", error=type(exc).__name__)
        await asyncio.sleep(MAINTENANCE_EVERY_SECONDS)

