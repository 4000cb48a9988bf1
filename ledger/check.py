"""Invariant checks over the whole ledger: each returns the violations it finds, as sentences."""
from __future__ import annotations

from sqlalchemy import Connection, func, select

from ledger.models import LedgerAccount, LedgerEntry, LedgerPosting

accounts = LedgerAccount.__table__
entries = LedgerEntry.__table__
postings = LedgerPosting.__table__


def check_ledger(conn: Connection) -> list[str]:
    return (entries_balance(conn) + balances_match_postings(conn) + balance_chains(conn)
            + reversals_mirror(conn) + no_negative_respected(conn))


def entries_balance(conn: Connection) -> list[str]:
    problems = []
    counts = select(postings.c.entry_id, func.count().label("n")).group_by(postings.c.entry_id).subquery()
    for row in conn.execute(select(entries.c.id, entries.c.key, func.coalesce(counts.c.n, 0).label("n"))
                            .outerjoin(counts, counts.c.entry_id == entries.c.id)
                            .where(func.coalesce(counts.c.n, 0) < 2)):
        problems.append(f"entry {row.id} ({row.key}) has {row.n} posting(s); at least two are required")
    for row in conn.execute(select(postings.c.entry_id, postings.c.currency, func.sum(postings.c.amount).label("s"))
                            .group_by(postings.c.entry_id, postings.c.currency)
                            .having(func.sum(postings.c.amount) != 0)):
        problems.append(f"entry {row.entry_id} does not balance in {row.currency}: {row.s:+d}")
    return problems


def balances_match_postings(conn: Connection) -> list[str]:
    sums = select(postings.c.account_id, func.sum(postings.c.amount).label("s")).group_by(postings.c.account_id).subquery()
    rows = conn.execute(select(accounts.c.id, accounts.c.code, accounts.c.owner_id, accounts.c.balance,
                               func.coalesce(sums.c.s, 0).label("s"))
                        .outerjoin(sums, sums.c.account_id == accounts.c.id)
                        .where(accounts.c.balance != func.coalesce(sums.c.s, 0)))
    return [f"account {r.id} {r.code}[{r.owner_id or 'platform'}] holds {r.balance} but its postings sum to {r.s}"
            for r in rows]


def balance_chains(conn: Connection) -> list[str]:
    running = func.sum(postings.c.amount).over(partition_by=postings.c.account_id, order_by=postings.c.id)
    chained = select(postings.c.id, postings.c.account_id, postings.c.balance_after,
                     running.label("running")).subquery()
    rows = conn.execute(select(chained).where(chained.c.balance_after != chained.c.running).limit(100))
    return [f"posting {r.id} on account {r.account_id} says balance {r.balance_after}, the chain says {r.running}"
            for r in rows]


def reversals_mirror(conn: Connection) -> list[str]:
    problems = []
    reversal = entries.alias("reversal")
    for pair in conn.execute(select(reversal.c.id, reversal.c.reverses).where(reversal.c.reverses.is_not(None))):
        def lines(entry_id: int) -> list[tuple[int, str, int]]:
            return sorted(conn.execute(select(postings.c.account_id, postings.c.currency, postings.c.amount)
                                       .where(postings.c.entry_id == entry_id)).all())
        if lines(pair.id) != sorted((a, c, -x) for a, c, x in lines(pair.reverses)):
            problems.append(f"entry {pair.id} reverses entry {pair.reverses} but does not mirror it")
    return problems


def no_negative_respected(conn: Connection) -> list[str]:
    rows = conn.execute(select(accounts).where(accounts.c.no_negative.is_(True)))
    return [f"account {r.id} {r.code}[{r.owner_id or 'platform'}] is below zero: {r.balance}" for r in rows
            if (r.balance if r.normal_side == "debit" else -r.balance) < 0]
