"""The console's pages and the few actions it offers (each audited, each through the same service
functions as the API and the CLI)."""
from __future__ import annotations

import asyncio
import secrets
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.convertors import IntegerConvertor, register_url_convertor
from starlette.routing import Route

from gateway.console import (TEMPLATES, audit, checked_form, csrf_token, forbidden, gateway_of, mark_signed_in,
                             operators, page, render)
from gateway.console import charts, queries
from gateway.console.passwords import DUMMY_HASH, verify_password
from gateway.health import channel_listing
from gateway.janitor import exceptions as janitor_exceptions
from gateway.notifier import redeliver
from gateway.payouts import position_balances
from gateway.reconcile import ReconError, approve, open_items, propose, proposals, run_report
from ledger.booking import Booker


def printable(value: Any) -> Any:
    """Every value a page prints. A stored string no page can encode (a lone surrogate, kept in a JSON
    column) is shown escaped, \\ud800, so the record stays readable instead of its page failing."""
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return type(value)(value.encode("utf-8", "backslashreplace").decode("utf-8"))   # Markup stays Markup
    return value


TEMPLATES.finalize = printable   # before any template is compiled: this module is imported with the app


class RowId(IntegerConvertor):
    """A 64-bit row id in a path: a longer number matches no route (404), never an overflow (500)."""

    regex = "[0-9]{1,18}"


register_url_convertor("id", RowId())


def routes() -> list[Route]:
    return [
        Route("/login", sign_in_page, methods=["GET"]),
        Route("/login", sign_in, methods=["POST"]),
        Route("/logout", sign_out, methods=["POST"]),
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
        Route("/events/{event_id}/redeliver", redeliver_event, methods=["POST"]),
        Route("/audit", audit_page, methods=["GET"]),
    ]


async def _read(request: Request, fn: Any) -> Any:
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
    gw = gateway_of(request)
    if await gw.db.tx(lambda conn: _locked_out(conn, name[:100], gw.clock.now())):
        return render(request, "login.html", 429, next=_safe_next(str(form.get("next", ""))),
                      error=f"Too many failed sign-ins for this name: wait {LOCKOUT.seconds // 60} minutes.")
    op = await gw.db.tx(lambda conn: conn.execute(select(operators).where(operators.c.name == name)).first())
    # The KDF runs whether or not the name exists, off the event loop.
    ok = await asyncio.to_thread(verify_password, password, op.password_hash if op else DUMMY_HASH)
    if op is None or op.disabled or not ok:
        gw.log.warning("console.sign_in_failed", name=name[:100])
        await gw.db.tx(lambda conn: _audit_sign_in(conn, request, name, "-", "console.sign_in_failed"))
        csrf_token(request)
        return render(request, "login.html", 401, next=_safe_next(str(form.get("next", ""))),
                      error="Wrong name or password.")
    request.session.clear()                     # a new session at sign-in (no fixation)
    request.session["operator"] = op.id
    request.session["csrf"] = secrets.token_urlsafe(32)
    await gw.db.tx(lambda conn: (mark_signed_in(conn, op.id, gw.clock.now()),
                                 _audit_sign_in(conn, request, op.name, op.role, "console.sign_in")))
    gw.log.info("console.signed_in", operator=op.name, role=op.role)
    return RedirectResponse(_safe_next(str(form.get("next", ""))), 303)


LOCKOUT, MAX_FAILURES = timedelta(minutes=15), 5


def _locked_out(conn: Any, name: str, now: Any) -> bool:
    """MAX_FAILURES failed sign-ins for one name within LOCKOUT refuse more tries until they age out
    (counted from the audit log, so every process agrees)."""
    from sqlalchemy import and_, func

    from gateway.console import audit_log

    failures = conn.execute(select(func.count()).select_from(audit_log).where(and_(
        audit_log.c.operator == name, audit_log.c.action == "console.sign_in_failed",
        audit_log.c.at >= now - LOCKOUT))).scalar_one()
    return failures >= MAX_FAILURES


def _audit_sign_in(conn: Any, request: Request, name: str, role: str, action: str) -> None:
    from types import SimpleNamespace

    audit(conn, SimpleNamespace(name=name[:100], role=role), request, action, "console")


@page("viewer")
async def sign_out(request: Request, op: Any, form: Any) -> Response:
    request.session.clear()
    return RedirectResponse("/console/login", 303)


# ---- overview and channels ----

@page()
async def overview(request: Request, op: Any) -> Response:
    gw = gateway_of(request)
    now = gw.clock.now()

    def read(conn: Any) -> dict[str, Any]:
        return {"channels": channel_listing(conn, gw.settings, now, 60),
                "hourly": queries.traffic(conn, now, "hour", 24),
                "exceptions": len(janitor_exceptions(conn)),
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
async def channels_page(request: Request, op: Any) -> Response:
    gw = gateway_of(request)
    now = gw.clock.now()

    def read(conn: Any) -> dict[str, Any]:
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
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@page()
async def payments_page(request: Request, op: Any) -> Response:
    gw = gateway_of(request)
    q = request.query_params.get("q", "").strip()[:128]
    status = request.query_params.get("status", "")
    day = _day(request.query_params.get("date"))
    found = await _read(request, lambda conn: queries.search_payments(conn, q, status, day,
                                                                      gw.settings.business_timezone))
    return render(request, "payments.html", payments=found, q=q, status=status, day=day,
                  statuses=queries.STATUSES)


@page()
async def payment_page(request: Request, op: Any) -> Response:
    story = await _read(request, lambda conn: queries.payment_story(conn, request.path_params["payment_id"]))
    if story is None:
        return render(request, "message.html", 404, title="No such payment",
                      message=f"There is no payment {request.path_params['payment_id']}.")
    return render(request, "payment.html", story=story)


@page()
async def refunds_page(request: Request, op: Any) -> Response:
    status = request.query_params.get("status", "")
    data = await _read(request, lambda conn: (queries.recent_refunds(conn, status), queries.recent_payouts(conn)))
    return render(request, "refunds.html", refunds=data[0], payouts=data[1], status=status)


@page()
async def exceptions_page(request: Request, op: Any) -> Response:
    return render(request, "exceptions.html", exceptions=await _read(request, janitor_exceptions))


# ---- reconciliation: the maker-checker of `paymux recon`, in the browser ----

@page()
async def recon_page(request: Request, op: Any) -> Response:
    gw = gateway_of(request)
    now = gw.clock.now()
    rows, per_day = await _read(request, lambda conn: (queries.recon_runs(conn), queries.differences_per_day(
        conn, now.date() - timedelta(days=29), now.date())))
    return render(request, "recon.html", runs=[run_report(r) for r in rows],
                  chart=charts.bars("Differences found per day (30 days)", [(d, n) for d, n, _ in per_day],
                                    color="#b5651d"))


@page()
async def recon_run_page(request: Request, op: Any) -> Response:
    from gateway.models import ReconRun

    run_id = request.path_params["run_id"]

    def read(conn: Any) -> Any:
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


@page("operator")
async def propose_resolution(request: Request, op: Any, form: Any) -> Response:
    gw = gateway_of(request)
    item_id = request.path_params["item_id"]
    action, reason = str(form.get("action", "")), str(form.get("reason", "")).strip()

    def act(conn: Any) -> dict[str, Any]:
        result = propose(conn, item_id, action, op.name, reason, gw.clock.now())
        audit(conn, op, request, "recon.propose", f"recon-item:{item_id}", {"status": "open"},
              {"action": action, "reason": reason})
        return result

    return await _recon_action(request, act, "proposed")


@page("approver")
async def approve_resolution(request: Request, op: Any, form: Any) -> Response:
    gw = gateway_of(request)
    item_id = request.path_params["item_id"]

    def act(conn: Any) -> dict[str, Any]:
        proposal = conn.execute(select(proposals.c.id, proposals.c.action, proposals.c.proposed_by,
                                       proposals.c.reason).where(proposals.c.item_id == item_id,
                                                                 proposals.c.status == "proposed")).first()
        result = approve(conn, item_id, op.name, Booker(gw.ledger), gw.clock.now())
        audit(conn, op, request, "recon.approve", f"recon-item:{item_id}",
              {"status": "open", "proposal": dict(proposal._mapping) if proposal else None},
              {"status": result["status"], "resolution": result["resolution"]})
        return result

    return await _recon_action(request, act, "approved")


async def _recon_action(request: Request, act: Any, done: str) -> Response:
    try:
        result = await gateway_of(request).db.tx(act)
    except ReconError as exc:
        return render(request, "message.html", 409, title="Not done", message=f"{exc.code}: {exc}")
    return RedirectResponse(f"/console/recon/runs/{result['run_id']}?done={done}+item+{result['id']}", 303)


# ---- merchants, events, audit ----

@page()
async def merchants_page(request: Request, op: Any) -> Response:
    gw = gateway_of(request)
    return render(request, "merchants.html",
                  merchants=await _read(request, lambda conn: queries.merchants_with_balances(conn, gw.ledger)))


@page()
async def events_page(request: Request, op: Any) -> Response:
    status = request.query_params.get("status", "")
    return render(request, "events.html", events=await _read(request, lambda conn: queries.recent_events(conn, status)),
                  status=status, message=request.query_params.get("done"))


@page("operator")
async def redeliver_event(request: Request, op: Any, form: Any) -> Response:
    from gateway.models import MerchantEvent

    gw = gateway_of(request)
    event_id = request.path_params["event_id"]
    table = MerchantEvent.__table__

    def act(conn: Any) -> bool:
        before = conn.execute(select(table.c.status, table.c.attempts).where(table.c.id == event_id)).first()
        queued = redeliver(conn, event_id, gw.clock.now())
        if queued:
            audit(conn, op, request, "event.redeliver", event_id, {"status": before.status,
                                                                    "attempts": before.attempts}, {"status": "pending"})
        return queued

    if not await gw.db.tx(act):
        return render(request, "message.html", 409, title="Not queued",
                      message=f"Event {event_id} does not exist or has no endpoint to deliver to.")
    return RedirectResponse(f"/console/events?done=queued+{event_id}", 303)


@page()
async def audit_page(request: Request, op: Any) -> Response:
    from gateway.console import audit_log

    rows = await _read(request, lambda conn: conn.execute(select(audit_log).order_by(audit_log.c.id.desc())
                                                          .limit(200)).all())
    return render(request, "audit.html", rows=rows)
