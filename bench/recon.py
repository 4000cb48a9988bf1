"""Reconciliation of a WeChat Pay trade bill of ROWS lines against as many local payments, end to end
with `paymux reconcile` (parse, bulk load, hash join, write results), against, in the same run, a bare
polars join of the same two data sets (the floor). Prints both, the ratio, peak memory, and whether
every injected difference was found with the right class.

    .venv/bin/python bench/recon.py [--rows 2000000] [--db sqlite|postgresql|both]

About 0.1% of the rows of every class are injected: statement lines we do not know (missing_local),
our successes the statement lacks (missing_channel: the day is past the carry-over window), lines the
channel has paid that are still open here (status_mismatch), other amounts, other fees, repeated
lines. The channel queries that confirm status mismatches as late successes are deferred
(`--defer-queries`): they are bounded by the channel's query rate, not by reconciliation.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.api_create import SECRET_KEY, bench_database, database_kinds, prepare_database  # noqa: E402
from gateway import db as dbmod  # noqa: E402
from plugins.wechatpay import wire  # noqa: E402
from plugins.wechatpay.simulator import BILL_HEADER  # noqa: E402

CHINA = ZoneInfo("Asia/Shanghai")
FEE_BPS = 60
CLASSES = ("missing_local", "missing_channel", "status_mismatch", "amount_mismatch", "fee_mismatch", "duplicate")


def plan(rows: int) -> dict[str, range]:
    """Which local payment numbers carry which difference (0.1% of the rows each)."""
    k = max(1, rows // 1000)
    return {name: range(i * k, (i + 1) * k) for i, name in enumerate(CLASSES) if name != "missing_local"} | {
        "missing_local": range(rows, rows + k)}


def amount_of(i: int) -> int:
    return 100 + (i * 7919) % 500000


def trade_no(i: int) -> str:
    return f"BT{i:026d}"


def write_local(url: str, rows: int, merchant_id: str, paid_at: datetime, marks: dict[str, range]) -> None:
    """Payments and attempts straight into the tables, the fastest way each database takes them."""
    open_ones = set(marks["status_mismatch"])
    stamp = paid_at.astimezone(UTC)
    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[1]
        conn = sqlite3.connect(path)
        text = stamp.strftime("%Y-%m-%d %H:%M:%S.%f")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO payments (id, merchant_id, merchant_order_no, amount, currency, subject, channel_account, "
            "method, status, refunded_amount, refund_pending_amount, metadata, paid_at, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, 'CNY', 'bench', 'wx', 'native', ?, 0, 0, '{}', ?, ?, ?)",
            ((f"pay_{i:020d}", merchant_id, f"o{i}", amount_of(i), "processing" if i in open_ones else "succeeded",
              None if i in open_ones else text, text, text) for i in range(rows)))
        conn.executemany(
            "INSERT INTO attempts (id, payment_id, amount, out_trade_no, channel_account, method, status, queries, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, 'wx', 'native', ?, 0, ?, ?)",
            ((f"att_{i:020d}", f"pay_{i:020d}", amount_of(i), trade_no(i), "pending" if i in open_ones else "succeeded",
              text, text) for i in range(rows)))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")   # as a database that has been idle overnight
        conn.execute("ANALYZE")
        conn.close()
        return
    import psycopg

    iso = stamp.isoformat()
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY payments (id, merchant_id, merchant_order_no, amount, currency, subject, channel_account, "
                          "method, status, refunded_amount, refund_pending_amount, metadata, paid_at, created_at, "
                          "updated_at) FROM STDIN") as copy:
                for i in range(rows):
                    opened = i in open_ones
                    copy.write_row((f"pay_{i:020d}", merchant_id, f"o{i}", amount_of(i), "CNY", "bench", "wx", "native",
                                    "processing" if opened else "succeeded", 0, 0, "{}", None if opened else iso, iso, iso))
            with cur.copy("COPY attempts (id, payment_id, amount, out_trade_no, channel_account, method, status, "
                          "queries, created_at, updated_at) FROM STDIN") as copy:
                for i in range(rows):
                    copy.write_row((f"att_{i:020d}", f"pay_{i:020d}", amount_of(i), trade_no(i), "wx", "native",
                                    "pending" if i in open_ones else "succeeded", 0, iso, iso))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE attempts")        # as a database that has been idle overnight:
        conn.execute("VACUUM ANALYZE payments")        # statistics current, the bulk load checkpointed
        conn.execute("CHECKPOINT")


def write_bill(path: Path, rows: int, day: date, marks: dict[str, range]) -> None:
    """The day's trade bill in WeChat Pay's format, with the differences of `marks` in it."""
    absent, amount_off = set(marks["missing_channel"]), set(marks["amount_mismatch"])
    fee_off, twice = set(marks["fee_mismatch"]), set(marks["duplicate"])
    when = f"`{day.isoformat()} 12:00:00"
    paid_total, count = 0, 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(",".join(BILL_HEADER) + "\r\n")
        for i in list(range(rows)) + list(marks["missing_local"]):
            if i in absent:
                continue
            fen = amount_of(i) + (1 if i in amount_off else 0)
            fee = (fen * FEE_BPS + 5) // 10 + (70000 if i in fee_off else 0)   # 1/1000 fen
            line = (f"{when},`wx8888888888888888,`1900000109,`0,`,`42{i:026d},`{trade_no(i)},`oUpF8uMuAJO,`NATIVE,"
                    f"`SUCCESS,`OTHERS,`CNY,`{fen // 100}.{fen % 100:02d},`0.00,`0,`0,`0.00,`0.00,`,`,`bench,`,"
                    f"`{fee // 100000}.{fee % 100000:05d},`0.60%,`{fen // 100}.{fen % 100:02d},`0.00,`\r\n")
            for _ in range(2 if i in twice else 1):
                out.write(line)
                paid_total += fen
                count += 1
        out.write("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n")
        paid = f"{paid_total // 100}.{paid_total % 100:02d}"   # 应结订单总金额 and 订单总金额: no coupons here
        out.write(f"`{count},`{paid},`0.00,`0.00,`0.00000,`{paid},`0.00\r\n")


def floor_join(bill: Path, url: str) -> float:
    """The same two data sets, already in memory, joined by key: the least any reconciliation does."""
    import connectorx

    statement = pl.read_csv(bill, columns=["商户订单号", "应结订单金额"], infer_schema=False).filter(
        pl.col("商户订单号").is_not_null())
    statement = statement.select(key=pl.col("商户订单号").str.strip_prefix("`"),
                                 amount=pl.col("应结订单金额").str.strip_prefix("`"))
    local = connectorx.read_sql(dbmod.Database(url).connectorx_url, "SELECT out_trade_no AS key, amount FROM attempts",
                                return_type="polars")
    started = time.perf_counter()
    joined = statement.join(local, on="key", how="full", coalesce=True)
    joined.height  # noqa: B018
    return time.perf_counter() - started


def config(workdir: Path, url: str) -> Path:
    key = wire.new_key()
    platform = wire.new_key()
    (workdir / "merchant.pem").write_text(wire.private_pem(key))
    (workdir / "platform.pem").write_text(wire.public_pem(platform.public_key()))
    path = workdir / "paymux.toml"
    path.write_text(f'secret_key = "{SECRET_KEY}"\nstatement_dir = "{workdir / "statements"}"\nlog_json = true\n'
                    f'[database]\nurl = "{url}"\n[[channel_accounts]]\nid = "wx"\nplugin = "wechatpay"\n'
                    f'fee_bps = {FEE_BPS}\n[channel_accounts.settings]\nmchid = "1900000109"\n'
                    f'appid = "wx8888888888888888"\nmerchant_serial_no = "BENCH"\n'
                    f'merchant_private_key = "file:{workdir}/merchant.pem"\napiv3_key = "0123456789abcdef0123456789ABCDEF"\n'
                    f'platform_public_key = "file:{workdir}/platform.pem"\nplatform_public_key_id = "PUB_KEY_ID_BENCH"\n'
                    f'base_url = "http://127.0.0.1:9"\n')
    return path


def measure(kind: str, rows: int, keep: Path | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = keep or Path(tmp)
        url, cleanup = prepare_database(kind, workdir)
        try:
            creds = bench_database(url)
            day = datetime.now(CHINA).date() - timedelta(days=5)
            marks = plan(rows)
            prepared = time.perf_counter()
            write_local(url, rows, creds.merchant_id, datetime.combine(day, datetime.min.time(), CHINA)
                        + timedelta(hours=12), marks)
            bill = workdir / "tradebill.csv"
            write_bill(bill, rows, day, marks)
            print(f"{kind}: {rows:,} local payments and a {bill.stat().st_size / 2**20:.0f} MiB bill prepared in "
                  f"{time.perf_counter() - prepared:.0f} s (not timed)", flush=True)
            cmd = [sys.executable, "-m", "gateway.cli", "--config", str(config(workdir, url)), "reconcile",
                   "--account", "wx", "--date", day.isoformat(), "--file", str(bill), "--json", "--defer-queries"]
            started = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir,
                                  env={**os.environ, "PYTHONPATH": str(REPO)})
            seconds = time.perf_counter() - started
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20   # KiB -> GiB
            if done.returncode != 0:
                raise SystemExit(f"reconcile failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
            report = json.loads(done.stdout.strip().splitlines()[-1])
            floor = floor_join(bill, url)
            expected = {name: len(r) for name, r in marks.items()}
            found = {name: report["counts"][name] for name in CLASSES}
            verdict = "every injected difference found with its class" if found == expected else \
                f"MISMATCH: injected {expected}, found {found}"
            print(f"{kind}: reconcile {report['statement_rows']:,} lines end to end {seconds:.1f} s "
                  f"(target <= 15 s), bare polars join of the same data {floor:.2f} s, ratio {seconds / floor:.0f}x; "
                  f"peak RSS {peak:.2f} GiB (target <= 2); matched {report['counts']['matched']:,}; {verdict}")
        finally:
            if keep is None:
                cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--keep", type=Path, help="prepare in this directory and leave it there (to profile)")
    args = parser.parse_args()
    kinds = database_kinds() if args.db == "both" else [args.db]
    for kind in kinds:
        if args.keep:
            (args.keep / kind).mkdir(parents=True, exist_ok=True)
        measure(kind, args.rows, args.keep / kind if args.keep else None)


if __name__ == "__main__":
    main()
