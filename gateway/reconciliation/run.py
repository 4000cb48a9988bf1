"""Reconciliation of one channel account's statement for one business date, end to end.

1. The statement: the file given, or downloaded through the plugin. It is kept under statement_dir,
   named by its SHA-256, computed as it is kept (an operator's file is copied and hashed in one read);
   the same (account, date, file) again returns the run already made; a different file for the day
   starts a new run, which supersedes the old one when it completes.
2. Read (the plugin reads the kept file piece by piece, Channel.read_statement_pieces) and load our
   side at the same time (attempts over the lookback window in batches, each kept only where the
   statement's keys or the day's successes need it: store.local_parts). Both sides are cut into K
   partitions by a hash of the join key and spilled to temporary parquet files as they come
   (partitions.py), so neither is ever held whole. The lines are checked against the totals the
   channel declares: an empty, truncated, wrongly encoded or malformed file fails the run with the
   line to blame, and nothing else is written.
3. Classify each partition with a hash join (match.py), add the partitions up, and write in ONE
   transaction: the items that did not match, the open items of earlier runs this statement settles
   (rule `carryover_matched`), the channel's fees for the day (fee expense against clearing), the
   run's counts.
4. Rules that need the channel: a success on the statement that is still open, closed or failed
   here is confirmed by a query and applied as a late success through the payment (or payout) state
   machine (ledger entry and merchant event included): rule `late_success_by_query`. A payout still
   processing here that no statement of its days lists once the carry-over window has passed
   (missing_channel) is asked about once more and, if the channel has no record of it, failed:
   rule `payout_failed_absent` (the only way a payout fails without a final answer). A payout line
   `returned` (the receiving bank sent it back) against a payout still succeeded (or processing) here
   is applied as its return, once, from the statement: rule `payout_returned_by_statement`.
What no rule resolves stays open: `paymux recon resolve` proposes, another person approves (review.py).
"""
from __future__ import annotations

import asyncio
import tempfile
from concurrent.futures import Future
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

import polars as pl
from sqlalchemy import Row, select
from structlog.typing import FilteringBoundLogger

from gateway.channel import Capability, StatementInvalid, StatementUnavailable
from gateway.clock import Clock
from gateway.config import Settings
from gateway.db import Database
from gateway.ids import public_id
from gateway.plugins import ChannelAccount, PluginHost
from gateway.reconciliation import partitions, store
from gateway.reconciliation.errors import ReconError
from gateway.reconciliation.match import (ABSENCES, PAYER_COLUMNS, Classified, CostTable, CostTerms, excuse,
                                          statement_totals, totals_disagree)
from gateway.reports import RunReport, run_report
from ledger.booking import Booker
from ledger.days import BusinessDay

QUERY_CONCURRENCY = 16


class QueryRate(Protocol):
    """How fast the channel may be asked (the janitor's RateLimiter): politeness, shared with the janitor."""

    async def wait(self, account: str) -> None: ...


class PaymentSync(Protocol):
    """Asks the channel about a payment and applies its answer (PaymentService)."""

    async def sync_payment(self, p: Row, source: str = ..., attempt: Row | None = ...) -> None: ...


class RefundSync(Protocol):
    """Asks the channel about a refund and applies its answer (RefundService)."""

    async def sync(self, r: Row, out_trade_no: str) -> None: ...


class PayoutSync(Protocol):
    """Asks the channel about a payout and applies its answer (PayoutService)."""

    async def sync(self, row: Row) -> bool: ...

    async def settle_absent(self, account_id: str, out_payout_no: str, evidence: str) -> str: ...

    async def return_found(self, account_id: str, out_payout_no: str, evidence: str) -> bool: ...


class Reconciler:
    def __init__(self, *, settings: Settings, db: Database, host: PluginHost, business_day: BusinessDay,
                 booker: Booker, rate: QueryRate, payments: PaymentSync, refunds: RefundSync, payouts: PayoutSync,
                 clock: Clock, log: FilteringBoundLogger) -> None:
        self.db, self.host, self.booker, self.rate = db, host, booker, rate
        self.payments, self.refunds, self.payouts, self.clock, self.log = payments, refunds, payouts, clock, log
        self.day = business_day          # the books' business day
        self.dir = Path(settings.statement_dir)
        self.carry_days = settings.recon_carry_days
        self.lookback = timedelta(days=settings.recon_lookback_days)

    # ---- the run ----

    async def reconcile(self, account_id: str, business_date: date, file: Path | None = None,
                        confirm: bool = True) -> RunReport:
        """confirm=False leaves the channel queries of rule `late_success_by_query` to `confirm_run`
        (`paymux recon confirm RUN_ID`): a statement with thousands of them is bounded by the channel's
        query rate, not by us."""
        account = self.host.account(account_id)
        self.host.require(account, Capability.STATEMENT)
        currency = account.channel.statement_currency
        content: bytes | None = None
        try:
            if file is None:
                content = await account.channel.download_statement(business_date)
            # kept as it is hashed: an operator's file is read once for both (a private one is linked)
            sha, path = await asyncio.to_thread(store.keep_statement, self.dir, account_id, business_date, content,
                                                file)
        except OSError as exc:
            raise ReconError("statement_unreadable", f"{file}: {exc.strerror}") from None
        except StatementUnavailable as exc:
            run_id = await self._start_run(account_id, business_date, "", "", currency)
            return await self._fail(run_id, f"statement download failed: {exc}")
        del content   # a downloaded statement is read back from its kept file, like an operator's
        existing = await self.db.tx(lambda conn: store.same_file_run(conn, account_id, business_date, sha))
        if existing is not None:  # the same file again: the same answer
            return run_report(existing)
        run_id = await self._start_run(account_id, business_date, sha, str(path), currency)
        try:
            return await self._run(run_id, account, business_date, path, confirm)
        except StatementInvalid as exc:
            return await self._fail(run_id, str(exc))
        except BaseException as exc:  # the results commit in one transaction: nothing half-written to undo
            await self._fail(run_id, f"stopped by {type(exc).__name__}: {str(exc)[:300]}")
            raise

    async def _run(self, run_id: str, account: ChannelAccount, business_date: date, path: Path,
                   confirm: bool) -> RunReport:
        account_id = account.id
        now = self.clock.now()
        today = self.day.date_of(now)
        since = self.day.start(business_date) - self.lookback
        until = self.day.start(business_date + timedelta(days=2))
        size = path.stat().st_size
        k = partitions.partition_count(size)
        keys: Future[tuple[pl.Series, pl.Series]] = Future()
        keys_path = path.with_suffix(".keys.parquet")
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".match-") as work_dir:
            work = Path(work_dir)
            statement = partitions.Spill(work, "statement", k)
            costs = self._cost_terms(account_id, account.config.fee_bps)
            payer = isinstance(costs, CostTable)   # our side then names each payment's merchant and method
            local = {kind: partitions.Spill(work, kind, k, PAYER_COLUMNS if payer and kind != "payout" else {})
                     for kind in ("payment", "refund", "payout")}

            def read() -> tuple[dict[str, int], dict[str, int] | None]:
                """The plugin reads the kept file piece by piece; each piece is spilled into the
                partitions, and its keys go to the loader, which waits for them."""
                sums, declared, hashes = None, None, []
                try:
                    for piece in account.channel.read_statement_pieces(path):
                        sums = partitions.add_totals(sums, statement_totals(piece.lines))
                        declared = dict(piece.totals) if piece.totals else declared
                        hashes.append(store.key_hashes(piece.lines))
                        statement.add(partitions.with_reference(piece.lines))
                        del piece
                    statement.flush()
                    if sums is None:
                        sums = statement_totals(pl.DataFrame(schema=partitions.STATEMENT_SCHEMA))
                except BaseException as exc:
                    keys.set_exception(exc)
                    raise
                keys.set_result(store.sorted_hashes(hashes))
                return sums, declared

            def load() -> None:
                for kind, frame in store.local_parts(self.db, account_id, since, until, self.day,
                                                     keys=keys.result, business_date=business_date, payer=payer):
                    local[kind].add(frame)
                for spill in local.values():
                    spill.flush()

            # Read and load at once: the loader reads the business day's rows while the plugin reads,
            # then the rest of the lookback window, kept only where the statement's keys need it.
            done = await asyncio.gather(asyncio.to_thread(read), asyncio.to_thread(load), return_exceptions=True)
            for outcome in done:
                if isinstance(outcome, BaseException):
                    raise outcome
            sums, declared = done[0]
            problem = totals_disagree(declared, sums)
            if problem:
                raise StatementInvalid(problem)
            result, local_sums = await asyncio.to_thread(
                partitions.classify_partitions, statement, local["payment"], local["refund"], local["payout"],
                keys_path, business_date=business_date, today=today, carry_days=self.carry_days,
                fee_bps=costs)
        keys_path.chmod(0o600)      # the statement's keys: the channel's transaction ids
        result = self._excuse_neighbours(account_id, business_date, result)
        summary = {"statement": sums, "declared": declared or {}, "local": local_sums}
        details = await self.db.tx(lambda conn: store.item_details(conn, result.items))
        row = await self.db.tx(lambda conn: store.write_results(
            conn, self.booker, run_id=run_id, account_id=account_id, business_date=business_date,
            rows=sums["rows"], result=result, details=details, summary=summary, today=today,
            carry_days=self.carry_days, now=self.clock.now()))
        if confirm:
            row = await self.confirm_run(run_id)
        self.log.info("recon.completed", run_id=run_id, channel_account=account_id,
                      business_date=business_date.isoformat(), rows=sums["rows"], counts=result.counts,
                      partitions=k)
        return run_report(row)

    async def _fail(self, run_id: str, message: str) -> RunReport:
        now = self.clock.now()
        row = await self.db.tx(lambda conn: store.fail_run(conn, run_id, message, now))
        self.log.warning("recon.failed", run_id=run_id, message=message)
        return run_report(row)

    async def _start_run(self, account_id: str, business_date: date, sha: str, path: str, currency: str) -> str:
        """A run row, status running, in its own transaction: a crash leaves it to be seen, not lost."""
        run_id = public_id("rr")
        now = self.clock.now()
        await self.db.tx(lambda conn: store.start_run(conn, run_id, account_id, business_date, sha, path, currency,
                                                      now))
        return run_id

    def _cost_terms(self, account_id: str, fee_bps: int | None) -> CostTable | CostTerms | int | None:
        """The cost rules (gateway/fees.py) the statement's fees are checked against: where a rule that
        can apply here names a merchant or a method, each line's payment's own rule (merchant × account
        × method, the most specific winning); else the account's rule; without fee rules, its fee_bps."""
        fees = self.booker.fees
        if not hasattr(fees, "account_cost"):
            return fee_bps
        if fees.cost_varies(account_id):
            def terms(merchant: str, method: str) -> CostTerms | None:
                rule = fees.cost_rule(merchant, account_id, method)
                return None if rule is None else CostTerms(rule.bps, rule.fixed, rule.min, rule.max)
            return CostTable(terms)
        rule = fees.account_cost(account_id)
        return fee_bps if rule is None else CostTerms(rule.bps, rule.fixed, rule.min, rule.max)

    def _excuse_neighbours(self, account_id: str, business_date: date, result: Classified) -> Classified:
        """A success of ours absent from this statement but on a neighbouring day's (the channel's day-cut)
        is that day's match, not a difference of this one."""
        absent = result.items.filter(pl.col("class").is_in(ABSENCES))
        if absent.height == 0:
            return result
        files = store.neighbour_keys(self.dir, account_id, business_date, self.carry_days)
        if not files:
            return result
        return excuse(result, pl.scan_parquet(files).join(absent.lazy().select("kind", "reference"),
                                                          on=["kind", "reference"], how="semi").collect())

    # ---- rules that ask the channel ----

    async def confirm_run(self, run_id: str) -> Row:
        """Apply the rules that ask the channel to a run's open items (and to the account's payouts that
        no statement had); returns the run row."""
        resolved = await self._late_successes(run_id)
        resolved += await self._absent_payouts(run_id)
        resolved += await self._returned_payouts(run_id)
        return await self.db.tx(lambda conn: store.add_auto_resolved(conn, run_id, resolved))

    async def _absent_payouts(self, run_id: str) -> int:
        """Payouts still processing here that no statement of their days had (missing_channel, the window
        passed): the statements prove them absent if the channel, asked once more, has no record."""
        todo = await self.db.tx(lambda conn: store.absent_payouts(conn, run_id))
        resolved = 0
        for item in todo:
            account_id = item.channel_account
            await self.rate.wait(account_id)
            evidence = (f"on none of {account_id}'s statements from {item.business_date.isoformat()} to "
                        f"{(item.business_date + timedelta(days=self.carry_days)).isoformat()}")
            outcome = await self.payouts.settle_absent(account_id, item.reference, evidence)
            if outcome != "failed_absent":
                continue
            await self._resolve_by_rule(
                item, "payout_failed_absent",
                "the channel has no record of it either: the payout failed and its money was released")
            resolved += 1
        return resolved

    async def _returned_payouts(self, run_id: str) -> int:
        """Payouts the statement lists as returned that are not returned here: applied from the statement."""
        todo = await self.db.tx(lambda conn: store.returned_payouts(conn, run_id))
        resolved = 0
        for item in todo:
            evidence = f"line {item.line_no} of {item.channel_account}'s statement of {item.business_date.isoformat()}"
            if not await self.payouts.return_found(item.channel_account, item.reference, evidence):
                continue
            await self._resolve_by_rule(
                item, "payout_returned_by_statement",
                "the receiving bank returned it: its money is back in the position and with the merchant")
            resolved += 1
        return resolved

    async def _resolve_by_rule(self, item: Any, rule: str, reason: str) -> None:
        """One open item resolved by a rule, and its run's count of open items brought up to date."""
        now = self.clock.now()
        await self.db.tx(lambda conn: (store.resolve_by_rule(conn, item.id, rule, reason, now),
                                       store.refresh_open(conn, [item.run_id])))

    async def _late_successes(self, run_id: str) -> int:
        """Statement says succeeded, we do not: ask the channel, and apply what it says as a late success."""
        todo = await self.db.tx(lambda conn: store.late_success_candidates(conn, run_id))
        gate = asyncio.Semaphore(QUERY_CONCURRENCY)

        async def confirm(item: Row) -> bool:
            async with gate:
                await self.rate.wait(item.channel_account)
                return await self._confirm(item)

        results = await asyncio.gather(*(confirm(item) for item in todo))
        return sum(results)

    async def _confirm(self, item: Row) -> bool:
        now = self.clock.now()
        a, p, r, o = store.attempts, store.payments, store.refunds, store.payouts
        if item.kind == "payment" and item.attempt_id:
            attempt, payment = await self.db.tx(lambda conn: (
                conn.execute(select(a).where(a.c.id == item.attempt_id)).one(),
                conn.execute(select(p).where(p.c.id == item.payment_id)).one()))
            await self.payments.sync_payment(payment, source="reconciliation", attempt=attempt)
            done = await self.db.tx(lambda conn: conn.execute(
                select(a.c.status).where(a.c.id == item.attempt_id)).scalar_one() == "succeeded")
        elif item.kind == "payout":
            row = await self.db.tx(lambda conn: conn.execute(select(o).where(
                o.c.out_payout_no == item.reference, o.c.channel_account == item.channel_account)).first())
            if row is None or row.status != "processing":
                return False
            await self.payouts.sync(row)
            done = await self.db.tx(lambda conn: conn.execute(
                select(o.c.status).where(o.c.id == row.id)).scalar_one() == "succeeded")
        elif item.kind == "refund" and item.refund_id:
            refund = await self.db.tx(lambda conn: conn.execute(select(r).where(r.c.id == item.refund_id)).one())
            await self.refunds.sync(refund, item.out_trade_no)
            done = await self.db.tx(lambda conn: conn.execute(
                select(r.c.status).where(r.c.id == item.refund_id)).scalar_one() == "succeeded")
        else:
            return False
        if done:
            await self.db.tx(lambda conn: store.resolve_by_rule(
                conn, item.id, "late_success_by_query", "the channel confirmed the success; applied as a late success",
                now))
        return done
