"""post(), reverse() and balances: the double-entry core. Every function takes the caller's
connection, so a business state change and its entry commit in one transaction.

Amounts are signed integers: debits positive, credits negative. An account's `balance` column is
its net balance; its normal balance is that, or its negation for a credit-normal account.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Iterable, Sequence

from sqlalchemy import Connection, Row, bindparam, event, select
from sqlalchemy.dialects import postgresql, sqlite

from ledger.chart import AccountType, Chart
from ledger.days import BusinessDay
from ledger.errors import AlreadyReversed, EntryConflict, InsufficientBalance, InvalidEntry, UnbalancedEntry
from ledger.models import LedgerAccount, LedgerEntry, LedgerPosting
from ledger import driver, one_statement
from ledger.slots import add_to_slots, slot_of, whole_balance

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
class NewEntry:
    key: str
    event_type: str
    lines: tuple[Posting, ...]
    reference: str | None = None
    memo: str | None = None
    reverses: int | None = None


@dataclass(frozen=True)
class PostedLine:
    account: AccountRef
    amount: int
    balance_after: int | None    # None for an account kept in slots: no one row holds its running balance


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
_INSERT_ENTRIES = {name: dialect.insert(entries).on_conflict_do_nothing().returning(entries.c.id, entries.c.key)
                   for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))}
# The statements of one entry, sent on the driver's cursor (ledger.driver) as prebuilt SQL: the entry row
# (its date and timestamp converted by their columns' types, driver.bound), a guarded account's change made
# and read back in one statement (the row is locked from here to the end of the caller's transaction, and
# the no-negative rule is checked against what it returns), the postings.
_INSERT_ENTRY = ("INSERT INTO ledger_entries (key, event_type, business_date, reference, memo, postings_hash, "
                 "reverses, created_at) VALUES (:key, :event_type, :business_date, :reference, :memo, :postings_hash, "
                 ":reverses, :created_at) ON CONFLICT DO NOTHING RETURNING id, key")
_ADD_TO_ACCOUNT = "UPDATE ledger_accounts SET balance = balance + :delta WHERE id = :id RETURNING balance"
_INSERT_POSTINGS = ("INSERT INTO ledger_postings (entry_id, account_id, currency, amount, balance_after, slot) "
                    "VALUES (:entry_id, :account_id, :currency, :amount, :balance_after, :slot)")
_FIND_ACCOUNT = select(accounts.c.id).where(accounts.c.code == bindparam("b_code"),
                                            accounts.c.owner_type == bindparam("b_owner_type"),
                                            accounts.c.owner_id == bindparam("b_owner_id"),
                                            accounts.c.currency == bindparam("b_currency"))
_BALANCE = select(whole_balance(), accounts.c.normal_side).where(accounts.c.code == bindparam("b_code"),
                                                                 accounts.c.owner_id == bindparam("b_owner_id"),
                                                                 accounts.c.currency == bindparam("b_currency"))
_LOCK_ROW = (select(accounts.c.id).where(accounts.c.code == bindparam("b_code"),
                                         accounts.c.owner_id == bindparam("b_owner_id"),
                                         accounts.c.currency == bindparam("b_currency")).with_for_update())
_CREATED = "ledger_accounts_created"   # conn.info: accounts made in the connection's open transaction


_SENT_AT_COMMIT = object()   # Ledger._post_in_one_statement: the entry goes with the COMMIT


class Ledger:
    def __init__(self, chart: Chart, business_timezone: str = "Asia/Shanghai", day_cut_hour: int = 0) -> None:
        self.chart = chart
        self.day = BusinessDay.of(business_timezone, day_cut_hour)
        # Account ids never change once committed. One made in a transaction that is rolled back (only on
        # SQLite, where accounts are made in the caller's transaction) is forgotten then (_watch).
        self._ids: dict[AccountRef, int] = {}
        self._watched: set[int] = set()

    def business_date(self, at: datetime) -> date:
        """The accounting period of a moment (ledger.days)."""
        return self.day.date_of(at)

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
            create = dialect.insert(accounts).values(
                code=ref.code, owner_type=kind.owner, owner_id=ref.owner_id, currency=ref.currency,
                normal_side=kind.normal, no_negative=kind.no_negative, balance=0, created_at=now,
            ).on_conflict_do_nothing()
            if conn.dialect.name == "postgresql":
                # An account comes into existence in a transaction of its own, committed at once: made in
                # the caller's, its uncommitted key would make every other writer needing it wait for the
                # caller's end, and two callers creating two accounts in opposite orders deadlock. An
                # account nobody posts to is an empty row; the caller's READ COMMITTED statements see it.
                with conn.engine.begin() as own:
                    own.execute(create)
            else:   # SQLite has one writer: the caller's transaction holds it already
                self._watch(conn)
                conn.execute(create)
                conn.info.setdefault(_CREATED, set()).add(ref)
            found = conn.execute(_FIND_ACCOUNT, params).scalar_one()
        self._ids[ref] = found
        return found

    def _watch(self, conn: Connection) -> None:
        """Forget the ids of accounts made in a transaction (or savepoint) that is rolled back: SQLite
        may hand such an id to the next account made, and a cached id is used without a check."""
        engine = conn.engine
        if id(engine) in self._watched:
            return
        self._watched.add(id(engine))

        def rolled_back(connection: Connection, *args: object) -> None:
            for ref in connection.info.pop(_CREATED, ()):
                self._ids.pop(ref, None)

        event.listen(engine, "rollback", rolled_back)
        event.listen(engine, "rollback_savepoint", rolled_back)
        event.listen(engine, "commit", lambda connection: connection.info.pop(_CREATED, None))

    def balances(self, conn: Connection, owner_type: str | None = None, owner_id: str | None = None) -> list[Balance]:
        query = (select(accounts.c.code, accounts.c.owner_type, accounts.c.owner_id, accounts.c.currency,
                        accounts.c.normal_side, whole_balance())
                 .order_by(accounts.c.owner_type, accounts.c.owner_id, accounts.c.currency, accounts.c.code))
        if owner_type is not None:
            query = query.where(accounts.c.owner_type == owner_type)
        if owner_id is not None:
            query = query.where(accounts.c.owner_id == owner_id)
        return [Balance(AccountRef(r.code, r.owner_id, r.currency), r.owner_type, r.normal_side, r.balance)
                for r in conn.execute(query)]

    def balance(self, conn: Connection, ref: AccountRef, lock: bool = False) -> int:
        """The normal balance of one account (0 if it has never been used). With `lock`, the account's row
        is locked until the caller's transaction ends: other lockers wait, and (for an account kept in
        slots) the balance is read after the lock is held, so it includes what they committed."""
        params = {"b_code": ref.code, "b_owner_id": ref.owner_id, "b_currency": ref.currency}
        if lock and conn.dialect.name == "postgresql":
            conn.execute(_LOCK_ROW, params)
        row = conn.execute(_BALANCE, params).first()
        if row is None:
            return 0
        return row.balance if row.normal_side == "debit" else -row.balance

    # ---- entries ----

    def post(self, conn: Connection, key: str, event_type: str, lines: Sequence[Posting], *, now: datetime,
             reference: str | None = None, memo: str | None = None, reverses: int | None = None,
             at_commit: bool = False) -> Entry | None:
        """Post a balanced entry once. The same key with the same postings returns the first entry.

        at_commit: the caller reads nothing of the entry and writes nothing after it in its transaction.
        On PostgreSQL, an entry that cannot take a guarded account below zero is then sent with the
        transaction's COMMIT (ledger.driver.at_commit) and None is returned; a key already there then
        fails the transaction instead of returning the first entry. Elsewhere it is posted now."""
        new = NewEntry(key, event_type, tuple(lines), reference, memo, reverses)
        if conn.dialect.name == "postgresql":
            posted = self._post_in_one_statement(conn, new, now, at_commit=at_commit)
            if posted is _SENT_AT_COMMIT:
                return None
            if isinstance(posted, Entry):
                return posted
        return self.post_many(conn, [new], now=now)[0]

    @staticmethod
    def _changes(lines: Iterable[Posting]) -> dict[AccountRef, int]:
        """What the lines add to each account, in the order the accounts first appear."""
        change: dict[AccountRef, int] = {}
        for line in lines:
            change[line.account] = change.get(line.account, 0) + line.amount
        return change

    def _refuse_below_zero(self, ref: AccountRef, net: int, amount: int) -> None:
        """A guarded account's rule, on its net balance after a posting of `amount`."""
        if (net if self._type(ref).normal == "debit" else -net) < 0:
            raise InsufficientBalance(f"{ref} cannot go below zero (change {amount:+d})", ref.code)

    def _post_in_one_statement(self, conn: Connection, new: NewEntry, now: datetime,
                               at_commit: bool = False) -> Entry | object | None:
        """PostgreSQL, an entry with at most one guarded account: ledger.one_statement. None: post it the
        general way (more guarded accounts, or the key is there already and its entry must be read).
        at_commit: sent with the COMMIT (_SENT_AT_COMMIT returned) when its guarded account, if any, only
        grows, so that nothing is left to check; else posted now."""
        self._validate(new.lines)
        change = self._changes(new.lines)
        guarded = [ref for ref in change if self._type(ref).no_negative]
        if len(guarded) > 1:
            return None
        at_commit = at_commit and all((change[ref] if self._type(ref).normal == "debit" else -change[ref]) >= 0
                                      for ref in guarded)
        ids = {ref: self.account_id(conn, ref, now) for ref in change}
        later, lines = dict.fromkeys(change, 0), []
        for line in reversed(new.lines):
            lines.append(one_statement.Line(ids[line.account], line.account.currency, line.amount, later[line.account],
                                            line.account not in guarded))
            later[line.account] += line.amount
        lines.reverse()
        slot = slot_of(conn)
        written = one_statement.post_entry(
            conn, key=new.key, event_type=new.event_type, business_date=self.business_date(now),
            reference=new.reference, memo=new.memo, postings_hash=postings_hash(new.event_type, new.lines),
            reverses=new.reverses, created_at=now, lines=lines, slot=slot,
            guarded=(ids[guarded[0]], change[guarded[0]]) if guarded else None,
            slot_deltas={ids[ref]: delta for ref, delta in change.items() if ref not in guarded}, at_commit=at_commit)
        if written is None:
            return _SENT_AT_COMMIT
        if written.entry_id is None:
            return None
        posted = [PostedLine(line.account, line.amount,
                             None if line.account not in guarded else written.balances[ids[line.account]] - row.later)
                  for line, row in zip(new.lines, lines)]
        for line in posted:   # after every posting, as the general path checks it
            if line.balance_after is not None:
                self._refuse_below_zero(line.account, line.balance_after, line.amount)
        return Entry(written.entry_id, new.key, new.event_type, self.business_date(now), new.reference, new.memo,
                     new.reverses, now, tuple(posted))

    def post_many(self, conn: Connection, batch: Sequence["NewEntry"], *, now: datetime) -> list[Entry]:
        """Post several entries in the caller's transaction, all or nothing, touching each account once:
        the way to take many credits to a hot account. Entries whose key exists with the same postings
        come back as they were; balance-after follows the batch's order."""
        digests = []
        for new in batch:
            self._validate(new.lines)
            digests.append(postings_hash(new.event_type, new.lines))
        if len({new.key for new in batch}) != len(batch):
            raise InvalidEntry("a batch holds the same key twice")
        day = self.business_date(now)
        rows = [{"key": new.key, "event_type": new.event_type, "business_date": day, "reference": new.reference,
                 "memo": new.memo, "postings_hash": digest, "reverses": new.reverses, "created_at": now}
                for new, digest in zip(batch, digests)]
        if len(rows) == 1:   # the driver's cursor (SQLAlchemy's insertmanyvalues rewrote the SQL every call)
            created = {key: ident for ident, key in driver.fetch_all(
                conn, driver.in_style(_INSERT_ENTRY, conn.dialect.name), driver.bound(conn, entries, rows[0]))}
        else:
            created = {row.key: row.id for row in conn.execute(_INSERT_ENTRIES[conn.dialect.name], rows)}
        existing = {}
        missing = [new for new in batch if new.key not in created]
        if missing:
            existing = {row.key: row for row in conn.execute(
                select(entries).where(entries.c.key.in_([new.key for new in missing])))}
            for new, digest in zip(batch, digests):
                if new.key in created:
                    continue
                row = existing.get(new.key)
                if row is None:  # the conflict was on `reverses`: that entry is already reversed
                    raise AlreadyReversed(f"entry {new.reverses} is already reversed")
                if row.postings_hash != digest:
                    raise EntryConflict(f"entry {new.key!r} exists with different postings")
        fresh = [new for new in batch if new.key in created]
        posted = self._write_postings(conn, fresh, created, now) if fresh else {}
        return [posted[new.key] if new.key in posted else self._load(conn, existing[new.key]) for new in batch]

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

    def _write_postings(self, conn: Connection, batch: Sequence["NewEntry"], entry_ids: dict[str, int],
                        now: datetime) -> dict[str, Entry]:
        """Change the balances the batch touches and record its postings, in three statements or so: one
        UPDATE per guarded account (in id order, so writers cannot deadlock), one upsert for the slots of
        the others, one INSERT of the postings. Each posting's balance_after is worked back from the
        balance each statement returns."""
        change = self._changes(line for new in batch for line in new.lines)
        ids = {ref: self.account_id(conn, ref, now) for ref in change}
        guarded = sorted((ref for ref in change if self._type(ref).no_negative), key=ids.__getitem__)
        slotted = sorted((ref for ref in change if not self._type(ref).no_negative), key=ids.__getitem__)
        after: dict[AccountRef, int] = {}
        add_to_account = driver.in_style(_ADD_TO_ACCOUNT, conn.dialect.name)
        for ref in guarded:
            after[ref] = driver.fetch_all(conn, add_to_account, {"id": ids[ref], "delta": change[ref]})[0][0]
        slot = slot_of(conn)
        if slotted:
            by_id = add_to_slots(conn, slot, {ids[ref]: change[ref] for ref in slotted})
            after.update({ref: by_id[ids[ref]] for ref in slotted})
        in_slot = set(slotted)
        running = {ref: after[ref] - change[ref] for ref in change}
        rows, posted = [], {}
        for new in batch:
            lines = []
            for line in new.lines:
                running[line.account] += line.amount
                slotted_line = line.account in in_slot
                if not slotted_line:   # the rule holds after every posting, not only at the batch's end
                    self._refuse_below_zero(line.account, running[line.account], line.amount)
                rows.append({"entry_id": entry_ids[new.key], "account_id": ids[line.account],
                             "currency": line.account.currency, "amount": line.amount,
                             "balance_after": running[line.account], "slot": slot if slotted_line else None})
                lines.append(PostedLine(line.account, line.amount, None if slotted_line else running[line.account]))
            posted[new.key] = Entry(entry_ids[new.key], new.key, new.event_type, self.business_date(now),
                                    new.reference, new.memo, new.reverses, now, tuple(lines))
        driver.execute_many(conn, driver.in_style(_INSERT_POSTINGS, conn.dialect.name), rows)
        return posted

    def _load(self, conn: Connection, row: Row) -> Entry:
        lines = conn.execute(
            select(postings.c.amount, postings.c.balance_after, postings.c.slot, accounts.c.code, accounts.c.owner_id,
                   accounts.c.currency)
            .join(accounts, accounts.c.id == postings.c.account_id)
            .where(postings.c.entry_id == row.id).order_by(postings.c.id)).all()
        return Entry(row.id, row.key, row.event_type, row.business_date, row.reference, row.memo, row.reverses,
                     row.created_at, tuple(PostedLine(AccountRef(r.code, r.owner_id, r.currency), r.amount,
                                                      r.balance_after if r.slot is None else None) for r in lines))

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

