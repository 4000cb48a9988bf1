"""Ledger posting throughput: entries of 3 postings through Ledger.post() (idempotency key, balance
updates with overdraw guards, balance-after, and on PostgreSQL the deferred balance trigger) against,
in the same run and database, a hand-written baseline doing the same essential work: it updates the
same three balance rows (locking them, on the same hot account) with one set UPDATE ... RETURNING the
new balances, inserts the entry row, and inserts its postings with their balance_after in one
multi-row INSERT -- 3 statements an entry. Measured: one transaction per entry with one writer and
with 8 writers all crediting one hot merchant account, then 8 writers with 50 entries a transaction
(post_many(), the hot-account batching the domain notes describe) against the same 3 statements
carrying 50 entries (one UPDATE of the summed deltas, one 50-row entry INSERT, one 150-row posting
INSERT).

Each configuration runs in interleaved windows (post, baseline, post, baseline, ...; --repeats pairs
of --seconds each) and prints min/median/max entries/s of each side and of the per-pair ratio.
Outside the timer: creating and migrating the database, creating the three accounts (one warm-up
entry through post()), starting and joining the writer threads. Both
sides run against the same database, with the same triggers (the baseline's postings fire the same
deferred balance check on PostgreSQL), and both retry through Database.run_tx.

    .venv/bin/python bench/ledger_post.py [--seconds 1] [--repeats 5]

PostgreSQL is measured too when PAYMUX_TEST_DATABASE_URL (or PAYMUX_BENCH_DATABASE_URL) is set.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.api_create import database_kinds, prepare_database  # noqa: E402
from bench.windows import interleave, report  # noqa: E402
from gateway import db as dbmod  # noqa: E402
from ledger.chart import load_chart  # noqa: E402
from ledger.core import AccountRef, Ledger, NewEntry, Posting  # noqa: E402

NOW = datetime(2026, 11, 22, tzinfo=UTC)
BATCH = 50
CLEARING = AccountRef("channel_clearing", "sandbox", "CNY")
HOT = AccountRef("merchant_in_transit", "mch_hot", "CNY")
FEES = AccountRef("fee_income", "", "CNY")
PLAIN_ENTRY = text("INSERT INTO ledger_entries (key, event_type, business_date, postings_hash, created_at) "
                   "VALUES (:key, 'bench', :day, 'x', :now) RETURNING id")
AMOUNTS = (100, -94, -6)  # CLEARING, HOT, FEES
PLAIN_BALANCES = text("UPDATE ledger_accounts SET balance = balance + CASE id WHEN :a0 THEN :d0 WHEN :a1 THEN :d1 "
                      "WHEN :a2 THEN :d2 END WHERE id IN (:a0, :a1, :a2) RETURNING id, balance")
# On PostgreSQL an UPDATE locks rows in the order it finds them, which changes as updates move tuples;
# 8 writers then deadlock. The same one statement takes the locks in id order first, as post() does.
PG_PLAIN_BALANCES = text("UPDATE ledger_accounts a SET balance = a.balance + CASE a.id WHEN :a0 THEN :d0 "
                         "WHEN :a1 THEN :d1 WHEN :a2 THEN :d2 END FROM (SELECT id FROM ledger_accounts WHERE id IN "
                         "(:a0, :a1, :a2) ORDER BY id FOR UPDATE) l WHERE a.id = l.id RETURNING a.id, a.balance")


def plain_entries(n: int):  # noqa: ANN201
    """One INSERT of n entry rows, returning their ids with their keys."""
    rows = ", ".join(f"(:k{j}, 'bench', :day, 'x', :now)" for j in range(n))
    return text(f"INSERT INTO ledger_entries (key, event_type, business_date, postings_hash, created_at) "
                f"VALUES {rows} RETURNING id, key")


def plain_postings(n: int):  # noqa: ANN201
    """One INSERT of n posting rows."""
    rows = ", ".join(f"(:e{j}, :a{j}, 'CNY', :x{j}, :b{j})" for j in range(n))
    return text(f"INSERT INTO ledger_postings (entry_id, account_id, currency, amount, balance_after) VALUES {rows}")


PLAIN_POSTINGS = plain_postings(3)
BATCH_ENTRIES = plain_entries(BATCH)
BATCH_POSTINGS = plain_postings(3 * BATCH)


def run_writers(writers: int, seconds: float, one: callable) -> float:
    """Call one(i) from `writers` threads until time is up; entries per second."""
    counter = itertools.count()
    done = [0] * writers
    stop_at = time.perf_counter() + seconds

    def loop(w: int) -> None:
        while time.perf_counter() < stop_at:
            one(next(counter))
            done[w] += 1

    threads = [threading.Thread(target=loop, args=(w,)) for w in range(writers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.perf_counter() - started)


def measure(kind: str, seconds: float, repeats: int) -> list[str]:
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        url, cleanup = prepare_database(kind, Path(tmp))
        try:
            dbmod.upgrade(url)
            db = dbmod.Database(url)
            ledger = Ledger(load_chart())
            with db.transaction() as conn:  # create the accounts; the plain inserts reuse their ids
                ledger.post(conn, "warm", "bench", [Posting.debit(CLEARING, 100), Posting.credit(HOT, 94),
                                                    Posting.credit(FEES, 6)], now=NOW)
                ids = [ledger.account_id(conn, ref, NOW) for ref in (CLEARING, HOT, FEES)]
            run = itertools.count()

            def via_ledger(i: int, tag: str) -> None:
                db.run_tx(lambda conn: ledger.post(conn, f"{tag}-{i}", "bench", [
                    Posting.debit(CLEARING, 100), Posting.credit(HOT, 94), Posting.credit(FEES, 6)], now=NOW))

            balances = PG_PLAIN_BALANCES if kind == "postgresql" else PLAIN_BALANCES

            def write_plain(conn, keys: list[str]) -> None:  # noqa: ANN001
                """The baseline: balances, entries, postings -- 3 statements for any number of entries."""
                n = len(keys)
                params = {}
                for k, (a, x) in enumerate(zip(ids, AMOUNTS)):
                    params[f"a{k}"], params[f"d{k}"] = a, x * n
                after = dict(conn.execute(balances, params).all())
                if n == 1:
                    entry_ids = [conn.execute(PLAIN_ENTRY, {"key": keys[0], "day": NOW.date(), "now": NOW}).scalar()]
                    statement = PLAIN_POSTINGS
                else:
                    returned = dict((key, eid) for eid, key in conn.execute(BATCH_ENTRIES, {
                        "day": NOW.date(), "now": NOW, **{f"k{j}": key for j, key in enumerate(keys)}}).all())
                    entry_ids = [returned[key] for key in keys]
                    statement = BATCH_POSTINGS
                rows = {}
                p = 0
                for j, entry_id in enumerate(entry_ids):
                    for a, x in zip(ids, AMOUNTS):  # the balance after entry j: the final one less what follows
                        rows.update({f"e{p}": entry_id, f"a{p}": a, f"x{p}": x, f"b{p}": after[a] - x * (n - 1 - j)})
                        p += 1
                conn.execute(statement, rows)

            def plain(i: int, tag: str) -> None:
                db.run_tx(lambda conn: write_plain(conn, [f"{tag}-{i}"]))

            def batch_via_ledger(i: int, tag: str) -> None:
                db.run_tx(lambda conn: ledger.post_many(conn, [NewEntry(f"{tag}-{i}-{j}", "bench", (
                    Posting.debit(CLEARING, 100), Posting.credit(HOT, 94), Posting.credit(FEES, 6)))
                    for j in range(BATCH)], now=NOW))

            def batch_plain(i: int, tag: str) -> None:
                db.run_tx(lambda conn: write_plain(conn, [f"{tag}-{i}-{j}" for j in range(BATCH)]))

            def compare(label: str, writers: int, side: callable, baseline: callable, per: int = 1) -> str:
                tag = f"r{next(run)}"
                a, b = interleave(repeats, lambda k: per * run_writers(writers, seconds, lambda i: side(i, f"{tag}l{k}")),
                                  lambda k: per * run_writers(writers, seconds, lambda i: baseline(i, f"{tag}p{k}")))
                sa, sb, sr = report(a, b)
                return (f"{kind}, {label}: "
                        f"{'post_many()' if per > 1 else 'post()'} {sa} entries/s, same-work SQL baseline {sb} "
                        f"entries/s, ratio {sr} (min/median/max of {repeats} interleaved {seconds:g} s windows)")

            for writers in (1, 8):
                lines.append(compare(f"{writers} writer{'s' if writers > 1 else ''} on one hot account, one entry "
                                     "a transaction", writers, via_ledger, plain))
                print(lines[-1], flush=True)
            lines.append(compare(f"8 writers on one hot account, {BATCH} entries a transaction", 8, batch_via_ledger,
                                 batch_plain, BATCH))
            print(lines[-1], flush=True)
            db.dispose()
        finally:
            cleanup()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each window")
    parser.add_argument("--repeats", type=int, default=5, help="pairs of interleaved windows")
    args = parser.parse_args()
    kinds = database_kinds()
    print("targets: ratio >= 0.5 with one writer; >= 1000 entries/s with 8 writers on a hot PostgreSQL account")
    for kind in kinds:
        measure(kind, args.seconds, args.repeats)


if __name__ == "__main__":
    main()
