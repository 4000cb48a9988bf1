"""Invariant checks over the whole ledger: each returns the violations it finds, as sentences."""
from __future__ import annotations

from sqlalchemy import Connection, func, select

from ledger.models import LedgerAccount, LedgerBalanceSlot, LedgerEntry, LedgerPosting
from ledger.slots import whole_balance

accounts = LedgerAccount.__table__
entries = LedgerEntry.__table__
postings = LedgerPosting.__table__
slots = LedgerBalanceSlot.__table__


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
    """Each account row holds the sum of its postings that name no slot, and each slot the sum of those
    naming it (ledger.slots): so the account's balance, row plus slots, is the sum of all its postings."""
    own = (select(postings.c.account_id, func.sum(postings.c.amount).label("s"))
           .where(postings.c.slot.is_(None)).group_by(postings.c.account_id).subquery())
    rows = conn.execute(select(accounts.c.id, accounts.c.code, accounts.c.owner_id, accounts.c.balance,
                               func.coalesce(own.c.s, 0).label("s"))
                        .outerjoin(own, own.c.account_id == accounts.c.id)
                        .where(accounts.c.balance != func.coalesce(own.c.s, 0)))
    problems = [f"account {r.id} {r.code}[{r.owner_id or 'platform'}] holds {r.balance} but its postings sum to {r.s}"
                for r in rows]
    in_slots = (select(postings.c.account_id, postings.c.slot, func.sum(postings.c.amount).label("s"))
                .where(postings.c.slot.is_not(None)).group_by(postings.c.account_id, postings.c.slot).subquery())
    both = select(func.coalesce(slots.c.account_id, in_slots.c.account_id).label("account_id"),
                  func.coalesce(slots.c.slot, in_slots.c.slot).label("slot"),
                  func.coalesce(slots.c.balance, 0).label("balance"), func.coalesce(in_slots.c.s, 0).label("s"))
    # A full outer join, spelled as two outer joins (SQLite before 3.39 has no FULL JOIN).
    left = both.select_from(slots.outerjoin(in_slots, (in_slots.c.account_id == slots.c.account_id)
                                            & (in_slots.c.slot == slots.c.slot)))
    right = (both.select_from(in_slots.outerjoin(slots, (in_slots.c.account_id == slots.c.account_id)
                                                 & (in_slots.c.slot == slots.c.slot)))
             .where(slots.c.account_id.is_(None)))
    for r in conn.execute(left.where(func.coalesce(slots.c.balance, 0) != func.coalesce(in_slots.c.s, 0))
                          .union_all(right)):
        problems.append(f"account {r.account_id} slot {r.slot} holds {r.balance} but its postings sum to {r.s}")
    return problems


def balance_chains(conn: Connection) -> list[str]:
    """Each posting's balance_after is the running sum of its account row's postings, or of its slot's."""
    running = func.sum(postings.c.amount).over(partition_by=(postings.c.account_id, postings.c.slot),
                                               order_by=postings.c.id)
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
    rows = conn.execute(select(accounts.c.id, accounts.c.code, accounts.c.owner_id, accounts.c.normal_side,
                               whole_balance()).where(accounts.c.no_negative.is_(True)))
    return [f"account {r.id} {r.code}[{r.owner_id or 'platform'}] is below zero: {r.balance}" for r in rows
            if (r.balance if r.normal_side == "debit" else -r.balance) < 0]
