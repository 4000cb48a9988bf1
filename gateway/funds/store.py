"""Where funds reconciliation keeps and reads its things: bank statements and lines, the movements the
books expect through the reserve account, and one import written in one transaction.

An import is idempotent by the file's SHA-256 (the same file again is the same statement); a later file
for the same day supersedes the earlier (its lines no longer count). Each import reconciles the reserve
account's window (late_days back from its latest statement) again, as a whole: the differences it
finds are reconciliation items (recon_items, of a recon run named by the statement), so that people
resolve them with the same maker-checker as a channel's (review.py). An open item the new picture no
longer has is resolved by rule (`rematched`: its line came late, a file was replaced); one two people
resolved stays so, and its movement or line, once adjusted, is matched no more.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import Connection, String, and_, insert, literal, select, text, update

from gateway.funds.config import ReserveAccount
from gateway.funds.match import EXPECTED_COLUMNS, MATCH_LINE_COLUMNS, OUTCOME_COLUMNS, classify, counts
from gateway.funds.parsers import BankFileError, BankStatement
from gateway.ids import public_id
from gateway.models import BankLine, BankStatement as BankStatementRow, Payout, Settlement
from gateway.reconciliation.store import items, keep_statement, refresh_open, runs
from ledger.reads import postings_on

statements = BankStatementRow.__table__
bank_lines = BankLine.__table__
settlements = Settlement.__table__
payouts = Payout.__table__

# Events that move money through the reserve bank account, and what the bank line is.
EVENT_KINDS = {"settlement.channel": "settlement", "settlement.channel_debit": "settlement",
               "position.topup": "topup"}
# ... and those of the channel accounts whose position is the reserve account itself (payout_accounts:
# bank-direct payouts): each payout leaves on its own line, a returned one (退票) comes back on another.
# A merchant's withdrawal is a payout to the merchant's own bank account: the same event. What a channel
# pays out of a position prefunded at the channel left the bank as that position's top-up.
PAYOUT_KINDS = {"payout.succeeded": "payout", "payout.returned": "payout_return"}
PEOPLE = ("adjust", "dismiss")   # resolutions two people made (a rule's are others)


def already_imported(conn: Connection, reserve_id: str, sha: str) -> dict[str, Any] | None:
    row = conn.execute(select(statements).where(and_(statements.c.reserve_account == reserve_id,
                                                     statements.c.sha256 == sha))).first()
    return None if row is None else statement_report(conn, row, "already_imported")


def current_statement(conn: Connection, reserve_id: str, day: date) -> dict[str, Any] | None:
    """The report of the statement of `day` that counts now (imported by hand or by the close), or None."""
    row = conn.execute(select(statements).where(and_(statements.c.reserve_account == reserve_id,
                                                     statements.c.statement_date == day,
                                                     statements.c.status == "current"))).first()
    return None if row is None else statement_report(conn, row, "current")


def statement_report(conn: Connection, row: Any, outcome: str) -> dict[str, Any]:
    run = conn.execute(select(runs).where(runs.c.id == row.run_id)).one()
    return {"status": outcome, "statement_id": row.id, "reserve_account": row.reserve_account,
            "statement_date": row.statement_date.isoformat(), "format": row.format, "lines": row.line_count,
            "statement_status": row.status, "run_id": run.id, "counts": dict(run.counts or {}), "open": run.open,
            "opening_balance": row.opening_balance, "closing_balance": row.closing_balance,
            "currency": row.currency, "sha256": row.sha256}


def check_statement(reserve: ReserveAccount, statement: BankStatement) -> None:
    """The file is this reserve account's, in its currency."""
    if reserve.account_number and statement.account and \
            _digits(statement.account) != _digits(reserve.account_number):
        raise BankFileError(f"the file is account {statement.account}'s, not {reserve.id}'s "
                            f"({reserve.account_number})", code="wrong_account")
    other = {c for c in statement.lines["currency"].unique().to_list() if c} | (
        {statement.currency} if statement.currency else set())
    if other - {reserve.currency}:
        raise BankFileError(f"the file moves {', '.join(sorted(other))}; {reserve.id} holds {reserve.currency}",
                            code="wrong_currency")


def _digits(account: str) -> str:
    return "".join(ch for ch in account.split("/")[-1] if ch.isalnum()).upper()


def import_statement(conn: Connection, reserve: ReserveAccount, statement: BankStatement, statement_date: date,
                     folder: Path, content: bytes, now: datetime) -> dict[str, Any]:
    """Keep the file, supersede the day's earlier one, write the lines, reconcile the window: one
    transaction (the caller's). The file is kept first, by its hash: a crash leaves at most a kept file."""
    sha, path = keep_statement(folder, reserve.id, statement_date, content, None)
    if conn.dialect.name == "postgresql":   # one import of a reserve account at a time (SQLite: one writer anyway)
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"bank-import:{reserve.id}"})
    found = already_imported(conn, reserve.id, sha)
    if found:
        return found
    statement_id, run_id = public_id("bst"), public_id("rb")
    older = conn.execute(select(statements.c.id, statements.c.run_id).where(and_(
        statements.c.reserve_account == reserve.id, statements.c.statement_date == statement_date,
        statements.c.status == "current"))).all()
    if older:
        conn.execute(update(statements).where(statements.c.id.in_([o.id for o in older])).values(status="superseded"))
        conn.execute(update(runs).where(runs.c.id.in_([o.run_id for o in older])).values(status="superseded"))
    conn.execute(insert(runs).values(
        id=run_id, channel_account=reserve.id, business_date=statement_date, sha256=sha, file_path=str(path),
        status="running", statement_rows=statement.lines.height, counts={}, summary={}, payment_amount=0,
        refund_amount=0, fee_amount=0, fees_booked=0, currency=reserve.currency, auto_resolved=0, open=0,
        started_at=now))
    conn.execute(insert(statements).values(
        id=statement_id, reserve_account=reserve.id, statement_date=statement_date, sha256=sha,
        format=statement.format, file_path=str(path), status="current", line_count=statement.lines.height,
        currency=reserve.currency, opening_balance=statement.opening_balance,
        closing_balance=statement.closing_balance, run_id=run_id, imported_at=now))
    if statement.lines.height:
        conn.execute(insert(bank_lines), [
            {**row, "statement_id": statement_id, "reserve_account": reserve.id, "currency": reserve.currency,
             "reference": (row["reference"] or "")[:200], "details": (row["details"] or "")[:500],
             "bank_reference": (row["bank_reference"] or "")[:100]}
            for row in statement.lines.drop("currency").iter_rows(named=True)])
    outcomes, since, until = reconcile_window(conn, reserve, statement_date)
    rematched, opened = write_items(conn, reserve, run_id, outcomes, since, until, now)
    conn.execute(update(runs).where(runs.c.id == run_id).values(
        status="completed", counts=counts(outcomes), auto_resolved=rematched, finished_at=now,
        summary={"window": [since.isoformat(), until.isoformat()], "superseded": [o.id for o in older],
                 "statement_id": statement_id, "open_in_window": len(opened)}))
    refresh_open(conn, [run_id])
    row = conn.execute(select(statements).where(statements.c.id == statement_id)).one()
    return {**statement_report(conn, row, "imported"), "superseded": [o.id for o in older]}


# ---- the two sides ----

def latest_statement_date(conn: Connection, reserve_id: str) -> date | None:
    return conn.execute(select(statements.c.statement_date).where(and_(
        statements.c.reserve_account == reserve_id, statements.c.status == "current"))
        .order_by(statements.c.statement_date.desc()).limit(1)).scalar()


def expected_movements(conn: Connection, reserve: ReserveAccount, since: date, until: date) -> pl.DataFrame:
    """What the books say moved through the reserve account, per entry (EXPECTED_COLUMNS): its channel
    accounts' settlements and top-ups, and the payouts of its payout accounts."""
    moved = reserve_movements(conn, reserve, since, until).filter(
        (pl.col("kind") != "topup") | ~pl.col("channel_account").is_in(list(reserve.payout_accounts)))
    return pl.concat([moved, payout_movements(conn, reserve, since, until)])


def payout_movements(conn: Connection, reserve: ReserveAccount, since: date, until: date) -> pl.DataFrame:
    """The payouts paid (out) and returned (in) through the reserve account by its payout accounts, on
    the day they were booked, each carrying its out_payout_no on the bank line."""
    rows = []
    day = since
    while day <= until and reserve.payout_accounts:
        moved = postings_on(("channel_position_committed", "channel_position"), list(PAYOUT_KINDS), day).subquery()
        rows += [{**r._mapping, "expected_date": day} for r in conn.execute(
            select(moved.c.reference, moved.c.event_type, moved.c.owner_id, moved.c.debit, moved.c.credit,
                   payouts.c.out_payout_no)
            .select_from(moved.join(payouts, moved.c.reference == literal("payout:", String) + payouts.c.id))
            .where(moved.c.owner_id.in_(list(reserve.payout_accounts)), moved.c.currency == reserve.currency))]
        day += timedelta(days=1)
    if not rows:
        return pl.DataFrame(schema=EXPECTED_COLUMNS)
    frame = pl.DataFrame(rows, infer_schema_length=None).with_columns(pl.col("debit", "credit").cast(pl.Int64))
    returned = pl.col("event_type") == "payout.returned"
    return frame.group_by("reference", "event_type").agg(
        amount=(pl.col("debit") - pl.col("credit")).sum(), expected_date=pl.col("expected_date").first(),
        channel_account=pl.col("owner_id").first(), token=pl.col("out_payout_no").first()).select(
        kind=pl.col("event_type").replace_strict(PAYOUT_KINDS, return_dtype=pl.String),
        # a payout's paying out and its return are two movements: two references
        reference=pl.when(returned).then(pl.concat_str("reference", pl.lit(":returned")))
        .otherwise("reference").str.slice(0, 64),
        channel_account="channel_account", expected_date="expected_date", amount="amount",
        token="token").cast(EXPECTED_COLUMNS)  # type: ignore[arg-type]


def reserve_movements(conn: Connection, reserve: ReserveAccount, since: date, until: date) -> pl.DataFrame:
    """The postings to reserve_bank: per entry, for its channel accounts: one query per business day (the
    window is a few days)."""
    rows = []
    day = since
    while day <= until:
        rows += [{**r._mapping, "expected_date": day} for r in conn.execute(
            postings_on(("reserve_bank", "channel_clearing", "channel_position"), list(EVENT_KINDS), day))]
        day += timedelta(days=1)
    if not rows:
        return pl.DataFrame(schema=EXPECTED_COLUMNS)
    frame = pl.DataFrame(rows, infer_schema_length=None).with_columns(pl.col("debit", "credit").cast(pl.Int64))
    frame = frame.filter(pl.col("currency") == reserve.currency)
    bank = frame.filter(pl.col("code") == "reserve_bank").group_by("reference", "event_type").agg(
        amount=(pl.col("debit") - pl.col("credit")).sum(), expected_date=pl.col("expected_date").first())
    owner = frame.filter(pl.col("code") != "reserve_bank").group_by("reference").agg(
        channel_account=pl.col("owner_id").first())
    # A channel pays on its settlement's settle_date (settling ahead books it earlier)
    keys = [f"{r}:{e}" for r, e in bank.select("reference", "event_type").iter_rows()]
    paid_on = pl.DataFrame([(k.rsplit(":", 1)[0], d) for k, d in conn.execute(
        select(settlements.c.entry_key, settlements.c.settle_date).where(settlements.c.entry_key.in_(keys)))],
        schema={"reference": pl.String, "settle_date": pl.Date}, orient="row")
    bank = bank.join(paid_on, on="reference", how="left").with_columns(
        expected_date=pl.coalesce("settle_date", "expected_date"))
    moved = bank.join(owner, on="reference").filter(
        pl.col("channel_account").is_in(list(reserve.channel_accounts)) if reserve.channel_accounts else pl.lit(True))
    kind = pl.col("event_type").replace_strict(EVENT_KINDS, return_dtype=pl.String)
    tokens = pl.DataFrame({"channel_account": list(reserve.channel_accounts),
                           "settlement_token": list(reserve.channel_accounts.values())},
                          schema={"channel_account": pl.String, "settlement_token": pl.String})
    return moved.join(tokens, on="channel_account", how="left").select(
        # an item's reference holds 64 characters: the entry's key cut there names it as well
        kind=kind, reference=pl.col("reference").str.slice(0, 64), channel_account="channel_account",
        expected_date="expected_date",
        amount="amount",
        # a settlement's line carries the channel's own text; a top-up's, the transfer's reference
        token=pl.when(kind == "settlement").then(pl.coalesce("settlement_token", "channel_account"))
        .otherwise(pl.col("reference").str.split(":").list.last())).cast(EXPECTED_COLUMNS)  # type: ignore[arg-type]


def bank_frame(conn: Connection, reserve_id: str, since: date, until: date) -> pl.DataFrame:
    """The lines of the reserve account's current statements dated in [since, until]."""
    found = conn.execute(select(bank_lines.c.line_no, bank_lines.c.booking_date, bank_lines.c.amount,
                                bank_lines.c.reference, bank_lines.c.details, bank_lines.c.bank_reference)
                         .select_from(bank_lines.join(statements, statements.c.id == bank_lines.c.statement_id))
                         .where(bank_lines.c.reserve_account == reserve_id, statements.c.status == "current",
                                bank_lines.c.booking_date >= since, bank_lines.c.booking_date <= until)).all()
    frame = pl.DataFrame([dict(r._mapping) for r in found], schema={
        "line_no": pl.Int64, "booking_date": pl.Date, "amount": pl.Int64, "reference": pl.String,
        "details": pl.String, "bank_reference": pl.String})
    return frame.select(
        line_key=pl.concat_str(pl.col("booking_date").dt.to_string("%Y-%m-%d"), pl.lit("#"),
                               pl.col("line_no").cast(pl.String)),
        line_no="line_no", booking_date="booking_date", amount="amount",
        text=pl.concat_str("reference", "details", "bank_reference", separator=" "),
        bank_reference="bank_reference").cast(MATCH_LINE_COLUMNS)  # type: ignore[arg-type]


def bank_runs(reserve_id: str) -> Any:
    return select(statements.c.run_id).where(statements.c.reserve_account == reserve_id)


def reconcile_window(conn: Connection, reserve: ReserveAccount, day: date, decided: bool = True,
                     until: date | None = None) -> tuple[pl.DataFrame, date, date]:
    """The window's outcomes (match.OUTCOME_COLUMNS) as the books and the current statements say now,
    from `day` less late_days to `until` (default: the latest statement); with `decided`, less what two
    people resolved (for items: it is not asked again; a report shows the bank as it is)."""
    latest = latest_statement_date(conn, reserve.id) or day
    until = max(day, until or latest)
    since = min(day, latest) - timedelta(days=reserve.late_days)
    resolved = conn.execute(select(items.c["class"], items.c.kind, items.c.reference, items.c.out_trade_no,
                                   items.c.resolution).where(and_(
        items.c.run_id.in_(bank_runs(reserve.id)), items.c.status == "resolved",
        items.c.resolution.in_(PEOPLE)))).all() if decided else []
    adjusted = [r for r in resolved if r.resolution == "adjust"]
    moved = {r.reference for r in adjusted if r.kind != "bank_line"}
    lines_gone = {r.out_trade_no or r.reference for r in adjusted if r.out_trade_no or r.kind == "bank_line"}
    expected = expected_movements(conn, reserve, since, until).filter(~pl.col("reference").is_in(list(moved)))
    lines = bank_frame(conn, reserve.id, since, until).filter(~pl.col("line_key").is_in(list(lines_gone)))
    outcomes = classify(expected, lines, day=until, match_days=reserve.match_days, late_days=reserve.late_days)
    if resolved:
        decided = pl.DataFrame([(r._mapping["class"], r.reference) for r in resolved],
                               schema={"class": pl.String, "reference": pl.String}, orient="row")
        outcomes = outcomes.join(decided, on=["class", "reference"], how="anti")
    return outcomes, since, until


# ---- the differences, as reconciliation items ----

KEY = ["class", "kind", "reference", "out_trade_no"]


def write_items(conn: Connection, reserve: ReserveAccount, run_id: str, outcomes: pl.DataFrame, since: date,
                until: date, now: datetime) -> tuple[int, list[int]]:
    """Open an item for each difference not already open; resolve by rule the open ones of the window the
    picture no longer has. Returns (how many were resolved so, the ids open now for this window)."""
    found = outcomes.filter(pl.col("class") != "matched").select(
        **{"class": "class"}, kind="kind", reference="reference", out_trade_no="line_key",
        channel_account=pl.coalesce("channel_account", pl.lit(reserve.id)), business_date="business_date",
        line_no="line_no", channel_transaction_id="bank_reference", channel_amount="bank_amount",
        local_amount="expected_amount", channel_effect=pl.col("bank_amount").fill_null(0),
        local_effect=pl.col("expected_amount").fill_null(0))
    now_open = conn.execute(select(items.c.id, items.c["class"], items.c.kind, items.c.reference,
                                   items.c.out_trade_no, items.c.run_id).where(and_(
        items.c.run_id.in_(bank_runs(reserve.id)), items.c.status == "open",
        items.c.business_date >= since, items.c.business_date <= until))).all()
    existing = pl.DataFrame([dict(r._mapping) for r in now_open], schema={
        "id": pl.Int64, "class": pl.String, "kind": pl.String, "reference": pl.String, "out_trade_no": pl.String,
        "run_id": pl.String})
    keyed = [pl.col(k).fill_null("") for k in KEY]
    new = found.with_columns(_k=pl.concat_str(keyed, separator="\x1f"))
    old = existing.with_columns(_k=pl.concat_str(keyed, separator="\x1f"))
    to_open = new.join(old.select("_k"), on="_k", how="anti").drop("_k")
    gone = old.join(new.select("_k", now_class="class"), on="_k", how="anti")
    if to_open.height:
        conn.execute(insert(items), [{**row, "run_id": run_id, "status": "open", "created_at": now}
                                     for row in to_open.iter_rows(named=True)])
    if gone.height:
        # one UPDATE per class the items are now (a few), not one per item
        now_as = gone.join(outcomes.select("reference", now="class").unique("reference"), on="reference",
                           how="left").group_by("now").agg(pl.col("id"))
        for now_class, ids in now_as.iter_rows():
            conn.execute(update(items).where(items.c.id.in_(ids)).values(
                status="resolved", resolution="rematched", resolved_by="rule", resolved_at=now,
                note=f"the bank statement of {until.isoformat()} shows it "
                     f"{now_class or 'no more (its file was replaced)'}"))
        refresh_open(conn, gone["run_id"].unique().to_list())
    still = conn.execute(select(items.c.id).where(and_(
        items.c.run_id.in_(bank_runs(reserve.id)), items.c.status == "open",
        items.c.business_date >= since, items.c.business_date <= until))).scalars().all()
    return gone.height, list(still)
