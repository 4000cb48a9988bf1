"""The console's pages and the few actions it offers (each audited, each through the same service
functions as the API and the CLI)."""
from __future__ import annotations

import asyncio
import secrets
from datetime import date, timedelta
from typing import Any, Callable, TypeVar
from urllib.parse import quote, urlsplit

from sqlalchemy import Connection, Row, select
from starlette.convertors import IntegerConvertor, register_url_convertor
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from gateway.console import charts, queries, recon_requests
from gateway.console.actions import NEEDS, ChannelChangeError, redeliver_event
from gateway.console.actions import decide_channel_change as decide_change_as
from gateway.console.actions import propose_channel_change as propose_change_as
from gateway.console.actions import approve_resolution as approve_as
from gateway.console.actions import propose_resolution as propose_as
from gateway.console.identity import (OperatorError, SignInLimit, SignInRefused, authenticate, end_session,
                                      set_password, start_session)
from gateway.console.i18n import LOCALES
from gateway.console.web import audit, checked_form, client_ip, csrf_token, forbidden, gateway_of, page, render, tr
from gateway.janitor import exceptions as janitor_exceptions
from gateway.payouts import position_balances
from gateway.reconciliation.errors import ReconError
from gateway.reports import RunReport, channel_listing, funds_daily, open_items, run_report

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
        Route("/recon/requests", request_recon_run, methods=["POST"]),
        Route("/recon/items/{item_id:id}/propose", propose_resolution, methods=["POST"]),
        Route("/recon/items/{item_id:id}/approve", approve_resolution, methods=["POST"]),
        Route("/merchants", merchants_page, methods=["GET"]),
        Route("/channels", channels_page, methods=["GET"]),
        Route("/channels/changes", propose_channel_change, methods=["POST"]),
        Route("/channels/changes/{change_id:id}/approve", approve_channel_change, methods=["POST"]),
        Route("/channels/changes/{change_id:id}/reject", reject_channel_change, methods=["POST"]),
        Route("/events", events_page, methods=["GET"]),
        Route("/events/{event_id}/redeliver", redeliver_event_page, methods=["POST"]),
        Route("/audit", audit_page, methods=["GET"]),
        Route("/locale", set_locale, methods=["POST"]),
        Route("/close", close_page, methods=["GET"]),
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
        return forbidden(request, tr(request, "The sign-in form was not sent from this browser session. Reload and try again."))
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
            return render(request, "login.html", 429, next=next_, error=tr(request, "Too many failed sign-ins: %(why)s.", why=str(exc)))
        return render(request, "login.html", 401, next=next_, error=tr(request, "Wrong name or password."))
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
        return render(request, "password.html", 400, error=tr(request, "The new password and its repetition differ."))
    ip = client_ip(request)
    try:
        await asyncio.to_thread(authenticate, gw.db, op.name, current, gw.clock.now(), "console", ip,
                                SignInLimit.of(gw.settings))
    except SignInRefused as exc:
        status, error = (429, tr(request, "Too many failed tries: %(why)s.", why=str(exc))) if exc.code == "locked_out" \
            else (403, tr(request, "The current password is wrong."))
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

def _major(amount: int, currency: str = "CNY") -> float:
    from babel.numbers import get_currency_precision

    return round(amount / 10 ** get_currency_precision(currency), 2)


def _traffic_charts(request: Request, series: dict[str, list[tuple[str, int, int, int]]], unit: str,
                    span: str) -> list[dict[str, Any]]:
    """Attempts, success rate and volume per bucket across every channel account: one chart each."""
    labels = [label[11:16] if unit == "hour" else label[5:10] for label, *_ in next(iter(series.values()), [])]
    if not labels:
        labels = []
    axis = tr(request, "hour (UTC)") if unit == "hour" else tr(request, "day")
    empty = tr(request, "no attempt in this period")
    return [
        charts.stacked(tr(request, "Attempts per %(unit)s, %(span)s", unit=axis, span=span), labels,
                       {a: [t for _, t, _, _ in points] for a, points in series.items()}, unit="count",
                       y_name=tr(request, "attempts"), empty=empty,
                       total=lambda n: tr(request, "total: %(n)s attempts", n=f"{int(n):,}")),
        charts.rates(tr(request, "Success rate per %(unit)s, %(span)s", unit=axis, span=span), labels,
                     {a: [(t, ok) for _, t, ok, _ in points] for a, points in series.items()},
                     y_name="%", empty=empty, overall=lambda r: tr(request, "overall: %(rate)s", rate=f"{r:.1f}%")),
        charts.stacked(tr(request, "Volume (succeeded) per %(unit)s, %(span)s", unit=axis, span=span), labels,
                       {a: [_major(amount) for _, _, _, amount in points] for a, points in series.items()},
                       unit="money", currency="CNY", y_name="CNY", empty=empty,
                       total=lambda v: tr(request, "total: %(amount)s", amount=f"CNY {v:,.2f}")),
    ]


@page()
async def overview(request: Request, op: Row) -> Response:
    gw = gateway_of(request)
    now = gw.clock.now()
    today = gw.ledger.day.date_of(now)   # the books' day (Asia/Shanghai by default), not UTC's
    since = today - timedelta(days=29)

    def read(conn: Connection) -> dict[str, Any]:
        return {"channels": channel_listing(conn, gw.settings, now, 60),
                "hourly": queries.traffic(conn, now, "hour", 24),
                "daily": queries.traffic(conn, now, "day", 30),
                "exceptions": len(janitor_exceptions(conn, gw.operations)),
                "open": queries.open_counts(conn),
                "revenue": queries.revenue_per_day(conn, since, today),
                "differences": queries.differences_per_day(conn, since, today),
                "latency": queries.callback_latency(conn, now - timedelta(days=1))}

    data = await _read(request, read)
    hourly = [p for points in data["hourly"].values() for p in points]
    tried, won = sum(p[1] for p in hourly), sum(p[2] for p in hourly)
    daily = [p for points in data["daily"].values() for p in points]
    today = now.strftime("%Y-%m-%d 00:00")
    revenue = data["revenue"]
    fees, cost = sum(f for _, f, _ in revenue), sum(c for _, _, c in revenue)
    totals = {"volume_today": sum(p[3] for p in daily if p[0] == today),
              "count_today": sum(p[2] for p in daily if p[0] == today),
              "volume_30": sum(p[3] for p in daily), "success_rate": won / tried * 100 if tried else None,
              "attempts_24h": tried, "fees": fees, "cost": cost, "revenue": fees - cost}
    found, still_open = sum(n for _, n, _ in data["differences"]), sum(o for _, _, o in data["differences"])
    callbacks = sum(n for _, n in data["latency"])
    pictures = _traffic_charts(request, data["hourly"], "hour", tr(request, "last 24 h")) + [
        charts.bars(tr(request, "Revenue per day: fees less channel cost, 30 days"), [d[5:] for d, _, _ in revenue],
                    {tr(request, "fees"): [_major(f) for _, f, _ in revenue],
                     tr(request, "channel cost"): [_major(-c) for _, _, c in revenue],
                     tr(request, "revenue"): [_major(f - c) for _, f, c in revenue]},
                    unit="money", currency="CNY", y_name="CNY", line=tr(request, "revenue"),
                    subtitle=tr(request, "total: %(amount)s", amount=f"CNY {_major(fees - cost):,.2f}")),
        charts.bars(tr(request, "Reconciliation differences per day, 30 days"), [d[5:] for d, _, _ in data["differences"]],
                    {tr(request, "found"): [n for _, n, _ in data["differences"]],
                     tr(request, "still open"): [o for _, _, o in data["differences"]]},
                    unit="count", y_name=tr(request, "items"),
                    subtitle=tr(request, "total: %(n)s found, %(open)s open", n=found, open=still_open)),
        charts.bars(tr(request, "Callback latency, last 24 h (attempt created to callback)"),
                    [label for label, _ in data["latency"]], {tr(request, "callbacks"): [n for _, n in data["latency"]]},
                    unit="count", y_name=tr(request, "callbacks"),
                    subtitle=tr(request, "total: %(n)s callbacks", n=callbacks))]
    return render(request, "overview.html", data=data, totals=totals, pictures=pictures)


@page()
async def channels_page(request: Request, op: Row) -> Response:
    gw = gateway_of(request)
    now = gw.clock.now()

    def read(conn: Connection) -> dict[str, Any]:
        positions = position_balances(conn, gw.ledger, [a.id for a in gw.settings.channel_accounts], "CNY")
        return {"channels": channel_listing(conn, gw.settings, now, 60), "positions": positions,
                "hourly": queries.traffic(conn, now, "hour", 24), "daily": queries.traffic(conn, now, "day", 30)}

    data = await _read(request, read)
    pictures = (_traffic_charts(request, data["daily"], "day", tr(request, "30 days"))
                + _traffic_charts(request, data["hourly"], "hour", tr(request, "last 24 h")))
    switches = await _read(request, lambda conn: queries.channel_switches(conn, gw.settings.channel_accounts))
    return render(request, "channels.html", data=data, pictures=pictures, switches=switches,
                  message=request.query_params.get("done"))


def _minor(text: str, key: str) -> int | None:
    """A limit typed in major units ("1000.00") as minor units; "none" lifts the limit."""
    from decimal import Decimal, InvalidOperation

    from babel.numbers import get_currency_precision

    if text.strip().lower() == "none":
        return None
    try:
        value = Decimal(text.strip()) if key != "daily_count" else Decimal(int(text.strip()))
    except (InvalidOperation, ValueError):
        raise ChannelChangeError("invalid_limits", f"{key}: {text[:40]!r} is not a number.", 400) from None
    scaled = value if key == "daily_count" else value.scaleb(get_currency_precision("CNY"))
    if scaled != scaled.to_integral_value() or scaled < 0:
        raise ChannelChangeError("invalid_limits", f"{key}: {text[:40]!r} is not an amount of at least 0.", 400)
    return int(scaled)


def _change_from(form: FormData) -> dict[str, Any]:
    change: dict[str, Any] = {}
    enabled = str(form.get("enabled", ""))
    if enabled in ("on", "off"):
        change["enabled"] = enabled == "on"
    weight = str(form.get("weight", "")).strip()
    if weight:
        if not (weight.isascii() and weight.isdigit() and len(weight) <= 6):
            raise ChannelChangeError("invalid_weight", "The weight is a whole number from 1 to 1000.", 400)
        change["weight"] = int(weight)
    limits = {key: _minor(str(form.get(key)), key) for key in ("min_amount", "max_amount", "daily_amount",
                                                               "daily_count") if str(form.get(key, "")).strip()}
    if limits:
        change["limits"] = limits
    return change


@page(NEEDS["channel.propose"])
async def propose_channel_change(request: Request, op: Row, form: FormData) -> Response:
    gw = gateway_of(request)
    account, reason = str(form.get("account", "")), str(form.get("reason", "")).strip()
    try:
        change = _change_from(form)
        await gw.db.tx(lambda conn: propose_change_as(
            conn, op, [a.id for a in gw.settings.channel_accounts], account, change, reason, gw.clock.now(),
            source="console", client_ip=client_ip(request)))
    except ChannelChangeError as exc:
        return render(request, "message.html", exc.status, title=tr(request, "Not done"), message=f"{exc.code}: {exc}")
    return RedirectResponse(f"/console/channels?done=proposed+{quote(account)}#switches", 303)


async def _decide(request: Request, op: Row, approve: bool) -> Response:
    gw = gateway_of(request)
    change_id = request.path_params["change_id"]
    try:
        result = await gw.db.tx(lambda conn: decide_change_as(conn, op, change_id, approve, gw.clock.now(),
                                                              source="console", client_ip=client_ip(request)))
    except ChannelChangeError as exc:
        return render(request, "message.html", exc.status, title=tr(request, "Not done"), message=f"{exc.code}: {exc}")
    return RedirectResponse(f"/console/channels?done={result['status']}+{change_id}#switches", 303)


@page(NEEDS["channel.approve"])
async def approve_channel_change(request: Request, op: Row, form: FormData) -> Response:
    return await _decide(request, op, True)


@page(NEEDS["channel.approve"])
async def reject_channel_change(request: Request, op: Row, form: FormData) -> Response:
    return await _decide(request, op, False)


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
        return render(request, "message.html", 404, title=tr(request, "No such payment"),
                      message=tr(request, "There is no payment %(id)s.", id=request.path_params['payment_id']))
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
    today = gw.ledger.day.date_of(now)
    rows, per_day, asked, funds = await _read(request, lambda conn: (
        queries.recon_runs(conn), queries.differences_per_day(conn, today - timedelta(days=29), today),
        recon_requests.recent(conn), funds_daily(conn, gw.settings, today)))
    found, still_open = sum(n for _, n, _ in per_day), sum(o for _, _, o in per_day)
    chart = charts.bars(tr(request, "Reconciliation differences per day, 30 days"), [d[5:] for d, _, _ in per_day],
                        {tr(request, "found"): [n for _, n, _ in per_day], tr(request, "still open"): [o for _, _, o in per_day]},
                        unit="count", y_name=tr(request, "items"),
                        subtitle=tr(request, "total: %(n)s found, %(open)s open", n=found, open=still_open))
    return render(request, "recon.html", runs=[run_report(r) for r in rows], pictures=[chart], requests=asked,
                  accounts=[a.id for a in gw.settings.channel_accounts], today=today, funds=funds,
                  message=request.query_params.get("done"))


@page(NEEDS["recon.request"])
async def request_recon_run(request: Request, op: Row, form: FormData) -> Response:
    """Queue a run for a worker (`paymux worker`); the web process never runs it."""
    gw = gateway_of(request)
    now = gw.clock.now()
    account, day = str(form.get("account", "")), _day(str(form.get("date", "")))
    try:
        request_id = await gw.db.tx(lambda conn: recon_requests.request_run(
            conn, op, [a.id for a in gw.settings.channel_accounts], account, day, gw.ledger.day.date_of(now), now,
            source="console", client_ip=client_ip(request)))
    except recon_requests.RequestRefused as exc:
        return render(request, "message.html", 400, title=tr(request, "Not done"), message=f"{exc.code}: {exc}")
    return RedirectResponse(f"/console/recon?done=queued+request+{request_id}#requests", 303)


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
        return render(request, "message.html", 404, title=tr(request, "No such run"),
                      message=tr(request, "There is no run %(id)s.", id=run_id))
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
        return render(request, "message.html", 400, title=tr(request, "Not done"),
                      message=tr(request, "proposal_required: the approval names no proposal. Reload the page and "
                                          "try again."))
    return await _recon_action(request, lambda conn: approve_as(
        conn, op, item_id, int(proposal), gw.booker, gw.clock.now(), source="console",
        client_ip=client_ip(request)), "approved")


async def _recon_action(request: Request, act: Callable[[Connection], dict[str, Any]], done: str) -> Response:
    try:
        result = await gateway_of(request).db.tx(act)
    except ReconError as exc:
        return render(request, "message.html", 409, title=tr(request, "Not done"), message=f"{exc.code}: {exc}")
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
        return render(request, "message.html", 409, title=tr(request, "Not queued"),
                      message=tr(request, "Event %(id)s does not exist or has no endpoint to deliver to.", id=event_id))
    return RedirectResponse(f"/console/events?done=queued+{event_id}", 303)


@page("viewer")
async def set_locale(request: Request, op: Row, form: FormData) -> Response:
    """An operator's console language (empty: follow the browser's Accept-Language); audited."""
    from sqlalchemy import update

    from gateway.console.identity import operators

    chosen = str(form.get("locale", ""))
    if chosen and chosen not in LOCALES:
        return render(request, "message.html", 400, title=tr(request, "Not done"),
                      message=tr(request, "unknown_locale: the console speaks %(known)s.", known=", ".join(LOCALES)))
    gw = gateway_of(request)

    def save(conn: Connection) -> None:
        conn.execute(update(operators).where(operators.c.id == op.id).values(locale=chosen or None))
        audit(conn, op, request, "operator.locale", f"operator:{op.name}", {"locale": op.locale},
              {"locale": chosen or None})

    await gw.db.tx(save)
    return RedirectResponse(_safe_next(str(form.get("next", ""))), 303)


@page()
async def audit_page(request: Request, op: Row) -> Response:
    from gateway.console.identity import audit_log

    rows = await _read(request, lambda conn: conn.execute(select(audit_log).order_by(audit_log.c.id.desc())
                                                          .limit(200)).all())
    return render(request, "audit.html", rows=rows)


@page()
async def close_page(request: Request, op: Row) -> Response:
    """The daily close of a business day (default: yesterday, the day closed this morning)."""
    from gateway.close.status import day_status

    gw = gateway_of(request)
    day = _day(request.query_params.get("date", "")) or gw.ledger.day.date_of(gw.clock.now()) - timedelta(days=1)
    closes = await _read(request, lambda conn: day_status(conn, day))
    return render(request, "close.html", closes=closes, day=day)
