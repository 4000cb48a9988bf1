"""Where reconciliation keeps and reads its things: the statement files, the run and item rows, our
side in bulk, and the one transaction that writes a run's results.

Every value in a query is a bound parameter. The bulk reads on PostgreSQL go through connectorx,
which takes SQL text only: their statements are built as SQLAlchemy Core like the rest and rendered
by the database's own dialect (values quoted and escaped by its literal processors), never by
formatting strings. On SQLite they go through the process's own sqlite3 (see read_frame).
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import Future
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import polars as pl
from sqlalchemy import Connection, ColumnElement, Row, Select, and_, func, insert, select, update

from gateway.db import Database
from gateway.models import Attempt, Payment, Payout, ReconItem, ReconProposal, ReconRun, Refund
from gateway.reconciliation.match import (ABSENCES, LOCAL_PAYMENT_COLUMNS, LOCAL_PAYOUT_COLUMNS, LOCAL_REFUND_COLUMNS,
                                          PAYER_COLUMNS, Classified, with_sent_date, with_success_date)
from ledger.booking import Booker
from ledger.days import BusinessDay

runs = ReconRun.__table__
items = ReconItem.__table__
proposals = ReconProposal.__table__
attempts = Attempt.__table__
payments = Payment.__table__
refunds = Refund.__table__
payouts = Payout.__table__

Details = dict[tuple[str, str], dict[str, Any]]   # (kind, reference) -> ids and merchant of the record
Schema = dict[str, pl.DataType | type[pl.DataType]]
StatementKeys = pl.DataFrame | Future[pl.DataFrame]   # the statement's lines, or a future of them


# ---- the statement file ----

def keep_statement(folder: Path, account_id: str, business_date: date, content: bytes | None,
                   source: Path | None) -> tuple[str, Path]:
    """The statement kept for good, readable by paymux's user alone (a bill names payers): folders
    0700, the file 0600, named by its SHA-256; returns (sha256, path). An operator's file (`source`) is
    linked only if it is already that private (and then hashed, one read), else copied in chunks and
    hashed as it is copied (one read for both); a downloaded one is written from its `content`."""
    day_folder = folder / account_id / business_date.isoformat()
    day_folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for each in (folder, folder / account_id, day_folder):
        if each.stat().st_mode & 0o077:
            each.chmod(0o700)
    tmp = day_folder / f".{os.getpid()}.{id(content or source):x}.partial"
    linked = False
    if source is not None and not source.stat().st_mode & 0o077:
        try:
            os.link(source, tmp)
            linked = True
        except OSError:
            pass
    digest = hashlib.sha256()
    try:
        if linked:
            with open(tmp, "rb") as kept:
                digest = hashlib.file_digest(kept, "sha256")
        else:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                if source is not None:
                    with open(source, "rb") as given:
                        while chunk := given.read(CHUNK):
                            digest.update(chunk)
                            out.write(chunk)
                elif content is not None:
                    digest.update(content)
                    out.write(content)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sha = digest.hexdigest()
    path = day_folder / f"{sha}.statement"
    if path.exists():
        tmp.unlink()
    else:
        os.replace(tmp, path)
    return sha, path


CHUNK = 1 << 20


def neighbour_keys(folder: Path, account_id: str, business_date: date, carry_days: int) -> list[Path]:
    """The key files (kind, reference) of the account's statements within the carry-over window."""
    days = [folder / account_id / (business_date + timedelta(days=d)).isoformat()
            for d in range(-carry_days, carry_days + 1) if d]
    return [f for day in days if day.is_dir() for f in day.glob("*.keys.parquet")]


# ---- run rows ----

def run_row(conn: Connection, run_id: str) -> Row:
    return conn.execute(select(runs).where(runs.c.id == run_id)).one()


def same_file_run(conn: Connection, account_id: str, business_date: date, sha: str) -> Row | None:
    """The run already made of this very file for the day, if any."""
    return conn.execute(select(runs).where(and_(
        runs.c.channel_account == account_id, runs.c.business_date == business_date, runs.c.sha256 == sha,
        runs.c.status.in_(("completed", "superseded")))).order_by(runs.c.started_at.desc())).first()


def start_run(conn: Connection, run_id: str, account_id: str, business_date: date, sha: str, path: str,
              currency: str, now: datetime) -> None:
    conn.execute(insert(runs).values(
        id=run_id, channel_account=account_id, business_date=business_date, sha256=sha, file_path=path,
        status="running", statement_rows=0, counts={}, summary={}, payment_amount=0, refund_amount=0,
        fee_amount=0, fees_booked=0, currency=currency, auto_resolved=0, open=0, started_at=now))


def fail_run(conn: Connection, run_id: str, message: str, now: datetime) -> Row:
    conn.execute(update(runs).where(runs.c.id == run_id).values(status="failed", message=message[:1000],
                                                                finished_at=now))
    return run_row(conn, run_id)


def refresh_open(conn: Connection, run_ids: list[str]) -> None:
    """A run's `open` is how many of its items are still open."""
    for run_id in run_ids:
        conn.execute(update(runs).where(runs.c.id == run_id).values(open=select(func.count()).select_from(items).where(
            and_(items.c.run_id == run_id, items.c.status == "open")).scalar_subquery()))


def add_auto_resolved(conn: Connection, run_id: str, resolved: int) -> Row:
    conn.execute(update(runs).where(runs.c.id == run_id).values(auto_resolved=runs.c.auto_resolved + resolved))
    refresh_open(conn, [run_id])
    return run_row(conn, run_id)


def resolve_by_rule(conn: Connection, item_id: int, resolution: str, note: str, now: datetime) -> bool:
    """Resolve an item still open by a rule; False if someone or something resolved it first."""
    return conn.execute(update(items).where(and_(items.c.id == item_id, items.c.status == "open")).values(
        status="resolved", resolution=resolution, resolved_by="rule", resolved_at=now, note=note)).rowcount > 0


# ---- our side, in bulk ----

LOAD_BATCH = 200_000   # rows of our side read at once (a batch of attempts: about 15 MB)


def read_frame(db: Database, query: Select, schema: Schema) -> pl.DataFrame:
    """A query's rows as one DataFrame (read_batches put together)."""
    frames = list(read_batches(db, query, schema))
    return pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame(schema=schema)


def read_batches(db: Database, query: Select, schema: Schema, rows: int | None = None) -> Iterator[pl.DataFrame]:
    """A query's rows as DataFrames of at most `rows` (LOAD_BATCH unless given), streamed: one query,
    however many rows it gives, and never more than a batch of them held here. PostgreSQL: connectorx
    straight into Arrow (no Python row objects), one connection and one plan for the whole read.
    SQLite: through the process's own sqlite3: connectorx carries a second copy of the SQLite library,
    and two copies in one process do not see each other's POSIX locks; one closing the file can drop
    the other's locks or unmap the WAL index under it (a bus error)."""
    rows = rows or LOAD_BATCH
    if db.is_sqlite:
        batches = _sqlite_batches(db, query, rows, schema)
    else:
        import connectorx

        sql = str(query.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))
        reader = connectorx.read_sql(db.connectorx_url, sql, return_type="arrow_stream", batch_size=rows)
        batches = (pl.from_arrow(batch) for batch in reader)
    for frame in batches:
        if frame.height:
            yield frame.with_columns(pl.col(c).cast(t) for c, t in schema.items() if c != "at")


def _sqlite_batches(db: Database, query: Select, rows: int, schema: Schema) -> Iterator[pl.DataFrame]:
    """The DBAPI cursor's tuples as they come (SQLAlchemy binds the parameters; its Row objects, which
    cost twice the read, are skipped): SQLite gives text and integers, typed here by `schema`."""
    with db.engine.connect() as conn:
        result = conn.execute(query)
        types = {name: pl.Int64 if schema.get(name) == pl.Int64 else pl.String for name in result.keys()}
        while batch := result.cursor.fetchmany(rows):
            yield pl.DataFrame(batch, schema=types, orient="row")


def load_local(db: Database, account_id: str, since: datetime, until: datetime, day: BusinessDay, *,
               statement: StatementKeys | None = None,
               business_date: date | None = None) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Our attempts, refunds and payouts at the account created in [since, until) (and every payout
    still processing), only the columns the join needs, as local_parts reads them, put together.

    With `statement` (its lines, or a future of them while they are being parsed) and business_date,
    a batch keeps only the rows classify can use (see local_parts)."""
    keys = None
    if statement is not None and business_date is not None:
        def keys() -> tuple[pl.Series, pl.Series]:
            return _key_hashes(statement.result() if isinstance(statement, Future) else statement)
    parts: dict[str, list[pl.DataFrame]] = {"payment": [], "refund": [], "payout": []}
    for kind, frame in local_parts(db, account_id, since, until, day, keys=keys, business_date=business_date):
        parts[kind].append(frame)
    schemas = {"payment": LOCAL_PAYMENT_COLUMNS, "refund": LOCAL_REFUND_COLUMNS, "payout": LOCAL_PAYOUT_COLUMNS}
    pay, ref, out = (pl.concat(parts[kind], rechunk=False) if parts[kind] else pl.DataFrame(schema=schemas[kind])
                     for kind in ("payment", "refund", "payout"))
    return pay, ref, out


def local_parts(db: Database, account_id: str, since: datetime, until: datetime, day: BusinessDay, *,
                keys: Callable[[], tuple[pl.Series, pl.Series]] | None = None,
                business_date: date | None = None, payer: bool = False) -> Iterator[tuple[str, pl.DataFrame]]:
    """Our attempts, refunds and payouts at the account created in [since, until) (and every payout
    still processing), only the columns the join needs, as (kind, frame) parts: "payout" and "refund"
    once each, "payment" once per batch (read_batches). A row says all we need: amount, status, and
    for a success, updated_at is when it succeeded.

    With `keys` (a call that gives the statement's sorted key hashes, waiting for them while the
    statement is being read: key_hashes) and business_date, attempts are read in two queries, each
    streamed in batches: the business day's first, given whole while the statement is still being read
    (they are mostly on it); then the rest of the window, once the statement's keys are known, each
    batch keeping only the rows classify can use: those whose key is on the statement and those that
    succeeded on the business date (refunds, fewer, are read at once and kept the same way). So what is
    held grows with the statement, not with the lookback window (a week of history is read, and
    dropped as it is read), and the whole window costs two queries, not one per slice of it.

    With `payer`, payments and refunds also carry their payment's merchant and method (PAYER_COLUMNS),
    which the cost rules choose by when they name merchants or methods (match.CostTable)."""
    def at(column: ColumnElement) -> ColumnElement:
        # SQLite's stored text cut to seconds (parsed column-wise later); PostgreSQL's timestamptz as it is
        return (func.substr(column, 1, 19) if db.is_sqlite else column).label("at")

    kept: Schema = {"local_status": pl.String, "local_amount": pl.Int64, "at": pl.Datetime("us", "UTC")}
    pay_query = select(attempts.c.out_trade_no, attempts.c.status.label("local_status"),
                       attempts.c.amount.label("local_amount"), at(attempts.c.updated_at)) \
        .where(attempts.c.channel_account == account_id, attempts.c.created_at >= since,
               attempts.c.created_at < until)
    ref_query = select(refunds.c.out_refund_no, attempts.c.out_trade_no, refunds.c.status.label("local_status"),
                       refunds.c.amount.label("local_amount"), at(refunds.c.updated_at)) \
        .select_from(refunds.join(attempts, attempts.c.id == refunds.c.attempt_id)) \
        .where(refunds.c.channel_account == account_id)
    pay_schema: Schema = {"out_trade_no": pl.String, **kept}
    ref_schema: Schema = {"out_refund_no": pl.String, "out_trade_no": pl.String, **kept}
    if payer:
        pay_query = pay_query.add_columns(payments.c.merchant_id, attempts.c.method) \
            .join_from(attempts, payments, payments.c.id == attempts.c.payment_id)
        ref_query = ref_query.add_columns(refunds.c.merchant_id, attempts.c.method)
        pay_schema, ref_schema = {**pay_schema, **PAYER_COLUMNS}, {**ref_schema, **PAYER_COLUMNS}
    out = read_frame(db, select(payouts.c.out_payout_no, payouts.c.status.label("local_status"),
                                payouts.c.amount.label("local_amount"), at(payouts.c.updated_at))
                     .where(payouts.c.channel_account == account_id,
                            (payouts.c.status == "processing")
                            | and_(payouts.c.created_at >= since, payouts.c.created_at < until)),
                     {"out_payout_no": pl.String, **kept})
    yield "payout", with_sent_date(with_success_date(out, day), day)
    del out
    ref = with_success_date(read_frame(db, ref_query.where(refunds.c.created_at >= since,
                                                           refunds.c.created_at < until), ref_schema), day)
    if keys is None or business_date is None:
        yield "refund", ref
        for batch in read_batches(db, pay_query, pay_schema):
            yield "payment", with_success_date(batch, day)
        return
    lo, hi = day.start(business_date), day.start(business_date + timedelta(days=1))
    for batch in read_batches(db, pay_query.where(attempts.c.created_at >= lo, attempts.c.created_at < hi),
                              pay_schema):
        yield "payment", with_success_date(batch, day)
    hashes = keys()
    yield "refund", _on_statement_or_day(ref, "out_refund_no", hashes[1], business_date)
    del ref
    history = pay_query.where((attempts.c.created_at < lo) | (attempts.c.created_at >= hi))
    reads = _sqlite_history(db, history, pay_schema, hashes[0], lo, hi) if db.is_sqlite else \
        read_batches(db, history, pay_schema)
    for batch in reads:
        # most of a week's rows are neither: they are dropped before their business date is worked out
        batch = batch.filter(_on_statement(batch["out_trade_no"], hashes[0]) | _may_have_succeeded(batch, lo, hi))
        yield "payment", _on_statement_or_day(with_success_date(batch, day), "out_trade_no", hashes[0],
                                              business_date)


KEY_SEED = 17


def _key_hashes(lines: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
    """The statement's payment and refund keys as sorted 64-bit hashes: a batch's rows are looked up by
    binary search, with no hash table built per batch (a collision keeps a row more, never one less)."""
    return sorted_hashes([key_hashes(lines)])


def key_hashes(lines: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
    """A piece of the statement's payment and refund keys as 64-bit hashes (unsorted: see sorted_hashes)."""
    return lines["out_trade_no"].drop_nulls().hash(KEY_SEED), lines["out_refund_no"].drop_nulls().hash(KEY_SEED)


def sorted_hashes(pieces: list[tuple[pl.Series, pl.Series]]) -> tuple[pl.Series, pl.Series]:
    """The key hashes of every piece of the statement, each kind put together and sorted."""
    pay = pl.concat([p for p, _ in pieces]) if pieces else pl.Series(dtype=pl.UInt64)
    ref = pl.concat([r for _, r in pieces]) if pieces else pl.Series(dtype=pl.UInt64)
    return pay.sort(), ref.sort()


def _on_statement(keys: pl.Series, hashes: pl.Series) -> pl.Series:
    """Whether each key is (probably) on the statement: its hash found in the sorted hashes."""
    if not hashes.len():
        return pl.repeat(False, keys.len(), eager=True)
    found = keys.hash(KEY_SEED)
    at = hashes.search_sorted(found).clip(0, hashes.len() - 1)
    return (hashes.gather(at) == found).fill_null(False)


NEAR = timedelta(hours=3)   # more than any time zone's change of offset


def _sqlite_history(db: Database, query: Select, schema: Schema, hashes: pl.Series, lo: datetime,
                    hi: datetime) -> Iterator[pl.DataFrame]:
    """The window's attempts outside the business day on SQLite, where every value read costs a Python
    object: the keys alone first, then whole rows only where they can matter, in two disjoint reads (so
    no row comes twice): the successes near the business day (as _may_have_succeeded, in SQL) and the
    others whose key is on the statement, looked up by key."""
    near = and_(attempts.c.status == "succeeded", attempts.c.updated_at >= lo - NEAR,
                attempts.c.updated_at < hi + NEAR)
    # written anew (concat_str): a filtered string column would keep its whole batch's buffers alive
    found = [batch.filter(_on_statement(batch["out_trade_no"], hashes))
             .select(pl.concat_str("out_trade_no", pl.lit("")))["out_trade_no"]
             for batch in read_batches(db, query.with_only_columns(attempts.c.out_trade_no),
                                       {"out_trade_no": pl.String})]
    yield from read_batches(db, query.where(near), schema)
    keys = pl.concat(found) if found else pl.Series(dtype=pl.String)   # a column, not Python strings
    for at in range(0, keys.len(), 500):
        chunk = keys.slice(at, 500).to_list()
        yield from read_batches(db, query.where(attempts.c.out_trade_no.in_(chunk), ~near), schema)


def _may_have_succeeded(frame: pl.DataFrame, lo: datetime, hi: datetime) -> pl.Series:
    """True at least for every row that succeeded on the business day [lo, hi) (with_success_date's
    local_date), found by comparing `at` as it comes (PostgreSQL's instant; SQLite's UTC text, which
    sorts as time) with the day widened by NEAR: cheaper than working out every row's business date."""
    start, end = (lo - NEAR).astimezone(UTC), (hi + NEAR).astimezone(UTC)
    if frame.schema["at"] == pl.String:
        bounds = start.strftime("%Y-%m-%d %H:%M:%S"), end.strftime("%Y-%m-%d %H:%M:%S")
        at = pl.col("at")
    else:   # the instant in microseconds, whatever zone the column is labelled with (naive: UTC)
        bounds = _micros(start), _micros(end)
        at = pl.col("at").dt.epoch("us")
    near = (pl.col("local_status") == "succeeded") & (at >= bounds[0]) & (at < bounds[1])
    return frame.select(near.fill_null(False)).to_series()


def _micros(t: datetime) -> int:
    return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _on_statement_or_day(frame: pl.DataFrame, key: str, hashes: pl.Series, business_date: date) -> pl.DataFrame:
    """The rows of a batch classify can use: their key is (probably) on the statement, or they succeeded
    on the business date (an absence from the statement)."""
    if frame.height == 0:
        return frame
    kept = frame.filter(_on_statement(frame[key], hashes) | (pl.col("local_date") == business_date).fill_null(False))
    # Written anew: filtered, a string column still points into the whole batch's buffers and keeps
    # them alive, so every batch of the window would stay in memory.
    return kept.with_columns(pl.concat_str(pl.col(c), pl.lit("")) for c, t in kept.schema.items() if t == pl.String)


def item_details(conn: Connection, found: pl.DataFrame) -> Details:
    """Ids and merchant of the records behind the items (a few, by key)."""
    details: Details = {}
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


# ---- writing the results: one transaction ----

def write_results(conn: Connection, booker: Booker, *, run_id: str, account_id: str, business_date: date,
                  rows: int, result: Classified, details: Details, summary: dict[str, Any], today: date,
                  carry_days: int, now: datetime) -> Row:
    """The run's items, the older runs of the day it supersedes, the carry-overs it settles or ages,
    the day's channel fees and its counts, all at once. Returns the run row."""
    run = run_row(conn, run_id)
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
    carried = _settle_carryovers(conn, account_id, business_date, result.statement_keys, now)
    _age_carryovers(conn, account_id, today, carry_days)
    fees_booked = _book_fees(conn, booker, run, result.fee_amount, now)
    open_count = conn.execute(select(func.count()).select_from(items).where(and_(
        items.c.run_id == run_id, items.c.status == "open"))).scalar_one()
    conn.execute(update(runs).where(runs.c.id == run_id).values(
        status="completed", statement_rows=rows, counts=result.counts, summary=summary,
        payment_amount=result.payment_amount, refund_amount=result.refund_amount, fee_amount=result.fee_amount,
        fees_booked=fees_booked, auto_resolved=carried, open=open_count, finished_at=now))
    return run_row(conn, run_id)


def _settle_carryovers(conn: Connection, account_id: str, business_date: date, keys: pl.DataFrame | pl.LazyFrame,
                       now: datetime) -> int:
    """Open carry-overs of earlier days whose line this statement has: matched here, by rule."""
    waiting = conn.execute(select(items.c.id, items.c.kind, items.c.reference, items.c.run_id).where(and_(
        items.c.channel_account == account_id, items.c.status == "open",
        items.c["class"].in_(ABSENCES), items.c.business_date != business_date))).all()
    if not waiting:
        return 0
    frame = pl.DataFrame([dict(r._mapping) for r in waiting], schema={
        "id": pl.Int64, "kind": pl.String, "reference": pl.String, "run_id": pl.String})
    found = frame.lazy().join(keys.lazy(), on=["kind", "reference"], how="semi").collect()
    if found.height:
        conn.execute(update(items).where(items.c.id.in_(found["id"].to_list())).values(
            status="resolved", resolution="carryover_matched", resolved_by="rule", resolved_at=now,
            note=f"on the statement of {business_date.isoformat()}"))
        refresh_open(conn, found["run_id"].unique().to_list())
    return found.height


def _age_carryovers(conn: Connection, account_id: str, today: date, carry_days: int) -> None:
    """A carry-over whose window has passed is missing at the channel: a person must look."""
    last_day = date.fromordinal(today.toordinal() - carry_days - 1)
    conn.execute(update(items).where(and_(
        items.c.channel_account == account_id, items.c.status == "open", items.c["class"] == "pending_carryover",
        items.c.business_date <= last_day)).values(**{"class": "missing_channel"},
                                                   note="no statement had it within the carry-over window"))


def _book_fees(conn: Connection, booker: Booker, run: Row, fee_amount: int, now: datetime) -> int:
    """The channel's fees of the day: fee expense against clearing. A superseding statement books only
    the difference from what the runs before it booked."""
    before = conn.execute(select(func.coalesce(func.sum(runs.c.fees_booked), 0)).where(and_(
        runs.c.channel_account == run.channel_account, runs.c.business_date == run.business_date,
        runs.c.id != run.id, runs.c.status.in_(("completed", "superseded"))))).scalar_one()
    delta = fee_amount - int(before)
    if delta:
        event = "recon.channel_fees" if delta > 0 else "recon.channel_fees_returned"
        booker.book(conn, event, f"recon:{run.id}", merchant_id="", channel_account=run.channel_account,
                    currency=run.currency, variables={"amount": abs(delta)}, now=now,
                    memo=f"channel fees of {run.business_date.isoformat()}")
    return delta


# ---- what the rules that ask the channel work on ----

def late_success_candidates(conn: Connection, run_id: str) -> list[Row]:
    """Open items of the run where the statement says succeeded and we do not."""
    return conn.execute(select(items).where(and_(
        items.c.run_id == run_id, items.c.status == "open", items.c["class"] == "status_mismatch",
        items.c.channel_status == "succeeded"))).all()


def absent_payouts(conn: Connection, run_id: str) -> list[Row]:
    """The run's account's payouts still processing here that no statement of their days had."""
    account_id = conn.execute(select(runs.c.channel_account).where(runs.c.id == run_id)).scalar_one()
    return conn.execute(select(items).where(and_(
        items.c.channel_account == account_id, items.c.status == "open", items.c.kind == "payout",
        items.c["class"] == "missing_channel", items.c.local_status == "processing"))).all()


def returned_payouts(conn: Connection, run_id: str) -> list[Row]:
    """Open items of the run where the statement says a payout was returned and we do not."""
    return conn.execute(select(items).where(and_(
        items.c.run_id == run_id, items.c.status == "open", items.c["class"] == "status_mismatch",
        items.c.kind == "payout", items.c.channel_status == "returned"))).all()
