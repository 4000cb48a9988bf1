"""Ledger posting throughput: entries of 3 postings through Ledger.post() (idempotency key, balance
updates with overdraw guards, balance-after, and on PostgreSQL the deferred balance trigger) against,
in the same run and database, plain SQL INSERTs of the same entry and posting rows: one transaction
per entry with one writer and with 8 writers all crediting one hot merchant account, then 8 writers
with 50 entries a transaction (post_many(), the hot-account batching the domain notes describe).

    .venv/bin/python bench/ledger_post.py [--seconds 3]

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
PLAIN_POSTING = text("INSERT INTO ledger_postings (entry_id, account_id, currency, amount, balance_after) "
                     "VALUES (:entry_id, :account_id, 'CNY', :amount, 0)")


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


def measure(kind: str, seconds: float) -> list[str]:
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

            def plain(i: int, tag: str) -> None:
                def write(conn) -> None:  # noqa: ANN001
                    entry_id = conn.execute(PLAIN_ENTRY, {"key": f"{tag}-{i}", "day": NOW.date(), "now": NOW}).scalar()
                    conn.execute(PLAIN_POSTING, [{"entry_id": entry_id, "account_id": a, "amount": x}
                                                 for a, x in zip(ids, (100, -94, -6))])
                db.run_tx(write)

            def batch_via_ledger(i: int, tag: str) -> None:
                db.run_tx(lambda conn: ledger.post_many(conn, [NewEntry(f"{tag}-{i}-{j}", "bench", (
                    Posting.debit(CLEARING, 100), Posting.credit(HOT, 94), Posting.credit(FEES, 6)))
                    for j in range(BATCH)], now=NOW))

            def batch_plain(i: int, tag: str) -> None:
                def write(conn) -> None:  # noqa: ANN001
                    for j in range(BATCH):
                        entry_id = conn.execute(PLAIN_ENTRY, {"key": f"{tag}-{i}-{j}", "day": NOW.date(),
                                                              "now": NOW}).scalar()
                        conn.execute(PLAIN_POSTING, [{"entry_id": entry_id, "account_id": a, "amount": x}
                                                     for a, x in zip(ids, (100, -94, -6))])
                db.run_tx(write)

            for writers in (1, 8):
                tag = f"r{next(run)}"
                posted = run_writers(writers, seconds, lambda i: via_ledger(i, tag + "l"))
                baseline = run_writers(writers, seconds, lambda i: plain(i, tag + "p"))
                lines.append(f"{kind}, {writers} writer{'s' if writers > 1 else ''} on one hot account, "
                             f"one entry a transaction: post() {posted:.0f} entries/s, plain INSERTs "
                             f"{baseline:.0f} entries/s, ratio {posted / baseline:.2f}")
            tag = f"r{next(run)}"
            posted = BATCH * run_writers(8, seconds, lambda i: batch_via_ledger(i, tag + "l"))
            baseline = BATCH * run_writers(8, seconds, lambda i: batch_plain(i, tag + "p"))
            lines.append(f"{kind}, 8 writers on one hot account, {BATCH} entries a transaction: post_many() "
                         f"{posted:.0f} entries/s, plain INSERTs {baseline:.0f} entries/s, "
                         f"ratio {posted / baseline:.2f}")
            db.dispose()
        finally:
            cleanup()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    kinds = database_kinds()
    print("targets: ratio >= 0.5 with one writer; >= 1000 entries/s with 8 writers on a hot PostgreSQL account")
    for kind in kinds:
        for line in measure(kind, args.seconds):
            print(line, flush=True)


if __name__ == "__main__":
    main()
