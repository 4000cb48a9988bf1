"""post(), reverse() and balances: the double-entry core. Every function takes the caller's
connection, so a business state change and its entry commit in one transaction.

Amounts are signed integers: debits positive, credits negative. An account's `balance` column is
its net balance; its normal balance is that, or its negation for a credit-normal account.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ledger.chart import AccountType, Chart
from ledger.errors import AlreadyReversed, EntryConflict, InsufficientBalance, InvalidEntry, UnbalancedEntry
from ledger.models import LedgerAccount, LedgerEntry, LedgerPosting

accounts = LedgerAccount.__table__
entries = LedgerEntry.__table__
postings = LedgerPosting.__table__


@dataclass(frozen=True)
class AccountRef:
    code: str
    owner_id: str          # "" for the platform
    currency: str

    def __str__(self) -> str:
        return f"{self.code}[{self.owner_id or 'platform'}/{self.currency}]"


@dataclass(frozen=True)
class Posting:
    account: AccountRef
    amount: int            # debit positive, credit negative

    @classmethod
    def debit(cls, account: AccountRef, amount: int) -> "Posting":
        return cls(account, amount)

    @classmethod
    def credit(cls, account: AccountRef, amount: int) -> "Posting":
        return cls(account, -amount)


@dataclass(frozen=True)
class PostedLine:
    account: AccountRef
    amount: int
    balance_after: int


@dataclass(frozen=True)
class Entry:
    id: int
    key: str
    event_type: str
    business_date: date
    reference: str | None
    memo: str | None
    reverses: int | None
    created_at: datetime
    lines: tuple[PostedLine, ...]


@dataclass(frozen=True)
class Balance:
    account: AccountRef
    owner_type: str
    normal_side: str
    net: int

    @property
    def normal(self) -> int:
        """The balance as its owner reads it: positive is the normal state."""
        return self.net if self.normal_side == "debit" else -self.net


def postings_hash(event_type: str, lines: Iterable[Posting]) -> str:
    canonical = sorted((p.account.code, p.account.owner_id, p.account.currency, p.amount) for p in lines)
    return hashlib.sha256(json.dumps([event_type, canonical]).encode()).hexdigest()


# Built once, executed many times: statement construction costs more than execution.
# The natural key rides along with the id: a cached id is trusted only if it still names this account
# (an id created in a transaction that rolled back can be handed to another account later).
_ADD = (update(accounts).where(accounts.c.id == bindparam("b_id"), accounts.c.code == bindparam("b_code"),
                               accounts.c.owner_id == bindparam("b_owner_id"),
                               accounts.c.currency == bindparam("b_currency"))
        .values(balance=accounts.c.balance + bindparam("b_delta")).returning(accounts.c.balance))
# For a must-not-go-negative account, the WHERE refuses the update that would take it below zero.
_ADD_GUARD_CREDIT = _ADD.where(accounts.c.balance + bindparam("b_delta") <= 0)
_ADD_GUARD_DEBIT = _ADD.where(accounts.c.balance + bindparam("b_delta") >= 0)
_INSERT_POSTINGS = insert(postings)
_FIND_ACCOUNT = select(accounts.c.id).where(accounts.c.code == bindparam("b_code"),
                                            accounts.c.owner_type == bindparam("b_owner_type"),
                                            accounts.c.owner_id == bindparam("b_owner_id"),
                                            accounts.c.currency == bindparam("b_currency"))


class Ledger:
    def __init__(self, chart: Chart, business_timezone: str = "Asia/Shanghai", day_cut_hour: int = 0) -> None:
        self.chart = chart
        self.tz = ZoneInfo(business_timezone)
        self.day_cut = timedelta(hours=day_cut_hour)
        # Account ids never change once committed; each use of a cached id re-checks it (see _ADD).
        self._ids: dict[AccountRef, int] = {}

    def business_date(self, at: datetime) -> date:
        """The accounting period of a moment: its date in the business time zone, after the day-cut."""
        return (at.astimezone(self.tz) - self.day_cut).date()

    # ---- accounts ----

    def _type(self, ref: AccountRef) -> AccountType:
        return self.chart.account_type(ref.code)

    def account_id(self, conn: Connection, ref: AccountRef, now: datetime) -> int:
        cached = self._ids.get(ref)
        if cached is not None:
            return cached
        kind = self._type(ref)
        params = {"b_code": ref.code, "b_owner_type": kind.owner, "b_owner_id": ref.owner_id,
                  "b_currency": ref.currency}
        found = conn.execute(_FIND_ACCOUNT, params).scalar()
        if found is None:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            conn.execute(dialect.insert(accounts).values(
                code=ref.code, owner_type=kind.owner, owner_id=ref.owner_id, currency=ref.currency,
                normal_side=kind.normal, no_negative=kind.no_negative, balance=0, created_at=now,
            ).on_conflict_do_nothing())
            found = conn.execute(_FIND_ACCOUNT, params).scalar_one()
        self._ids[ref] = found
        return found

    def balances(self, conn: Connection, owner_type: str | None = None, owner_id: str | None = None) -> list[Balance]:
        query = select(accounts).order_by(accounts.c.owner_type, accounts.c.owner_id, accounts.c.currency,
                                          accounts.c.code)
        if owner_type is not None:
            query = query.where(accounts.c.owner_type == owner_type)
        if owner_id is not None:
            query = query.where(accounts.c.owner_id == owner_id)
        return [Balance(AccountRef(r.code, r.owner_id, r.currency), r.owner_type, r.normal_side, r.balance)
                for r in conn.execute(query)]

    def balance(self, conn: Connection, ref: AccountRef, lock: bool = False) -> int:
        """The normal balance of one account (0 if it has never been used)."""
        query = select(accounts.c.balance, accounts.c.normal_side).where(
            accounts.c.code == ref.code, accounts.c.owner_id == ref.owner_id, accounts.c.currency == ref.currency)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            return 0
        return row.balance if row.normal_side == "debit" else -row.balance

    # ---- entries ----

    def post(self, conn: Connection, key: str, event_type: str, lines: Sequence[Posting], *, now: datetime,
             reference: str | None = None, memo: str | None = None, reverses: int | None = None) -> Entry:
        """Post a balanced entry once. The same key with the same postings returns the first entry."""
        self._validate(lines)
        digest = postings_hash(event_type, lines)
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        entry_id = conn.execute(dialect.insert(entries).values(
            key=key, event_type=event_type, business_date=self.business_date(now), reference=reference,
            memo=memo, postings_hash=digest, reverses=reverses, created_at=now,
        ).on_conflict_do_nothing().returning(entries.c.id)).scalar()
        if entry_id is None:
            existing = conn.execute(select(entries).where(entries.c.key == key)).first()
            if existing is None:  # the conflict was on `reverses`: that entry is already reversed
                raise AlreadyReversed(f"entry {reverses} is already reversed")
            if existing.postings_hash != digest:
                raise EntryConflict(f"entry {key!r} exists with different postings")
            return self._load(conn, existing)
        return self._write_postings(conn, entry_id, key, event_type, lines, now, reference, memo, reverses)

    def _validate(self, lines: Sequence[Posting]) -> None:
        if len(lines) < 2:
            raise InvalidEntry("an entry needs at least two postings")
        sums: dict[str, int] = {}
        for line in lines:
            if not isinstance(line.amount, int) or isinstance(line.amount, bool) or line.amount == 0:
                raise InvalidEntry(f"posting to {line.account} must be a non-zero integer, not {line.amount!r}")
            self._type(line.account)
            sums[line.account.currency] = sums.get(line.account.currency, 0) + line.amount
        off = {c: s for c, s in sums.items() if s}
        if off:
            raise UnbalancedEntry("postings do not sum to zero: " + ", ".join(f"{c} {s:+d}" for c, s in off.items()))

    def _write_postings(self, conn: Connection, entry_id: int, key: str, event_type: str, lines: Sequence[Posting],
                        now: datetime, reference: str | None, memo: str | None, reverses: int | None) -> Entry:
        deltas: dict[AccountRef, int] = {}
        for line in lines:
            deltas[line.account] = deltas.get(line.account, 0) + line.amount
        ids = {ref: self.account_id(conn, ref, now) for ref in deltas}
        finals: dict[AccountRef, int] = {}
        # One order for every writer: two entries touching the same accounts cannot deadlock.
        for ref in sorted(deltas, key=ids.__getitem__):
            ids[ref], finals[ref] = self._apply(conn, ids[ref], ref, deltas[ref], now)
        running = {ref: finals[ref] - deltas[ref] for ref in deltas}
        rows, posted = [], []
        for line in lines:
            running[line.account] += line.amount
            rows.append({"entry_id": entry_id, "account_id": ids[line.account], "currency": line.account.currency,
                         "amount": line.amount, "balance_after": running[line.account]})
            posted.append(PostedLine(line.account, line.amount, running[line.account]))
        conn.execute(_INSERT_POSTINGS, rows)
        return Entry(entry_id, key, event_type, self.business_date(now), reference, memo, reverses, now, tuple(posted))

    def _apply(self, conn: Connection, account_id: int, ref: AccountRef, delta: int,
               now: datetime) -> tuple[int, int]:
        """Add delta to an account's balance; returns (account id, new net balance)."""
        kind = self._type(ref)
        lowers = (kind.normal == "credit" and delta > 0) or (kind.normal == "debit" and delta < 0)
        statement = _ADD
        if kind.no_negative and lowers:
            statement = _ADD_GUARD_CREDIT if kind.normal == "credit" else _ADD_GUARD_DEBIT
        new = conn.execute(statement, {"b_id": account_id, "b_delta": delta, "b_code": ref.code,
                                       "b_owner_id": ref.owner_id, "b_currency": ref.currency}).scalar()
        if new is not None:
            return account_id, new
        exists = conn.execute(select(accounts.c.id).where(
            accounts.c.id == account_id, accounts.c.code == ref.code, accounts.c.owner_id == ref.owner_id,
            accounts.c.currency == ref.currency)).scalar()
        if exists is None:  # a stale cached id (its creating transaction rolled back): look it up again
            self._ids.pop(ref, None)
            return self._apply(conn, self.account_id(conn, ref, now), ref, delta, now)
        raise InsufficientBalance(f"{ref} cannot go below zero (change {delta:+d})", ref.code)

    def _load(self, conn: Connection, row) -> Entry:  # noqa: ANN001
        lines = conn.execute(
            select(postings.c.amount, postings.c.balance_after, accounts.c.code, accounts.c.owner_id, accounts.c.currency)
            .join(accounts, accounts.c.id == postings.c.account_id)
            .where(postings.c.entry_id == row.id).order_by(postings.c.id)).all()
        return Entry(row.id, row.key, row.event_type, row.business_date, row.reference, row.memo, row.reverses,
                     row.created_at, tuple(PostedLine(AccountRef(r.code, r.owner_id, r.currency), r.amount,
                                                      r.balance_after) for r in lines))

    def entry(self, conn: Connection, key: str) -> Entry | None:
        row = conn.execute(select(entries).where(entries.c.key == key)).first()
        return None if row is None else self._load(conn, row)

    def reverse(self, conn: Connection, original: Entry, *, now: datetime, key: str | None = None,
                event_type: str | None = None, memo: str | None = None) -> Entry:
        """Post the mirror of an entry, once. A second reversal is refused."""
        if conn.execute(select(entries.c.id).where(entries.c.reverses == original.id)).first() is not None:
            raise AlreadyReversed(f"entry {original.key!r} is already reversed")
        mirror = [Posting(line.account, -line.amount) for line in original.lines]
        return self.post(conn, key or f"reverse:{original.key}", event_type or f"reversal.{original.event_type}",
                         mirror, now=now, reference=original.reference, memo=memo or f"reverses {original.key}",
                         reverses=original.id)

    def entries_for_owner(self, conn: Connection, owner_type: str, owner_id: str, limit: int,
                          before_id: int | None = None) -> list[Entry]:
        """Entries touching any account of one owner, newest first (for cursor pagination)."""
        owned = select(accounts.c.id).where(accounts.c.owner_type == owner_type, accounts.c.owner_id == owner_id)
        ids = select(postings.c.entry_id).where(postings.c.account_id.in_(owned)).distinct()
        query = select(entries).where(entries.c.id.in_(ids)).order_by(entries.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(entries.c.id < before_id)
        return [self._load(conn, row) for row in conn.execute(query)]

