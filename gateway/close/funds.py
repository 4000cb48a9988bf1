"""The close's step for a reserve bank account: the bank file of the day, from the account's inbox,
imported (`paymux bank import`'s import: idempotent by the file's hash, a later file of the day
supersedes) and so funds-reconciled; not there yet, tried again, and at the deadline the same alert
and metric as a channel's statement that is missing.

A file of the day imported by hand before the worker got to it counts: the step finds the day's
current statement and is done. A day with no file at its deadline, on which the books expected no
movement through the account, is done without one: banks send no statement for a day without one.
"""
from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from sqlalchemy import Connection

from gateway.close.steps import DayContext, Step, StepResult, register
from gateway.errors import PaymuxError
from gateway.funds.config import ReserveAccount, reserve_accounts
from gateway.funds.imports import import_bank_file
from gateway.funds.match import counts as class_counts
from gateway.funds.parsers import BankFileError
from gateway.funds.store import current_statement, expected_movements, reconcile_window

if TYPE_CHECKING:
    from gateway.service import Gateway


def inbox_files(reserve: ReserveAccount, day: date) -> list[Path]:
    """The files of the inbox named for `day`, oldest first (a later one supersedes an earlier)."""
    if reserve.inbox is None or not Path(reserve.inbox).is_dir():
        return []
    found = [p for p in Path(reserve.inbox).glob(day.strftime(reserve.inbox_files)) if p.is_file()]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def expects_nothing(conn: Connection, reserve: ReserveAccount, day: date) -> bool:
    """No movement through the reserve account is expected on `day` (settlements ahead included)."""
    expected = expected_movements(conn, reserve, day - timedelta(days=reserve.late_days), day)
    return expected.filter(pl.col("expected_date") == day).height == 0


def day_classes(conn: Connection, reserve: ReserveAccount, day: date) -> dict[str, int]:
    """The day's classes as the books and the bank's current statements say now, less what two people
    decided: the movements expected that day and the lines dated that day (an import classifies its
    whole window, late_days back)."""
    outcomes, _, _ = reconcile_window(conn, reserve, day)
    return class_counts(outcomes.filter((pl.col("business_date") == day) | (pl.col("line_date") == day)))


async def funds(ctx: DayContext) -> StepResult:
    gw = ctx.gateway
    reserve = reserve_accounts(gw.settings).get(ctx.account)
    if reserve is None:
        return StepResult("failed", message=f"{ctx.account} is in [close.reserves] but not in [[reserve_accounts]]")
    imported = 0
    for path in inbox_files(reserve, ctx.business_date):
        try:
            report = await asyncio.to_thread(_import, gw, reserve, path, ctx)
        except PaymuxError as exc:   # a broken file: named, nothing of it written; the next try reads it again
            return StepResult("failed", {"file": str(path)}, f"{path.name}: {exc.code}: {exc.message}"[:500])
        imported += report["status"] == "imported"
    found = await gw.db.tx(lambda conn: current_statement(conn, reserve.id, ctx.business_date))
    if found is not None:
        classes = await gw.db.tx(lambda conn: day_classes(conn, reserve, ctx.business_date))
        return StepResult("done", {"imported": imported, "statement_id": found["statement_id"],
                                   "run_id": found["run_id"], "lines": found["lines"], "open": found["open"],
                                   **{f"class_{k}": v for k, v in classes.items() if v}})
    where = f"{reserve.inbox}/{ctx.business_date.strftime(reserve.inbox_files)}" if reserve.inbox \
        else "no inbox configured: `paymux bank import`"
    if ctx.deadline is not None and ctx.now >= ctx.deadline and await gw.db.tx(
            lambda conn: expects_nothing(conn, reserve, ctx.business_date)):
        return StepResult("done", {"statement": "none"}, f"no bank file ({where}), and no movement expected")
    return StepResult("waiting", message=f"bank file not there yet: {where}"[:500])


def _import(gw: "Gateway", reserve: ReserveAccount, path: Path, ctx: DayContext) -> dict[str, Any]:
    try:
        return import_bank_file(gw.db, gw.settings, reserve.id, path, ctx.now)
    except BankFileError as exc:
        if exc.code != "no_statement_date":
            raise
        # a file with no balance and no line names no day: it is the day it was named for
        return import_bank_file(gw.db, gw.settings, reserve.id, path, ctx.now, statement_date=ctx.business_date)


register(Step("funds", ("reserve",), funds), before="statements")
