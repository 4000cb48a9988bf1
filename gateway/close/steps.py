"""The steps of a day's close, in order: a small registry. A step is idempotent (running it again books
nothing twice) and answers done, waiting (try again later: the file is not there yet), held (it cannot
go on until a person acts: say why) or failed. The funds reconciliation of a reserve account is one
more, registered by gateway/close/funds.py before "statements".
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import Connection, select

from gateway.channel import Capability, StatementUnavailable
from gateway.errors import PaymuxError
from gateway.reconciliation import store
from gateway.reconciliation.settlement import SettlementRefused, Settler
from gateway.reports import daily_report
from gateway.statements import produce
from ledger.models import LedgerAccount, LedgerEntry, LedgerPosting

if TYPE_CHECKING:
    from gateway.service import Gateway

accounts, entries, postings = LedgerAccount.__table__, LedgerEntry.__table__, LedgerPosting.__table__
recon_runs = store.runs


@dataclass
class StepResult:
    status: str                                  # done | waiting | held | failed
    counts: dict[str, Any] = field(default_factory=dict)
    message: str | None = None


@dataclass
class DayContext:
    gateway: "Gateway"
    account: str
    business_date: date
    now: datetime
    earlier: dict[str, dict[str, Any]]           # the counts of the steps done before, by step
    deadline: datetime | None = None             # when the day's file should be there at the latest


@dataclass(frozen=True)
class Step:
    name: str
    kinds: tuple[str, ...]                       # which accounts it runs for: channel, reserve
    run: Callable[[DayContext], Awaitable[StepResult]]
    # what a worker killed in this step left marked as going on, put right before the step runs again
    # (conn, account, business day, when the killed try started, now): how many things it put right
    cut_off: Callable[[Connection, str, date, datetime, datetime], int] | None = None


STEPS: list[Step] = []


def register(step: Step, before: str | None = None) -> Step:
    """Add a step at the end, or before the step named `before`; a name registered again is replaced in place."""
    same = next((i for i, s in enumerate(STEPS) if s.name == step.name), None)
    if same is not None and before is None:
        STEPS[same] = step
        return step
    STEPS[:] = [s for s in STEPS if s.name != step.name]
    at = next((i for i, s in enumerate(STEPS) if s.name == before), len(STEPS))
    STEPS.insert(at, step)
    return step


async def download(ctx: DayContext) -> StepResult:
    """The channel's statement of the day, kept by its hash. Not published yet, or no answer: try later."""
    gw = ctx.gateway
    account = gw.host.account(ctx.account)
    gw.host.require(account, Capability.STATEMENT)
    try:
        content = await account.channel.download_statement(ctx.business_date)
    except StatementUnavailable as exc:
        if ctx.deadline is not None and ctx.now >= ctx.deadline and await gw.db.tx(
                lambda conn: _nothing_booked(conn, ctx.account, ctx.business_date)):
            # no statement, and no money moved through the account that day: channels publish none then
            return StepResult("done", {"statement": "none", "booked_that_day": 0},
                              f"no statement, and nothing booked on the day: {exc}"[:500])
        return StepResult("waiting", message=f"statement not available: {exc}"[:500])
    except (PaymuxError, httpx.HTTPError, OSError, TimeoutError) as exc:   # an unknown answer is never a failure: ask again
        return StepResult("waiting", message=f"no answer from the channel: {exc}"[:500])
    sha, path = await asyncio.to_thread(store.keep_statement, Path(gw.settings.statement_dir), ctx.account,
                                        ctx.business_date, content, None)
    return StepResult("done", {"bytes": len(content), "sha256": sha, "file": str(path)})


def _nothing_booked(conn: Connection, account: str, business_date: date) -> bool:
    """No entry of the day touched the channel account's own ledger accounts (clearing, position, fees)."""
    return conn.execute(select(postings.c.id).select_from(
        postings.join(entries, entries.c.id == postings.c.entry_id).join(accounts, accounts.c.id == postings.c.account_id))
        .where(accounts.c.owner_type == "channel_account", accounts.c.owner_id == account,
               entries.c.business_date == business_date).limit(1)).first() is None


async def reconcile(ctx: DayContext) -> StepResult:
    if ctx.earlier.get("download", {}).get("statement") == "none":
        return StepResult("done", {"skipped": "no statement"})
    kept = ctx.earlier.get("download", {}).get("file")
    report = await ctx.gateway.reconciler.reconcile(ctx.account, ctx.business_date, Path(kept) if kept else None)
    counts = {"run_id": report["run_id"], "statement_rows": report.get("statement_rows"),
              "open": report.get("open"), **{f"class_{k}": v for k, v in (report.get("counts") or {}).items() if v}}
    if report["status"] != "completed":
        return StepResult("failed", counts, report.get("message") or report["status"])
    return StepResult("done", counts)


def reconcile_cut_off(conn: Connection, account: str, business_date: date, since: datetime, now: datetime) -> int:
    """A worker killed mid-reconcile leaves its run `running` for ever (its results, one transaction, were
    never written): the day's runs still running that the killed try started are failed, saying so."""
    cut = conn.execute(select(recon_runs.c.id).where(
        recon_runs.c.channel_account == account, recon_runs.c.business_date == business_date,
        recon_runs.c.status == "running", recon_runs.c.started_at >= since)).scalars().all()
    for run_id in cut:
        store.fail_run(conn, run_id, "stopped: the worker running the daily close was killed in this run; the "
                                     "close runs the reconciliation again", now)
    return len(cut)


async def settle(ctx: DayContext) -> StepResult:
    """Settle every date from the day after this one to today (T+n by working days: what is due on each),
    clean accounts only; an account's open differences hold its days back, with the reason."""
    gw = ctx.gateway
    settler = Settler(gw.settings, gw.host.channel_types, gw.booker)
    today = gw.ledger.day.date_of(ctx.now)
    settle_dates = [ctx.business_date + timedelta(days=i) for i in range(1, (today - ctx.business_date).days + 1)]

    def run(conn: Any) -> StepResult:
        booked, held, skipped = 0, [], []
        for settle_date in settle_dates:
            report = settler.settle(conn, settle_date, ctx.now, hold=True)
            booked += len(report.booked)
            held += [h for h in report.held if h not in held]
            skipped += report.skipped
        counts = {"booked": booked, "settle_dates": len(settle_dates), "not_reconciled": len(skipped)}
        if any(h.startswith(f"{ctx.account} ") for h in held):
            return StepResult("held", {**counts, "held": len(held)}, "; ".join(held)[:500])
        return StepResult("done", counts)

    try:
        return await gw.db.tx(run)
    except SettlementRefused as exc:          # a date the working-day calendar does not know: never a guess
        return StepResult("held", message=str(exc)[:500])


async def statements(ctx: DayContext) -> StepResult:
    produced = await ctx.gateway.db.tx(lambda conn: produce(conn, ctx.business_date, ctx.now))
    return StepResult("done", {"merchants": produced.merchants, "lines": produced.lines})


async def report(ctx: DayContext) -> StepResult:
    built = await ctx.gateway.db.tx(lambda conn: daily_report(conn, ctx.gateway.settings, ctx.business_date))
    reserve = next((r for r in built["funds"] if r["reserve_account"] == ctx.account), None)
    if reserve is not None:   # a reserve account's day: what the books expected through it, what the bank shows
        rows = reserve["channel_accounts"]
        return StepResult("done", {"expected": sum(r["expected"] for r in rows),
                                   "received": sum(r["received"] for r in rows),
                                   "in_transit": sum(r["in_transit"] for r in rows),
                                   "received_not_expected": reserve["received_not_expected"]["count"]})
    mine = next((c for c in built["channel_accounts"] if c["channel_account"] == ctx.account), {})
    return StepResult("done", {"payments": mine.get("payments", 0), "volume": mine.get("volume", 0),
                               "open_differences": sum((mine.get("open_differences") or {}).values()),
                               "advances_outstanding": built["advances_outstanding"]})


register(Step("download", ("channel",), download))
register(Step("reconcile", ("channel",), reconcile, reconcile_cut_off))
register(Step("settle", ("channel",), settle))
register(Step("statements", ("channel", "reserve"), statements))
register(Step("report", ("channel", "reserve"), report))
