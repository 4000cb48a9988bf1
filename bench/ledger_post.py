"""Ledger posting throughput: entries of 3 postings (clearing Dr, a merchant's in-transit Cr, fee
income Cr: a payment's success) through Ledger.post() against, in the same run and database, a
hand-written baseline doing the same essential work with the same rows and locks: the merchant's
balance row updated and returned (it has a no-negative rule: locked), the clearing and fee income
changes added to the connection's balance slot (ledger.slots: no shared row), the entry row, and its
postings with balance_after in one multi-row INSERT -- 4 statements an entry. (post() on PostgreSQL
sends the same writes as one statement, ledger.one_statement.)

Configurations, each a transaction per entry unless said:
- 1 writer;
- 8 writers, each for its own merchant, all on the same platform accounts (clearing, fee income):
  issue 17's "8 writers posting single entries to one platform account";
- the same 8 writers as 8 processes (forked, one thread each: no one interpreter limits them);
- on PostgreSQL, the same 8 writers posting with at_commit=True, as a payment's success does: the entry's
  statement goes with the transaction's COMMIT in one round trip (ledger.driver.at_commit); the baseline
  is the same;
- 8 writers all crediting one hot merchant account: that account's one row is the limit, for both sides;
- 8 writers on one hot merchant account, 50 entries a transaction (post_many()) against the same
  statements carrying 50 entries.

Each configuration runs in interleaved windows (post, baseline, post, baseline, ...; --repeats pairs
of --seconds each) and prints min/median/max entries/s of each side and of the per-pair ratio.
Outside the timer: creating and migrating the database, creating the accounts (warm-up entries
through post()), starting and joining the writer threads or forking the writer processes (each
child drops its inherited pool and waits at a start line; each counts over its own window). Both
sides run against the same database, with the same triggers (the baseline's postings fire the same
deferred balance check on PostgreSQL), and both retry through Database.run_tx.

    .venv/bin/python bench/ledger_post.py [--seconds 1] [--repeats 5]

PostgreSQL is measured too when PAYMUX_TEST_DATABASE_URL (or PAYMUX_BENCH_DATABASE_URL) is set.
"""
from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api_create import database_kinds, prepare_database  # noqa: E402
from bench.windows import POSTGRES, cpu_by_group, cpu_delta, interleave, report  # noqa: E402
from gateway import db as dbmod  # noqa: E402
from ledger.chart import load_chart  # noqa: E402
from ledger.core import AccountRef, Ledger, NewEntry, Posting  # noqa: E402
from ledger.slots import slot_of  # noqa: E402

NOW = datetime(2026, 11, 22, tzinfo=UTC)
BATCH = 50
WRITERS = 8
CLEARING = AccountRef("channel_clearing", "sandbox", "CNY")
HOT = AccountRef("merchant_in_transit", "mch_hot", "CNY")
OWN = [AccountRef("merchant_in_transit", f"mch_{w}", "CNY") for w in range(WRITERS)]
FEES = AccountRef("fee_income", "", "CNY")
AMOUNT, FEE = 100, 6
PLAIN_GUARDED = text("UPDATE ledger_accounts SET balance = balance + :d WHERE id = :a RETURNING balance")
PLAIN_SLOTS = text("INSERT INTO ledger_balance_slots (account_id, slot, balance) VALUES (:c, :s, :dc), (:f, :s, :df) "
                   "ON CONFLICT (account_id, slot) DO UPDATE SET balance = ledger_balance_slots.balance + "
                   "excluded.balance RETURNING account_id, balance")


def plain_entries(n: int):  # noqa: ANN201
    """One INSERT of n entry rows, returning their ids with their keys."""
    rows = ", ".join(f"(:k{j}, 'bench', :day, 'x', :now)" for j in range(n))
    return text(f"INSERT INTO ledger_entries (key, event_type, business_date, postings_hash, created_at) "
                f"VALUES {rows} RETURNING id, key")


def plain_postings(n: int):  # noqa: ANN201
    """One INSERT of n posting rows."""
    rows = ", ".join(f"(:e{j}, :a{j}, 'CNY', :x{j}, :b{j}, :s{j})" for j in range(n))
    return text("INSERT INTO ledger_postings (entry_id, account_id, currency, amount, balance_after, slot) "
                f"VALUES {rows}")


ENTRIES = {1: plain_entries(1), BATCH: plain_entries(BATCH)}
POSTINGS = {1: plain_postings(3), BATCH: plain_postings(3 * BATCH)}


def run_writers(writers: int, seconds: float, one: callable) -> float:
    """Call one(i, w) from `writers` threads (w: the thread's number) until time is up; calls per second."""
    counter = itertools.count()
    done = [0] * writers
    stop_at = time.perf_counter() + seconds

    def loop(w: int) -> None:
        while time.perf_counter() < stop_at:
            one(next(counter), w)
            done[w] += 1

    threads = [threading.Thread(target=loop, args=(w,)) for w in range(writers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - started)


def run_processes(writers: int, seconds: float, one: callable, db: dbmod.Database) -> float:
    """Call one(i, w) from `writers` forked processes (one thread each) until time is up; calls per
    second. Outside the timer: forking, each child dropping the pool it inherited (it opens its own
    connections), and all of them reaching the start line; each child counts over its own window."""
    context = multiprocessing.get_context("fork")
    ready, counts = context.Barrier(writers + 1), context.Queue()

    def child(w: int) -> None:
        db.engine.dispose(close=False)
        ready.wait()
        stop_at, n = time.perf_counter() + seconds, 0
        while time.perf_counter() < stop_at:
            one(w * 1_000_000_000 + n, w)
            n += 1
        counts.put(n)

    processes = [context.Process(target=child, args=(w,)) for w in range(writers)]
    for p in processes:
        p.start()
    ready.wait()
    total = sum(counts.get() for _ in processes)
    for p in processes:
        p.join()
    return total / seconds


def measure(kind: str, seconds: float, repeats: int) -> list[str]:
    lines_out = []
    with tempfile.TemporaryDirectory() as tmp:
        url, cleanup = prepare_database(kind, Path(tmp))
        try:
            dbmod.upgrade(url)
            db = dbmod.Database(url)
            ledger = Ledger(load_chart())
            with db.transaction() as conn:  # create the accounts; the plain statements reuse their ids
                for merchant in [HOT, *OWN]:
                    ledger.post(conn, f"warm-{merchant.owner_id}", "bench", [
                        Posting.debit(CLEARING, AMOUNT), Posting.credit(merchant, AMOUNT - FEE),
                        Posting.credit(FEES, FEE)], now=NOW)
                ids = {ref: ledger.account_id(conn, ref, NOW) for ref in (CLEARING, HOT, FEES, *OWN)}
            run = itertools.count()

            def lines(merchant: AccountRef) -> list[Posting]:
                return [Posting.debit(CLEARING, AMOUNT), Posting.credit(merchant, AMOUNT - FEE),
                        Posting.credit(FEES, FEE)]

            def write_plain(conn, keys: list[str], merchant: AccountRef) -> None:  # noqa: ANN001
                """The baseline: the guarded row, the slots, the entries, the postings -- 4 statements for
                any number of entries."""
                n, slot = len(keys), slot_of(conn)
                after = {ids[merchant]: conn.execute(PLAIN_GUARDED, {"a": ids[merchant],
                                                                      "d": -(AMOUNT - FEE) * n}).scalar_one()}
                after.update(conn.execute(PLAIN_SLOTS, {"c": ids[CLEARING], "f": ids[FEES], "s": slot,
                                                        "dc": AMOUNT * n, "df": -FEE * n}).all())
                returned = dict((key, eid) for eid, key in conn.execute(ENTRIES[n], {
                    "day": NOW.date(), "now": NOW, **{f"k{j}": key for j, key in enumerate(keys)}}).all())
                rows, p = {}, 0
                for j, key in enumerate(keys):
                    for ref, x in ((CLEARING, AMOUNT), (merchant, -(AMOUNT - FEE)), (FEES, -FEE)):
                        # the balance after entry j: the final one less what the later entries add
                        rows.update({f"e{p}": returned[key], f"a{p}": ids[ref], f"x{p}": x,
                                     f"b{p}": after[ids[ref]] - x * (n - 1 - j),
                                     f"s{p}": None if ref is merchant else slot})
                        p += 1
                conn.execute(POSTINGS[n], rows)

            def via_ledger(merchant_of: callable) -> callable:
                return lambda i, w, tag: db.run_tx(lambda conn: ledger.post(conn, f"{tag}-{i}", "bench",
                                                                            lines(merchant_of(w)), now=NOW))

            def at_commit_via_ledger(merchant_of: callable) -> callable:
                """post(at_commit=True), as a payment's success posts its entry: sent with the COMMIT."""
                return lambda i, w, tag: db.run_tx(lambda conn: ledger.post(
                    conn, f"{tag}-{i}", "bench", lines(merchant_of(w)), now=NOW, at_commit=True))

            def plain(merchant_of: callable) -> callable:
                return lambda i, w, tag: db.run_tx(lambda conn: write_plain(conn, [f"{tag}-{i}"], merchant_of(w)))

            def batch_via_ledger(i: int, w: int, tag: str) -> None:
                db.run_tx(lambda conn: ledger.post_many(conn, [NewEntry(f"{tag}-{i}-{j}", "bench", tuple(lines(HOT)))
                                                               for j in range(BATCH)], now=NOW))

            def batch_plain(i: int, w: int, tag: str) -> None:
                db.run_tx(lambda conn: write_plain(conn, [f"{tag}-{i}-{j}" for j in range(BATCH)], HOT))

            def compare(label: str, writers: int, side: callable, baseline: callable, per: int = 1,
                        processes: bool = False) -> str:
                tag = f"r{next(run)}"
                if processes:
                    def go(one: callable) -> float:
                        return run_processes(writers, seconds, one, db)
                else:
                    def go(one: callable) -> float:
                        return run_writers(writers, seconds, one)
                cpu: dict[str, list[tuple[float, float]]] = {"l": [], "p": []}

                def timed(which: str, k: int, one: callable) -> float:
                    """The window's rate; and, for threads, the CPU per entry of this process and of
                    PostgreSQL's processes (all of them on the machine, by command name)."""
                    before, mine = cpu_by_group({}, POSTGRES), os.times()
                    rate = per * go(lambda i, w: one(i, w, f"{tag}{which}{k}"))
                    spent, after = cpu_delta(before, cpu_by_group({}, POSTGRES)), os.times()
                    entries = rate * seconds
                    cpu[which].append(((after.user + after.system - mine.user - mine.system) / entries * 1000,
                                       spent.get("postgresql server", 0.0) / entries * 1000))
                    return rate

                a, b = interleave(repeats, lambda k: timed("l", k, side), lambda k: timed("p", k, baseline))
                sa, sb, sr = report(a, b)
                where = "" if processes else "; CPU per entry (median ms), Python / PostgreSQL: " + ", ".join(
                    f"{name} {statistics.median(c[0] for c in cpu[w]):.2f} / {statistics.median(c[1] for c in cpu[w]):.2f}"
                    for name, w in (("post", "l"), ("baseline", "p")))
                return (f"{kind}, {label}: "
                        f"{'post_many()' if per > 1 else 'post()'} {sa} entries/s, same-work SQL baseline {sb} "
                        f"entries/s, ratio {sr} (min/median/max of {repeats} interleaved {seconds:g} s windows){where}")

            own, hot = (lambda w: OWN[w]), (lambda w: HOT)
            for label, writers, merchant_of in (
                    ("1 writer, one entry a transaction", 1, own),
                    (f"{WRITERS} writers, each its own merchant, on one platform clearing and fee account", WRITERS, own),
                    (f"{WRITERS} writers all on one hot merchant account", WRITERS, hot)):
                lines_out.append(compare(label, writers, via_ledger(merchant_of), plain(merchant_of)))
                print(lines_out[-1], flush=True)
            if kind == "postgresql":   # elsewhere at_commit posts at once: the line above again
                lines_out.append(compare(f"{WRITERS} writers, each its own merchant, on one platform clearing and fee "
                                         "account, the entry sent with its COMMIT (at_commit, as a payment's success)",
                                         WRITERS, at_commit_via_ledger(own), plain(own)))
                print(lines_out[-1], flush=True)
            # The same 8 writers as 8 processes (as `paymux serve --workers 8` would post): shows whether
            # one Python process's interpreter is what limits them.
            lines_out.append(compare(f"{WRITERS} writer processes, each its own merchant, on one platform clearing "
                                     "and fee account", WRITERS, via_ledger(own), plain(own), processes=True))
            print(lines_out[-1], flush=True)
            lines_out.append(compare(f"{WRITERS} writers on one hot merchant account, {BATCH} entries a transaction",
                                     WRITERS, batch_via_ledger, batch_plain, BATCH))
            print(lines_out[-1], flush=True)
            db.dispose()
        finally:
            cleanup()
    return lines_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each window")
    parser.add_argument("--repeats", type=int, default=5, help="pairs of interleaved windows")
    args = parser.parse_args()
    kinds = database_kinds()
    print("target (issue 17): >= 1500 entries/s on PostgreSQL with 8 writers on one platform account")
    for kind in kinds:
        measure(kind, args.seconds, args.repeats)


if __name__ == "__main__":
    main()
