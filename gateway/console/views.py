"""The console's pages and the few actions it offers (each audited, each through the same service
functions as the API and the CLI)."""
from __future__ import annotations

import asyncio
import secrets
from datetime import date, timedelta
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit

from sqlalchemy import Connection, Row, select
from starlette.convertors import IntegerConvertor, register_url_convertor
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.console import charts, queries
from gateway.console.actions import NEEDS, redeliver_event
from gateway.console.actions import approve_resolution as approve_as
from gateway.console.actions import propose_resolution as propose_as
from gateway.console.identity import (OperatorError, SignInLimit, SignInRefused, authenticate, end_session,
                                      set_password, start_session)
from gateway.console.web import audit, checked_form, client_ip, csrf_token, forbidden, gateway_of, page, render
from gateway.janitor import exceptions as janitor_exceptions
from gateway.payouts import position_balances
from gateway.reconciliation.errors import ReconError
from gateway.reports import RunReport, channel_listing, open_items, run_report

T = TypeVar("T")


class RowId(IntegerConvertor):
    """A 64-bit row id in a path: a longer number matches no route (404), never an overflow (500)."""

    regex = "[0-9]{1,18}"


register_url_convertor("id", RowId())


def routes() -> list[Route]:
    return [
        Route("/login", sign_in_page, methods=["GET"]),
        Route("/login", sign_in, methods=["POST"]),
        Route("/logout", sign_out, methods=["POST"]),
        Route("/password", password_page, methods=["GET"]),
        Route("/password", change_password, methods=["POST"]),
        Route("/", overview, methods=["GET"]),
        Route("/payments", payments_page, methods=["GET"]),
        Route("/payments/{payment_id}", payment_page, methods=["GET"]),
        Route("/refunds", refunds_page, methods=["GET"]),
        Route("/exceptions", exceptions_page, methods=["GET"]),
        Route("/recon", recon_page, methods=["GET"]),
        Route("/recon/runs/{run_id}", recon_run_page, methods=["GET"]),
        Route("/recon/items/{item_id:id}/propose", propose_resolution, methods=["POST"]),
        Route("/recon/items/{item_id:id}/approve", approve_resolution, methods=["POST"]),
        Route("/merchants", merchants_page, methods=["GET"]),
        Route("/channels", channels_page, methods=["GET"]),
        Route("/events", events_page, methods=["GET"]),
        Route("/events/{event_id}/redeliver", redeliver_event_page, methods=["POST"]),
        Route("/audit", audit_page, methods=["GET"]),
    ]


async def _read(request: Request, fn: Callable[[Connection], T]) -> T:
    return await gateway_of(request).db.tx(fn)


# ---- signing in and out ----

def _safe_next(target: str | None) -> str:
    """Only a path inside the console: never another site (an open redirect)."""
    if not target:
        return "/console/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console/") and parts.path != "/console":
        return "/console/"
    return target


async def sign_in_page(request: Request) -> Response:
    csrf_token(request)
    return render(request, "login.html", next=_safe_next(request.query_params.get("next")))


async def sign_in(request: Request) -> Response:
    form = await checked_form(request)
    if form is None:
        return forbidden(request, "The sign-in form was not sent from this browser session. Reload and try again.")
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    next_ = _safe_next(str(form.get("next", "")))
    gw = gateway_of(request)
    ip = client_ip(request)
    try:
        op = await asyncio.to_thread(authenticate, gw.db, name, password, gw.clock.now(), "console", ip,
                                     SignInLimit.of(gw.settings))
    except SignInRefused as exc:
        gw.log.warning("console.sign_in_failed", name=name[:100], code=exc.code)
        if exc.code == "locked_out":
            return render(request, "login.html", 429, next=next_, error=f"Too many failed sign-ins: {exc}.")
        return render(request, "login.html", 401, next=next_, error="Wrong name or password.")
    token = await gw.db.tx(lambda conn: start_session(conn, op.id, gw.clock.now(), ip))
    request.session.clear()                     # a new session at sign-in (no fixation)
    request.session["token"] = token
    request.session["csrf"] = secrets.token_urlsafe(32)
    gw.log.info("console.signed_in", operator=op.name, role=op.role)
    return RedirectResponse(next_, 303)


@page("viewer")
async def sign_out(request: Request, op: Row, form: FormData) -> Response:
    gw = gateway_of(request)
    token = request.session.get("token", "")
    await gw.db.tx(lambda conn: (end_session(conn, token, gw.clock.now()),
                                 audit(conn, op, request, "console.sign_out", "console")))
    request.session.clear()
    return RedirectResponse("/console/login", 303)


@page("viewer")
async def password_page(request: Request, op: Row) -> Response:
    return render(request, "password.html", message=request.query_params.get("done"))


@page("viewer")
async def change_password(request: Request, op: Row, form: FormData) -> Response:
    """An operator's own password: the current one is checked as a sign-in is (the same tries), then
    every session of theirs ends and this browser gets a new one."""
    gw = gateway_of(request)
    current, new, again = (str(form.get(k, "")) for k in ("current", "new", "again"))
    if new != again:
        return render(request, "password.html", 400, error="The new password and its repetition differ.")
    ip = client_ip(request)
    try:
        await asyncio.to_thread(authenticate, gw.db, op.name, current, gw.clock.now(), "console", ip,
                                SignInLimit.of(gw.settings))
    except SignInRefused as exc:
        status, error = (429, f"Too many failed tries: {exc}.") if exc.code == "locked_out" else \
            (403, "The current password is wrong.")
        return render(request, "password.html", status, error=error)

    def change(conn: Connection) -> str:
        now = gw.clock.now()
        set_password(conn, op.name, new, now)        # ends every session of theirs, this one included
        audit(conn, op, request, "operator.password", op.id, None, {"sessions_ended": True})
        return start_session(conn, op.id, now, ip)

    try:
        token = await gw.db.tx(change)
    except OperatorError as exc:
        return render(request, "password.html", 400, error=f"{exc}.")
    request.session.clear()
    request.session["token"] = token
    request.session["csrf"] = secrets.token_urlsafe(32)
    return RedirectResponse("/console/password?done=changed", 303)


# ---- overview and channels ----

@page()
async def overview(request: Request, op: Row) -> Response:
    gw = gateway_of(request)
    now = gw.clock.now()

    def read(conn: Connection) -> dict[str, Any]:
        return {"channels": channel_listing(conn, gw.settings, now, 60),
                "hourly": queries.traffic(conn, now, "hour", 24),
                "exceptions": len(janitor_exceptions(conn, gw.operations)),
                "differences": queries.differences_per_day(conn, now.date() - timedelta(days=29), now.date()),
                "latency": queries.callback_latency(conn, now - timedelta(days=1))}

    data = await _read(request, read)
    open_differences = sum(o for _, _, o in data["differences"])
    pictures = {account: (charts.bars(f"{account}: attempts per hour (UTC), last 24 h",
                                      [(label, total) for label, total, _ in series]),
                          charts.success_rate(f"{account}: success rate per hour", series))
                for account, series in data["hourly"].items()}
    return render(request, "overview.html", data=data, pictures=pictures, open_differences=open_differences,
                  differences_chart=charts.bars("Reconciliation differences per day (30 days)",
                                                [(d, n) for d, n, _ in data["differences"]], color="#b5651d"),
                  latency_chart=charts.bars("Callback latency, last 24 h (attempt created → callback)",
                                            data["latency"], color="#6a4c93"))


@page()
async def channels_page(request: Request, op: Row) -> Response:
    gw = gateway_of(request)
    now = gw.clock.now()

    def read(conn: Connection) -> dict[str, Any]:
        positions = position_balances(conn, gw.ledger, [a.id for a in gw.settings.channel_accounts], "CNY")
        return {"channels": channel_listing(conn, gw.settings, now, 60), "positions": positions,
                "hourly": queries.traffic(conn, now, "hour", 24), "daily": queries.traffic(conn, now, "day", 30)}

    data = await _read(request, read)
    pictures = {}
    for account in gw.settings.channel_accounts:
        hourly, daily = data["hourly"].get(account.id, []), data["daily"].get(account.id, [])
        pictures[account.id] = [
            charts.bars("Attempts per hour (UTC), 24 h", [(label, total) for label, total, _ in hourly]),
            charts.success_rate("Success rate per hour, 24 h", hourly),
            charts.bars("Attempts per day, 30 days", [(label[:10], total) for label, total, _ in daily]),
            charts.success_rate("Success rate per day, 30 days", [(label[:10], t, ok) for label, t, ok in daily])]
    return render(request, "channels.html", data=data, pictures=pictures)


# ---- payments and refunds ----

def _day(text: str | None) -> date | None:
    """A day to search by, or None; only days with a next day (not 9999-12-31) can bound a search."""
    try:
        day = date.fromisoformat(text) if text else None
    except ValueError:
        return None
    return day if day is None or day < date.max else None


@page()
async def payments_page(request: Request, op: Row) -> Response:
    gw = gateway_of(request)
    q = request.query_params.get("q", "").strip()[:128]
    status = request.query_params.get("status", "")
    day = _day(request.query_params.get("date"))
    found = await _read(request, lambda conn: queries.search_payments(conn, q, status, day,
                                                                      gw.settings.business_timezone))
    return render(request, "payments.html", payments=found, q=q, status=status, day=day,
                  statuses=queries.STATUSES)


@page()
async def payment_page(request: Request, op: Row) -> Response:
    story = await _read(request, lambda conn: queries.payment_story(conn, request.path_params["payment_id"]))
    if story is None:
        return render(request, "message.html", 404, title="No such payment",
                      message=f"There is no payment {request.path_params['payment_id']}.")
    return render(request, "payment.html", story=story)


@page()
async def refunds_page(request: Request, op: Row) -> Response:
    status = request.query_params.get("status", "")
    data = await _read(request, lambda conn: (queries.recent_refunds(conn, status), queries.recent_payouts(conn)))
    return render(request, "refunds.html", refunds=data[0], payouts=data[1], status=status)


@page()
async def exceptions_page(request: Request, op: Row) -> Response:
    operations = gateway_of(request).operations   # every operation kind the gateway has, tests' own included
    return render(request, "exceptions.html",
                  exceptions=await _read(request, lambda conn: janitor_exceptions(conn, operations)))


# ---- reconciliation: the maker-checker of `paymux recon`, in the browser ----

@page()
async def recon_page(request: Request, op: Row) -> Response:
    gw = gateway_of(request)
    now = gw.clock.now()
    rows, per_day = await _read(request, lambda conn: (queries.recon_runs(conn), queries.differences_per_day(
        conn, now.date() - timedelta(days=29), now.date())))
    return render(request, "recon.html", runs=[run_report(r) for r in rows],
                  chart=charts.bars("Differences found per day (30 days)", [(d, n) for d, n, _ in per_day],
                                    color="#b5651d"))


@page()
async def recon_run_page(request: Request, op: Row) -> Response:
    from gateway.models import ReconRun

    run_id = request.path_params["run_id"]

    def read(conn: Connection) -> tuple[RunReport, list[dict[str, Any]]] | None:
        row = conn.execute(select(ReconRun.__table__).where(ReconRun.__table__.c.id == run_id)).first()
        if row is None:
            return None
        listed = open_items(conn, include_closed=True, run_id=run_id)
        return run_report(row), listed

    found = await _read(request, read)
    if found is None:
        return render(request, "message.html", 404, title="No such run", message=f"There is no run {run_id}.")
    report, listed = found
    return render(request, "recon_run.html", run=report, items=listed, message=request.query_params.get("done"))


@page(NEEDS["recon.propose"])
async def propose_resolution(request: Request, op: Row, form: FormData) -> Response:
    gw = gateway_of(request)
    item_id = request.path_params["item_id"]
    action, reason = str(form.get("action", "")), str(form.get("reason", "")).strip()
    return await _recon_action(request, lambda conn: propose_as(
        conn, op, item_id, action, reason, gw.clock.now(), source="console", client_ip=client_ip(request)),
                               "proposed")


@page(NEEDS["recon.approve"])
async def approve_resolution(request: Request, op: Row, form: FormData) -> Response:
    """The form names the proposal the approver saw; if it changed since, nothing is done."""
    gw = gateway_of(request)
    item_id = request.path_params["item_id"]
    proposal = str(form.get("proposal", ""))
    if not (proposal.isascii() and proposal.isdigit()) or len(proposal) > 18:
        return render(request, "message.html", 400, title="Not done",
                      message="proposal_required: the approval names no proposal. Reload the page and try again.")
    return await _recon_action(request, lambda conn: approve_as(
        conn, op, item_id, int(proposal), gw.booker, gw.clock.now(), source="console",
        client_ip=client_ip(request)), "approved")


async def _recon_action(request: Request, act: Callable[[Connection], dict[str, Any]], done: str) -> Response:
    try:
        result = await gateway_of(request).db.tx(act)
    except ReconError as exc:
        return render(request, "message.html", 409, title="Not done", message=f"{exc.code}: {exc}")
    return RedirectResponse(f"/console/recon/runs/{result['run_id']}?done={done}+item+{result['id']}", 303)


# ---- merchants, events, audit ----

@page()
async def merchants_page(request: Request, op: Row) -> Response:
    gw = gateway_of(request)
    return render(request, "merchants.html",
                  merchants=await _read(request, lambda conn: queries.merchants_with_balances(conn, gw.ledger)))


@page()
async def events_page(request: Request, op: Row) -> Response:
    status = request.query_params.get("status", "")
    return render(request, "events.html", events=await _read(request, lambda conn: queries.recent_events(conn, status)),
                  status=status, message=request.query_params.get("done"))


@page(NEEDS["event.redeliver"])
async def redeliver_event_page(request: Request, op: Row, form: FormData) -> Response:
    gw = gateway_of(request)
    event_id = request.path_params["event_id"]
    if not await gw.db.tx(lambda conn: redeliver_event(conn, op, event_id, gw.clock.now(), source="console",
                                                        client_ip=client_ip(request))):
        return render(request, "message.html", 409, title="Not queued",
                      message=f"Event {event_id} does not exist or has no endpoint to deliver to.")
    return RedirectResponse(f"/console/events?done=queued+{event_id}", 303)


@page()
async def audit_page(request: Request, op: Row) -> Response:
    from gateway.console.identity import audit_log

    rows = await _read(request, lambda conn: conn.execute(select(audit_log).order_by(audit_log.c.id.desc())
                                                          .limit(200)).all())
    return render(request, "audit.html", rows=rows)
