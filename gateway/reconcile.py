"""Reconciliation of one channel account's statement for one business date, end to end.

1. The statement: the file given, or downloaded through the plugin. It is stored under
   statement_dir with its SHA-256; the same (account, date, file) again returns the run already
   made; a different file for the day starts a new run, which supersedes the old one when it
   completes.
2. Parse (the plugin, column-wise) and check the lines against the totals the channel declares:
   an empty, truncated, wrongly encoded or malformed file fails the run with the line to blame,
   and nothing else is written.
3. Load our side in bulk (attempts and refunds of the account around the day), classify with a
   hash join (ledger/recon.py), and write in ONE transaction: the items that did not match, the
   open items of earlier runs this statement settles (rule `carryover_matched`), the channel's
   fees for the day (fee expense against clearing), the run's counts.
4. Rules that need the channel: a success on the statement that is still open, closed or failed
   here is confirmed by a query and applied as a late success through the payment (or payout) state
   machine (ledger entry and merchant event included): rule `late_success_by_query`. A payout still
   processing here that no statement of its days lists once the carry-over window has passed
   (missing_channel) is asked about once more and, if the channel has no record of it, failed:
   rule `payout_failed_absent` (the only way a payout fails without a final answer).
What no rule resolves stays open: `paymux recon resolve` proposes, another person approves.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol

import polars as pl
from sqlalchemy import Connection, and_, func, insert, select, update

from gateway.channel import Capability, StatementInvalid, StatementUnavailable
from gateway.errors import PaymuxError
from gateway.ids import public_id
from gateway.models import Attempt, Payment, Payout, ReconItem, ReconProposal, ReconRun, Refund
from ledger.recon import ABSENCES, CLASSES, Classified, classify, excuse, statement_totals, totals_disagree

runs = ReconRun.__table__
items = ReconItem.__table__
proposals = ReconProposal.__table__
attempts = Attempt.__table__
payments = Payment.__table__
refunds = Refund.__table__
payouts = Payout.__table__

QUERY_CONCURRENCY = 16


class ReconError(PaymuxError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(400, "invalid_request_error", code, message)


class Reconciler:
    def __init__(self, gateway: Any) -> None:
        self.gw = gateway
        settings = gateway.settings
        self.dir = Path(settings.statement_dir)
        self.carry_days = settings.recon_carry_days
        self.lookback = timedelta(days=settings.recon_lookback_days)
        self.tz, self.day_cut = gateway.ledger.tz, gateway.ledger.day_cut   # the books' business day

    # ---- the run ----

    async def reconcile(self, account_id: str, business_date: date, file: Path | None = None,
                        confirm: bool = True) -> dict[str, Any]:
        """confirm=False leaves the channel queries of rule `late_success_by_query` to `confirm_run`
        (`paymux recon confirm RUN_ID`): a statement with thousands of them is bounded by the channel's
        query rate, not by us."""
        account = self.gw.host.account(account_id)
        self.gw.host.require(account, Capability.STATEMENT)
        try:
            content = file.read_bytes() if file is not None else \
                await account.channel.download_statement(business_date)
        except OSError as exc:
            raise ReconError("statement_unreadable", f"{file}: {exc.strerror}") from None
        except StatementUnavailable as exc:
            run_id = await self._start_run(account_id, business_date, "", "", "CNY")
            return await self._fail(run_id, f"statement download failed: {exc}")
        sha = hashlib.sha256(content).hexdigest()
        existing = await self.gw.db.tx(lambda conn: conn.execute(select(runs).where(and_(
            runs.c.channel_account == account_id, runs.c.business_date == business_date, runs.c.sha256 == sha,
            runs.c.status.in_(("completed", "superseded")))).order_by(runs.c.started_at.desc())).first())
        if existing is not None:  # the same file again: the same answer
            return run_report(existing)
        path = self._store(account_id, business_date, sha, content, file)
        run_id = await self._start_run(account_id, business_date, sha, str(path), account.channel.statement_currency)
        holder = [content]   # _run takes the only reference, so the file's bytes go once it is parsed
        del content
        try:
            return await self._run(run_id, account, business_date, holder, path, confirm)
        except StatementInvalid as exc:
            return await self._fail(run_id, str(exc))
        except BaseException as exc:  # the results commit in one transaction: nothing half-written to undo
            await self._fail(run_id, f"stopped by {type(exc).__name__}: {str(exc)[:300]}")
            raise

    async def _run(self, run_id: str, account: Any, business_date: date, holder: list[bytes], path: Path,
                   confirm: bool) -> dict[str, Any]:
        account_id = account.id
        parsed = await asyncio.to_thread(account.channel.parse_statement, holder.pop())
        problem = totals_disagree(dict(parsed.totals) if parsed.totals else None, parsed.lines)
        if problem:
            raise StatementInvalid(problem)
        today = self.gw.ledger.business_date(self.gw.clock.now())
        local_payments, local_refunds, local_payouts = await asyncio.to_thread(self._load_local, account_id,
                                                                              business_date)
        result = classify(parsed.lines, local_payments, local_refunds, business_date=business_date, today=today,
                          carry_days=self.carry_days, fee_bps=account.config.fee_bps, local_payouts=local_payouts)
        result = self._excuse_neighbours(account_id, business_date, result)
        keys_path = path.with_suffix(".keys.parquet")
        result.statement_keys.write_parquet(keys_path)
        keys_path.chmod(0o600)      # the statement's keys: the channel's transaction ids
        summary = {"statement": statement_totals(parsed.lines), "declared": dict(parsed.totals or {}),
                   "local": _local_totals(local_payments, local_refunds, business_date)}
        details = await self.gw.db.tx(lambda conn: _item_details(conn, result.items))
        row = await self.gw.db.tx(lambda conn: self._write(conn, run_id, account_id, business_date, parsed.lines.height,
                                                           result, details, summary, today))
        if confirm:
            row = await self.confirm_run(run_id)
        self.gw.log.info("recon.completed", run_id=run_id, channel_account=account_id,
                         business_date=business_date.isoformat(), rows=parsed.lines.height, counts=result.counts)
        return run_report(row)

    def _day_start(self, day: date) -> datetime:
        return (datetime.combine(day, time(), self.tz) + self.day_cut).astimezone(UTC)

    def _store(self, account_id: str, business_date: date, sha: str, content: bytes, source: Path | None) -> Path:
        """The statement kept for good, readable by paymux's user alone (a bill names payers): folders
        0700, the file 0600; an operator's file is linked only if it is already that private."""
        folder = self.dir / account_id / business_date.isoformat()
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        for each in (self.dir, self.dir / account_id, folder):
            if each.stat().st_mode & 0o077:
                each.chmod(0o700)
        path = folder / f"{sha}.statement"
        if not path.exists():
            tmp = path.with_suffix(".partial")
            linked = False
            if source is not None and not source.stat().st_mode & 0o077:
                try:
                    os.link(source, tmp)
                    linked = True
                except OSError:
                    pass
            if not linked:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as out:
                    if source is not None:
                        with open(source, "rb") as given:
                            shutil.copyfileobj(given, out)
                    else:
                        out.write(content)
            os.replace(tmp, path)
        return path

    async def _fail(self, run_id: str, message: str) -> dict[str, Any]:
        now = self.gw.clock.now()

        def fail(conn: Connection) -> Any:
            conn.execute(update(runs).where(runs.c.id == run_id).values(status="failed", message=message[:1000],
                                                                        finished_at=now))
            return conn.execute(select(runs).where(runs.c.id == run_id)).one()

        row = await self.gw.db.tx(fail)
        self.gw.log.warning("recon.failed", run_id=run_id, message=message)
        return run_report(row)

    async def _start_run(self, account_id: str, business_date: date, sha: str, path: str, currency: str) -> str:
        """A run row, status running, in its own transaction: a crash leaves it to be seen, not lost."""
        run_id = public_id("rr")
        now = self.gw.clock.now()
        await self.gw.db.tx(lambda conn: conn.execute(insert(runs).values(
            id=run_id, channel_account=account_id, business_date=business_date, sha256=sha, file_path=path,
            status="running", statement_rows=0, counts={}, summary={}, payment_amount=0, refund_amount=0,
            fee_amount=0, fees_booked=0, currency=currency, auto_resolved=0, open=0, started_at=now)))
        return run_id

    # ---- our side, in bulk ----

    def _load_local(self, account_id: str, business_date: date) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """Our attempts and refunds at the account around the day, in bulk. An attempt's own row says
        all we need (amount, status, and for a success, updated_at is when it succeeded)."""
        since = self._day_start(business_date) - self.lookback
        until = self._day_start(business_date + timedelta(days=2))
        db = self.gw.db
        stamp = db.bulk_time
        pay = read_frame(db, (
            f"SELECT out_trade_no, status AS local_status, amount AS local_amount, {stamp('updated_at')} AS at "
            f"FROM attempts WHERE channel_account = '{account_id}' AND created_at >= {db.literal_time(since)} "
            f"AND created_at < {db.literal_time(until)}"),
            {"out_trade_no": pl.String, "local_status": pl.String, "local_amount": pl.Int64,
             "at": pl.Datetime("us", "UTC")})
        ref = read_frame(db, (
            f"SELECT r.out_refund_no AS out_refund_no, a.out_trade_no AS out_trade_no, r.status AS local_status, "
            f"r.amount AS local_amount, {stamp('r.updated_at')} AS at FROM refunds r "
            f"JOIN attempts a ON a.id = r.attempt_id WHERE r.channel_account = '{account_id}' "
            f"AND r.created_at >= {db.literal_time(since)} AND r.created_at < {db.literal_time(until)}"),
            {"out_refund_no": pl.String, "out_trade_no": pl.String, "local_status": pl.String,
             "local_amount": pl.Int64, "at": pl.Datetime("us", "UTC")})
        out = read_frame(db, (
            f"SELECT out_payout_no, status AS local_status, amount AS local_amount, {stamp('updated_at')} AS at "
            f"FROM payouts WHERE channel_account = '{account_id}' AND (status = 'processing' OR "
            f"(created_at >= {db.literal_time(since)} AND created_at < {db.literal_time(until)}))"),
            {"out_payout_no": pl.String, "local_status": pl.String, "local_amount": pl.Int64,
             "at": pl.Datetime("us", "UTC")})
        return self._with_date(pay), self._with_date(ref), self._with_sent_date(self._with_date(out))

    def _with_sent_date(self, frame: pl.DataFrame) -> pl.DataFrame:
        """sent_date: the business date a payout's current number was sent on (paymux's numbers start
        with their making time in milliseconds, hex, and a number is sent when it is made)."""
        millis = pl.col("out_payout_no").str.slice(0, 12).str.to_integer(base=16, strict=False)
        local = (pl.from_epoch(millis, time_unit="ms").dt.replace_time_zone("UTC").dt.convert_time_zone(str(self.tz))
                 - pl.duration(seconds=int(self.day_cut.total_seconds())))
        return frame.with_columns(sent_date=local.dt.date())

    def _with_date(self, frame: pl.DataFrame) -> pl.DataFrame:
        """local_date: the business date of a success (its UTC time in the business time zone, after the cut)."""
        kind = frame.schema["at"]
        if kind == pl.String:
            at = pl.col("at").str.to_datetime("%Y-%m-%d %H:%M:%S", time_zone="UTC", strict=False)
        elif getattr(kind, "time_zone", None) is None:
            at = pl.col("at").dt.replace_time_zone("UTC")
        else:
            at = pl.col("at").dt.convert_time_zone("UTC")
        local = at.dt.convert_time_zone(str(self.tz)) - pl.duration(seconds=int(self.day_cut.total_seconds()))
        return frame.with_columns(local_date=pl.when(pl.col("local_status") == "succeeded")
                                  .then(local.dt.date()).otherwise(None)).drop("at")

    def _excuse_neighbours(self, account_id: str, business_date: date, result: Classified) -> Classified:
        """A success of ours absent from this statement but on a neighbouring day's (the channel's day-cut)
        is that day's match, not a difference of this one."""
        absent = result.items.filter(pl.col("class").is_in(ABSENCES))
        if absent.height == 0:
            return result
        folder = self.dir / account_id
        neighbours = [folder / (business_date + timedelta(days=d)).isoformat()
                      for d in range(-self.carry_days, self.carry_days + 1) if d]
        files = [f for n in neighbours if n.is_dir() for f in n.glob("*.keys.parquet")]
        if not files:
            return result
        return excuse(result, pl.scan_parquet(files).join(absent.lazy().select("kind", "reference"),
                                                          on=["kind", "reference"], how="semi").collect())

    # ---- writing the results: one transaction ----

    def _write(self, conn: Connection, run_id: str, account_id: str, business_date: date, rows: int,
               result: Classified, details: dict, summary: dict, today: date) -> Any:
        now = self.gw.clock.now()
        run = conn.execute(select(runs).where(runs.c.id == run_id)).one()
        new_items = []
        for item in result.items.iter_rows(named=True):
            extra = details.get((item["kind"], item["reference"]), {})
            new_items.append({**{k: item[k] for k in (
                "kind", "reference", "out_trade_no", "line_no", "channel_transaction_id", "channel_status",
                "local_status", "channel_amount", "local_amount", "channel_effect", "local_effect",
                "channel_fee_millis", "expected_fee_millis")}, "class": item["class"],
                "attempt_id": extra.get("attempt_id"), "refund_id": extra.get("refund_id"),
                "payment_id": extra.get("payment_id"), "merchant_id": extra.get("merchant_id"),
                "run_id": run_id, "channel_account": account_id, "business_date": business_date,
                "status": "open", "created_at": now})
        # The run this one supersedes: its open items give way to ours.
        older = [r.id for r in conn.execute(select(runs.c.id).where(and_(
            runs.c.channel_account == account_id, runs.c.business_date == business_date,
            runs.c.status == "completed", runs.c.id != run_id)))]
        if older:
            conn.execute(update(runs).where(runs.c.id.in_(older)).values(status="superseded"))
            conn.execute(update(items).where(and_(items.c.run_id.in_(older), items.c.status == "open"))
                         .values(status="superseded", resolved_at=now, note=f"superseded by run {run_id}"))
        if new_items:
            conn.execute(insert(items), new_items)
        carried = self._settle_carryovers(conn, account_id, business_date, result.statement_keys, now)
        self._age_carryovers(conn, account_id, today, now)
        fees_booked = self._book_fees(conn, run, result.fee_amount, older, now)
        open_count = conn.execute(select(func.count()).select_from(items).where(and_(
            items.c.run_id == run_id, items.c.status == "open"))).scalar_one()
        conn.execute(update(runs).where(runs.c.id == run_id).values(
            status="completed", statement_rows=rows, counts=result.counts, summary=summary,
            payment_amount=result.payment_amount, refund_amount=result.refund_amount, fee_amount=result.fee_amount,
            fees_booked=fees_booked, auto_resolved=carried, open=open_count, finished_at=now))
        return conn.execute(select(runs).where(runs.c.id == run_id)).one()

    def _settle_carryovers(self, conn: Connection, account_id: str, business_date: date, keys: pl.DataFrame,
                           now: datetime) -> int:
        """Open carry-overs of earlier days whose line this statement has: matched here, by rule."""
        waiting = conn.execute(select(items.c.id, items.c.kind, items.c.reference, items.c.run_id).where(and_(
            items.c.channel_account == account_id, items.c.status == "open",
            items.c["class"].in_(ABSENCES), items.c.business_date != business_date))).all()
        if not waiting:
            return 0
        frame = pl.DataFrame([dict(r._mapping) for r in waiting], schema={
            "id": pl.Int64, "kind": pl.String, "reference": pl.String, "run_id": pl.String})
        found = frame.join(keys, on=["kind", "reference"], how="semi")
        if found.height:
            conn.execute(update(items).where(items.c.id.in_(found["id"].to_list())).values(
                status="resolved", resolution="carryover_matched", resolved_by="rule", resolved_at=now,
                note=f"on the statement of {business_date.isoformat()}"))
            refresh_open(conn, found["run_id"].unique().to_list())
        return found.height

    def _age_carryovers(self, conn: Connection, account_id: str, today: date, now: datetime) -> None:
        """A carry-over whose window has passed is missing at the channel: a person must look."""
        last_day = date.fromordinal(today.toordinal() - self.carry_days - 1)
        conn.execute(update(items).where(and_(
            items.c.channel_account == account_id, items.c.status == "open", items.c["class"] == "pending_carryover",
            items.c.business_date <= last_day)).values(**{"class": "missing_channel"},
                                                       note="no statement had it within the carry-over window"))

    def _book_fees(self, conn: Connection, run: Any, fee_amount: int, older: list[str], now: datetime) -> int:
        """The channel's fees of the day: fee expense against clearing. A superseding statement books only
        the difference from what the runs before it booked."""
        before = conn.execute(select(func.coalesce(func.sum(runs.c.fees_booked), 0)).where(and_(
            runs.c.channel_account == run.channel_account, runs.c.business_date == run.business_date,
            runs.c.id != run.id, runs.c.status.in_(("completed", "superseded"))))).scalar_one()
        delta = fee_amount - int(before)
        if delta:
            event = "recon.channel_fees" if delta > 0 else "recon.channel_fees_returned"
            self.gw.payments.booker.book(conn, event, f"recon:{run.id}", merchant_id="",
                                         channel_account=run.channel_account, currency=run.currency,
                                         variables={"amount": abs(delta)}, now=now,
                                         memo=f"channel fees of {run.business_date.isoformat()}")
        return delta

    # ---- rules that ask the channel ----

    async def confirm_run(self, run_id: str) -> Any:
        """Apply the rules that ask the channel to a run's open items (and to the account's payouts that
        no statement had); returns the run row."""
        resolved = await self._late_successes(run_id)
        resolved += await self._absent_payouts(run_id)
        return await self.gw.db.tx(lambda conn: self._recount(conn, run_id, resolved))

    async def _absent_payouts(self, run_id: str) -> int:
        """Payouts still processing here that no statement of their days had (missing_channel, the window
        passed): the statements prove them absent if the channel, asked once more, has no record."""
        account_id = await self.gw.db.tx(lambda conn: conn.execute(
            select(runs.c.channel_account).where(runs.c.id == run_id)).scalar_one())
        todo = await self.gw.db.tx(lambda conn: conn.execute(select(items).where(and_(
            items.c.channel_account == account_id, items.c.status == "open", items.c.kind == "payout",
            items.c["class"] == "missing_channel", items.c.local_status == "processing"))).all())
        resolved = 0
        for item in todo:
            await self.gw.janitor.limiter.wait(account_id)
            evidence = (f"on none of {account_id}'s statements from {item.business_date.isoformat()} to "
                        f"{(item.business_date + timedelta(days=self.carry_days)).isoformat()}")
            outcome = await self.gw.payouts.settle_absent(account_id, item.reference, evidence)
            if outcome != "failed_absent":
                continue
            now = self.gw.clock.now()
            await self.gw.db.tx(lambda conn, i=item: (conn.execute(update(items).where(and_(
                items.c.id == i.id, items.c.status == "open")).values(
                status="resolved", resolution="payout_failed_absent", resolved_by="rule", resolved_at=now,
                note="the channel has no record of it either: the payout failed and its money was released")),
                refresh_open(conn, [i.run_id])))
            resolved += 1
        return resolved

    async def _late_successes(self, run_id: str) -> int:
        """Statement says succeeded, we do not: ask the channel, and apply what it says as a late success."""
        todo = await self.gw.db.tx(lambda conn: conn.execute(select(items).where(and_(
            items.c.run_id == run_id, items.c.status == "open", items.c["class"] == "status_mismatch",
            items.c.channel_status == "succeeded"))).all())
        gate = asyncio.Semaphore(QUERY_CONCURRENCY)

        async def confirm(item: Any) -> bool:
            async with gate:
                await self.gw.janitor.limiter.wait(item.channel_account)
                return await self._confirm(item)

        results = await asyncio.gather(*(confirm(item) for item in todo))
        return sum(results)

    async def _confirm(self, item: Any) -> bool:
        service = self.gw.payments
        now = self.gw.clock.now()
        if item.kind == "payment" and item.attempt_id:
            attempt, p = await self.gw.db.tx(lambda conn: (
                conn.execute(select(attempts).where(attempts.c.id == item.attempt_id)).one(),
                conn.execute(select(payments).where(payments.c.id == item.payment_id)).one()))
            await service.sync_payment(p, source="reconciliation", attempt=attempt)
            done = await self.gw.db.tx(lambda conn: conn.execute(
                select(attempts.c.status).where(attempts.c.id == item.attempt_id)).scalar_one() == "succeeded")
        elif item.kind == "payout":
            row = await self.gw.db.tx(lambda conn: conn.execute(select(payouts).where(and_(
                payouts.c.out_payout_no == item.reference, payouts.c.channel_account == item.channel_account))).first())
            if row is None or row.status != "processing":
                return False
            await self.gw.payouts.sync(row)
            done = await self.gw.db.tx(lambda conn: conn.execute(
                select(payouts.c.status).where(payouts.c.id == row.id)).scalar_one() == "succeeded")
        elif item.kind == "refund" and item.refund_id:
            r = await self.gw.db.tx(lambda conn: conn.execute(select(refunds).where(refunds.c.id == item.refund_id)).one())
            await service.sync_refund(r, item.out_trade_no)
            done = await self.gw.db.tx(lambda conn: conn.execute(
                select(refunds.c.status).where(refunds.c.id == item.refund_id)).scalar_one() == "succeeded")
        else:
            return False
        if done:
            await self.gw.db.tx(lambda conn: conn.execute(update(items).where(and_(
                items.c.id == item.id, items.c.status == "open")).values(
                status="resolved", resolution="late_success_by_query", resolved_by="rule", resolved_at=now,
                note="the channel confirmed the success; applied as a late success")))
        return done

    def _recount(self, conn: Connection, run_id: str, resolved: int) -> Any:
        conn.execute(update(runs).where(runs.c.id == run_id).values(auto_resolved=runs.c.auto_resolved + resolved))
        refresh_open(conn, [run_id])
        return conn.execute(select(runs).where(runs.c.id == run_id)).one()


def refresh_open(conn: Connection, run_ids: list[str]) -> None:
    """A run's `open` is how many of its items are still open."""
    for run_id in run_ids:
        conn.execute(update(runs).where(runs.c.id == run_id).values(open=select(func.count()).select_from(items).where(
            and_(items.c.run_id == run_id, items.c.status == "open")).scalar_subquery()))


def read_frame(db: Any, query: str, schema: dict[str, Any]) -> pl.DataFrame:
    """A query's rows as a DataFrame: connectorx straight into Arrow (no Python row objects)."""
    import connectorx

    frame = connectorx.read_sql(db.connectorx_url, query, return_type="polars")
    if frame.height == 0:
        return pl.DataFrame(schema=schema)
    return frame.with_columns(pl.col(c).cast(t) for c, t in schema.items() if c != "at")


def _item_details(conn: Connection, found: pl.DataFrame) -> dict[tuple[str, str], dict[str, Any]]:
    """Ids and merchant of the records behind the items (a few, by key)."""
    details: dict[tuple[str, str], dict[str, Any]] = {}
    pay_refs = found.filter(pl.col("kind") == "payment")["reference"].unique().to_list()
    ref_refs = found.filter(pl.col("kind") == "refund")["reference"].unique().to_list()
    for chunk in _chunks(found.filter(pl.col("kind") == "payout")["reference"].unique().to_list()):
        for r in conn.execute(select(payouts.c.out_payout_no, payouts.c.merchant_id)
                              .where(payouts.c.out_payout_no.in_(chunk))):
            details[("payout", r.out_payout_no)] = {"merchant_id": r.merchant_id}
    for chunk in _chunks(pay_refs):
        for r in conn.execute(select(attempts.c.out_trade_no, attempts.c.id, attempts.c.payment_id,
                                     payments.c.merchant_id).join(payments, payments.c.id == attempts.c.payment_id)
                              .where(attempts.c.out_trade_no.in_(chunk))):
            details[("payment", r.out_trade_no)] = {"attempt_id": r.id, "payment_id": r.payment_id,
                                                    "merchant_id": r.merchant_id}
    for chunk in _chunks(ref_refs):
        for r in conn.execute(select(refunds.c.out_refund_no, refunds.c.id, refunds.c.payment_id, refunds.c.attempt_id,
                                     refunds.c.merchant_id).where(refunds.c.out_refund_no.in_(chunk))):
            details[("refund", r.out_refund_no)] = {"refund_id": r.id, "payment_id": r.payment_id,
                                                    "attempt_id": r.attempt_id, "merchant_id": r.merchant_id}
    return details


def _chunks(values: list[str], size: int = 500) -> list[list[str]]:
    return [values[i:i + size] for i in range(0, len(values), size)]


def _local_totals(pay: pl.DataFrame, ref: pl.DataFrame, day: date) -> dict[str, int]:
    p = pay.filter((pl.col("local_status") == "succeeded") & (pl.col("local_date") == day))
    r = ref.filter((pl.col("local_status") == "succeeded") & (pl.col("local_date") == day))
    return {"payment_count": p.height, "payment_amount": int(p["local_amount"].sum()),
            "refund_count": r.height, "refund_amount": int(r["local_amount"].sum())}


def run_report(row: Any) -> dict[str, Any]:
    """The run as `paymux reconcile --json` prints it."""
    counts = {name: int((row.counts or {}).get(name, 0)) for name in CLASSES}
    return {"run_id": row.id, "channel_account": row.channel_account, "business_date": row.business_date.isoformat(),
            "status": row.status, "message": row.message, "statement_rows": row.statement_rows, "counts": counts,
            "auto_resolved": row.auto_resolved, "open": row.open, "summary": row.summary,
            "payment_amount": row.payment_amount, "refund_amount": row.refund_amount, "fee_amount": row.fee_amount,
            "currency": row.currency, "sha256": row.sha256}


# ---- people: maker-checker ----

ACTIONS = ("adjust", "dismiss")


def open_items(conn: Connection, account_id: str | None = None, business_date: date | None = None,
               include_closed: bool = False, run_id: str | None = None) -> list[dict[str, Any]]:
    query = select(items).order_by(items.c.business_date, items.c.id)
    if not include_closed:
        query = query.where(items.c.status == "open")
    if run_id:
        query = query.where(items.c.run_id == run_id)
    if account_id:
        query = query.where(items.c.channel_account == account_id)
    if business_date:
        query = query.where(items.c.business_date == business_date)
    rows = conn.execute(query).all()
    pending = {p.item_id: p for p in conn.execute(select(proposals).where(proposals.c.status == "proposed"))}
    return [item_object(row, pending.get(row.id)) for row in rows]


def item_object(row: Any, proposal: Any = None) -> dict[str, Any]:
    obj = {k: row._mapping[k] for k in (
        "id", "run_id", "channel_account", "kind", "reference", "out_trade_no", "line_no", "channel_transaction_id",
        "channel_status", "local_status", "channel_amount", "local_amount", "channel_effect", "local_effect",
        "channel_fee_millis", "expected_fee_millis", "payment_id", "merchant_id", "status", "resolution",
        "resolved_by", "note")}
    obj["class"] = row._mapping["class"]
    obj["business_date"] = row.business_date.isoformat()
    obj["difference"] = row.channel_effect - row.local_effect
    if proposal is not None:
        obj["proposal"] = {"id": proposal.id, "action": proposal.action, "by": proposal.proposed_by,
                           "by_id": proposal.proposed_by_id, "reason": proposal.reason}
    return obj


class Person(Protocol):
    """Who proposes or approves: a signed-in operator (its id is compared, its name is shown)."""

    id: str
    name: str


def _item(conn: Connection, item_id: int) -> Any:
    row = conn.execute(select(items).where(items.c.id == item_id).with_for_update()).first()
    if row is None:
        raise ReconError("item_not_found", f"no reconciliation item {item_id}")
    if row.status != "open":
        raise ReconError("item_not_open", f"item {item_id} is {row.status}")
    return row


def propose(conn: Connection, item_id: int, action: str, by: Person, reason: str, now: datetime) -> dict[str, Any]:
    """The maker: say how an open item should be resolved. Nothing is booked until someone else approves.
    A proposal is never edited: proposing again withdraws it and makes a new one, with a new id."""
    if action not in ACTIONS:
        raise ReconError("unknown_action", f"action must be one of {', '.join(ACTIONS)}")
    if not reason.strip():
        raise ReconError("reason_required", "a proposal needs a reason")
    row = _item(conn, item_id)
    if action == "adjust" and row.channel_effect == row.local_effect:
        raise ReconError("nothing_to_adjust", f"item {item_id} moves no money between the sides; dismiss it")
    conn.execute(update(proposals).where(and_(proposals.c.item_id == item_id, proposals.c.status == "proposed"))
                 .values(status="withdrawn", decided_by=by.name, decided_by_id=by.id, decided_at=now))
    conn.execute(insert(proposals).values(item_id=item_id, action=action, reason=reason[:500], proposed_by=by.name,
                                          proposed_by_id=by.id, proposed_at=now, status="proposed"))
    return item_object(row, conn.execute(select(proposals).where(and_(
        proposals.c.item_id == item_id, proposals.c.status == "proposed"))).one())


def approve(conn: Connection, item_id: int, proposal_id: int, by: Person, booker: Any,
            now: datetime) -> dict[str, Any]:
    """The checker: another operator executes the proposal they saw, `proposal_id`; if it was withdrawn
    or replaced since, nothing is done. An adjustment is a new entry through suspense (history is
    never edited); a dismissal books nothing and keeps the reason."""
    row = _item(conn, item_id)
    proposal = conn.execute(select(proposals).where(and_(proposals.c.item_id == item_id,
                                                         proposals.c.status == "proposed"))).first()
    if proposal is None:
        raise ReconError("no_proposal", f"item {item_id} has no proposal to approve; `paymux recon resolve` first")
    if proposal.id != proposal_id:
        raise ReconError("proposal_changed", f"item {item_id}'s proposal is now #{proposal.id} ({proposal.action} "
                                             f"by {proposal.proposed_by}: {proposal.reason}), not #{proposal_id}; "
                                             f"nothing was done: read it, then approve #{proposal.id}")
    if proposal.proposed_by_id is None:
        raise ReconError("proposer_unknown", f"proposal #{proposal.id} names its proposer only in free text; "
                                             f"an operator must propose it again")
    if proposal.proposed_by_id == by.id:
        raise ReconError("same_person", f"{by.name} proposed this; another person must approve it")
    entry_key = None
    if proposal.action == "adjust":
        difference = row.channel_effect - row.local_effect
        run = conn.execute(select(runs.c.currency).where(runs.c.id == row.run_id)).one()
        event = "recon.adjust_gain" if difference > 0 else "recon.adjust_loss"
        reference = f"recon-item:{item_id}"
        booker.book(conn, event, reference, merchant_id=row.merchant_id or "", channel_account=row.channel_account,
                    currency=run.currency, variables={"amount": abs(difference)}, now=now,
                    memo=f"{row._mapping['class']} {row.kind} {row.reference}: {proposal.reason}"[:500])
        entry_key = f"{reference}:{event}"
    conn.execute(update(proposals).where(proposals.c.id == proposal.id).values(
        status="approved", decided_by=by.name, decided_by_id=by.id, decided_at=now, entry_key=entry_key))
    conn.execute(update(items).where(items.c.id == item_id).values(
        status="resolved", resolution=proposal.action, resolved_by=f"{proposal.proposed_by} + {by.name}",
        resolved_at=now, note=proposal.reason))
    refresh_open(conn, [row.run_id])
    return item_object(conn.execute(select(items).where(items.c.id == item_id)).one())
