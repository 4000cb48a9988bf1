"""Reconciliation of a WeChat Pay trade bill of ROWS lines, end to end with `paymux reconcile` (hash,
parse, load over the lookback window, hash join, write results), against a baseline doing the same
reads plus the join, in the same run, interleaved: reconcile, baseline, reconcile, baseline, ...

    .venv/bin/python bench/recon.py [--rows 2000000] [--db sqlite|postgresql|both] [--rounds 3]

The database holds the whole lookback window: the reconciled day's ROWS payments and, before it, 8
days of history at the day's size (8 x ROWS payments and attempts, succeeded on their own days), as a
gateway that has been running for a week has them. The baseline, in its own process: polars reads
the bill from disk and parses the columns the join needs (商户订单号, 应结订单金额, 手续费, 交易状态, 交易时间),
connectorx reads the same local columns (out_trade_no, status, amount, updated_at) of the same account
over the same window [day - 7 days, day + 2 days) from the same database, and polars joins them (full
join on the key). Each side runs in a fresh subprocess and its wall time, CPU time (user + system of
its threads) and peak RSS (ru_maxrss of that child alone, os.wait4 in a small launcher: see LAUNCHER)
are printed as min/median/max over the rounds, with the per-round ratios.

About 0.1% of the rows of every class are injected: statement lines we do not know (missing_local),
our successes the statement lacks (missing_channel: the day is past the carry-over window), lines the
channel has paid that are still open here (status_mismatch), other amounts, other fees, repeated
lines; the first round checks each was found with its class. The channel queries that confirm
status mismatches as late successes are deferred (`--defer-queries`): they are bounded by the
channel's query rate, not by reconciliation.

Outside the timer: making the database and the bill, and, before each reconcile round, deleting the
previous round's run, items and kept statement (so every round reconciles the day afresh rather than
returning the run already made). Inside it, for both sides: the process's start and imports.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
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

# The baseline's child imports this module too: the gateway's modules are imported where the parent
# uses them, so the baseline's process starts with polars and connectorx alone.

CHINA = ZoneInfo("Asia/Shanghai")
FEE_BPS = 60
CLASSES = ("missing_local", "missing_channel", "status_mismatch", "amount_mismatch", "fee_mismatch", "duplicate")
HISTORY_DAYS = 8
LOOKBACK_DAYS = 7      # Settings.recon_lookback_days, the default the bench's config keeps


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
    # spread over the business day, as a day's payments are (paid_at: its noon)
    first = (paid_at - timedelta(hours=12, seconds=-30)).astimezone(UTC)
    step = 86000 / max(rows, 1)

    def stamp(i: int) -> datetime:
        return first + timedelta(seconds=i * step)

    if url.startswith("sqlite"):
        path = url.split("sqlite:///", 1)[1]
        conn = sqlite3.connect(path)

        def text(i: int) -> str:
            return stamp(i).strftime("%Y-%m-%d %H:%M:%S.%f")

        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO payments (id, merchant_id, merchant_order_no, amount, currency, subject, channel_account, "
            "method, status, refunded_amount, refund_pending_amount, metadata, paid_at, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, 'CNY', 'bench', 'wx', 'native', ?, 0, 0, '{}', ?, ?, ?)",
            ((f"pay_{i:020d}", merchant_id, f"o{i}", amount_of(i), "processing" if i in open_ones else "succeeded",
              None if i in open_ones else text(i), text(i), text(i)) for i in range(rows)))
        conn.executemany(
            "INSERT INTO attempts (id, payment_id, amount, out_trade_no, channel_account, method, status, queries, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, 'wx', 'native', ?, 0, ?, ?)",
            ((f"att_{i:020d}", f"pay_{i:020d}", amount_of(i), trade_no(i), "pending" if i in open_ones else "succeeded",
              text(i), text(i)) for i in range(rows)))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")   # as a database that has been idle overnight
        conn.execute("ANALYZE")
        conn.close()
        return
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY payments (id, merchant_id, merchant_order_no, amount, currency, subject, channel_account, "
                          "method, status, refunded_amount, refund_pending_amount, metadata, paid_at, created_at, "
                          "updated_at) FROM STDIN") as copy:
                for i in range(rows):
                    opened = i in open_ones
                    iso = stamp(i).isoformat()
                    copy.write_row((f"pay_{i:020d}", merchant_id, f"o{i}", amount_of(i), "CNY", "bench", "wx", "native",
                                    "processing" if opened else "succeeded", 0, 0, "{}", None if opened else iso, iso, iso))
            with cur.copy("COPY attempts (id, payment_id, amount, out_trade_no, channel_account, method, status, "
                          "queries, created_at, updated_at) FROM STDIN") as copy:
                for i in range(rows):
                    iso = stamp(i).isoformat()
                    copy.write_row((f"att_{i:020d}", f"pay_{i:020d}", amount_of(i), trade_no(i), "wx", "native",
                                    "pending" if i in open_ones else "succeeded", 0, iso, iso))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE attempts")        # as a database that has been idle overnight:
        conn.execute("VACUUM ANALYZE payments")        # statistics current, the bulk load checkpointed
        conn.execute("CHECKPOINT")


def write_bill(path: Path, rows: int, day: date, marks: dict[str, range]) -> None:
    """The day's trade bill in WeChat Pay's format, with the differences of `marks` in it."""
    from plugins.wechatpay.simulator import BILL_HEADER

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


def write_history(url: str, rows: int, merchant_id: str, day: date, days: int) -> None:
    """`days` days before `day` at `rows` succeeded payments (and attempts) a day, created evenly over
    each day, generated by the database itself (INSERT ... SELECT over a series)."""
    n = rows * days
    if n == 0:
        return
    start = datetime.combine(day - timedelta(days=days), datetime.min.time(), CHINA).astimezone(UTC)
    step = days * 86400 / n
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.split("sqlite:///", 1)[1])
        conn.execute("PRAGMA cache_size = -2000000")   # the indexes' pages in memory while they grow
        conn.execute("PRAGMA synchronous = OFF")        # a bench's preparation, not a merchant's money
        series = "WITH RECURSIVE s(g) AS (SELECT 0 UNION ALL SELECT g + 1 FROM s WHERE g < ?) "
        stamp = "datetime(? + g * ?, 'unixepoch') || '.000000'"
        conn.execute("BEGIN")
        conn.execute(series + "INSERT INTO payments (id, merchant_id, merchant_order_no, amount, currency, subject, "
                     "channel_account, method, status, refunded_amount, refund_pending_amount, metadata, paid_at, "
                     "created_at, updated_at) SELECT printf('pay_h%016d', g), ?, printf('h%016d', g), "
                     "100 + (g * 7919) % 500000, 'CNY', 'bench', 'wx', 'native', 'succeeded', 0, 0, '{}', "
                     f"{stamp}, {stamp}, {stamp} FROM s",
                     (n - 1, merchant_id, *(start.timestamp(), step) * 3))
        conn.execute(series + "INSERT INTO attempts (id, payment_id, amount, out_trade_no, channel_account, method, "
                     "status, queries, created_at, updated_at) SELECT printf('att_h%016d', g), "
                     "printf('pay_h%016d', g), 100 + (g * 7919) % 500000, printf('BH%026d', g), 'wx', 'native', "
                     f"'succeeded', 0, {stamp}, {stamp} FROM s", (n - 1, *(start.timestamp(), step) * 2))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("ANALYZE")
        conn.close()
        return
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        at = "%(start)s::timestamptz + g * %(step)s * interval '1 second'"
        values = {"n": n - 1, "start": start, "step": step, "merchant": merchant_id}
        conn.execute("INSERT INTO payments (id, merchant_id, merchant_order_no, amount, currency, subject, "
                     "channel_account, method, status, refunded_amount, refund_pending_amount, metadata, paid_at, "
                     "created_at, updated_at) SELECT 'pay_h' || lpad(g::text, 16, '0'), %(merchant)s, "
                     "'h' || lpad(g::text, 16, '0'), 100 + (g * 7919) %% 500000, 'CNY', 'bench', 'wx', 'native', "
                     "'succeeded', 0, 0, '{}', "
                     f"{at}, {at}, {at} FROM generate_series(0::bigint, %(n)s) g", values)
        conn.execute("INSERT INTO attempts (id, payment_id, amount, out_trade_no, channel_account, method, status, "
                     "queries, created_at, updated_at) SELECT 'att_h' || lpad(g::text, 16, '0'), "
                     "'pay_h' || lpad(g::text, 16, '0'), 100 + (g * 7919) %% 500000, 'BH' || lpad(g::text, 26, '0'), "
                     f"'wx', 'native', 'succeeded', 0, {at}, {at} FROM generate_series(0::bigint, %(n)s) g", values)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE attempts")
        conn.execute("VACUUM ANALYZE payments")
        conn.execute("CHECKPOINT")


def config(workdir: Path, url: str) -> Path:
    from bench.api_create import SECRET_KEY
    from plugins.wechatpay import wire

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


def window(day: date) -> tuple[datetime, datetime]:
    """The lookback window reconcile loads: [day - LOOKBACK_DAYS, day + 2) in the business day's zone."""
    start = datetime.combine(day, datetime.min.time(), CHINA)
    return (start - timedelta(days=LOOKBACK_DAYS)).astimezone(UTC), (start + timedelta(days=2)).astimezone(UTC)


def baseline(bill: Path, url: str, day: date) -> None:
    """The baseline's child: the same reads and the join, nothing else; prints the joined height."""
    import connectorx

    header = bill.open("rb").readline().decode("utf-8").rstrip("\r\n").split(",")
    wanted = {"商户订单号": "key", "应结订单金额": "amount", "手续费": "fee", "交易状态": "status", "交易时间": "time"}
    fields = {f"f{i}": pl.String for i in range(len(header) + 1)}
    statement = pl.scan_csv(bill, has_header=False, separator="`", quote_char=None, skip_rows=1, schema=fields,
                            truncate_ragged_lines=True).select(
        **{alias: pl.col(f"f{header.index(name) + 1}").str.strip_suffix(",") for name, alias in wanted.items()}
    ).filter(pl.col("key").is_not_null()).with_columns(
        amount=pl.col("amount").str.replace(".", "", literal=True).cast(pl.Int64, strict=False),
        fee=pl.col("fee").str.replace(".", "", literal=True).cast(pl.Int64, strict=False)).collect(engine="streaming")
    since, until = window(day)
    sqlite = url.startswith("sqlite")
    at = "substr(updated_at, 1, 19)" if sqlite else "updated_at"
    stamp = (lambda t: t.strftime("%Y-%m-%d %H:%M:%S")) if sqlite else (lambda t: t.isoformat())
    source = "sqlite://" + url.split("sqlite:///", 1)[1] if sqlite else url.replace("postgresql+psycopg", "postgresql")
    local = connectorx.read_sql(source,
                                f"SELECT out_trade_no AS key, status, amount, {at} AS at FROM attempts "
                                f"WHERE channel_account = 'wx' AND created_at >= '{stamp(since)}' "
                                f"AND created_at < '{stamp(until)}'", return_type="polars")
    joined = statement.join(local, on="key", how="full", coalesce=True)
    print(json.dumps({"statement": statement.height, "local": local.height, "joined": joined.height}))


# Runs one side and reports its own figures. A process's peak RSS (ru_maxrss) starts from the peak of
# the process it was forked from (Linux records the old memory's high-water mark at exec), so the sides
# are not started from this bench, whose preparation is large: each from this small launcher, itself
# started from the bench, whose own small memory is all a side inherits.
LAUNCHER = """
import json, os, subprocess, sys, time
with open(sys.argv[1], "wb") as out, open(sys.argv[2], "wb") as err:
    started = time.perf_counter()
    proc = subprocess.Popen(sys.argv[3:], stdout=out, stderr=err)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kib": usage.ru_maxrss,
                  "code": os.waitstatus_to_exitcode(status)}))
"""


def child(cmd: list[str], cwd: Path) -> tuple[float, float, float, str]:
    """Run cmd in a fresh process: (its wall seconds, its own CPU seconds (user + system, all its
    threads), its own peak RSS in GiB, its stdout)."""
    out, err = cwd / "side.out", cwd / "side.err"
    done = subprocess.run([sys.executable, "-c", LAUNCHER, str(out), str(err), *cmd], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    figures = json.loads(done.stdout)
    if figures["code"] != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{out.read_text()[-2000:]}\n{err.read_text()[-4000:]}")
    return figures["seconds"], figures["cpu"], figures["maxrss_kib"] / 2**20, out.read_text()      # KiB -> GiB


def reset(url: str, workdir: Path) -> None:
    """The previous round's run, items and kept statement gone (outside the timer)."""
    from gateway import db as dbmod

    shutil.rmtree(workdir / "statements", ignore_errors=True)
    database = dbmod.Database(url)
    with database.transaction() as conn:
        for table in ("recon_proposals", "recon_items", "recon_runs"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    database.dispose()


def measure(kind: str, rows: int, rounds: int, keep: Path | None = None, history: int = HISTORY_DAYS) -> None:
    from bench.api_create import bench_database, prepare_database
    from bench.windows import report

    with tempfile.TemporaryDirectory() as tmp:
        workdir = keep or Path(tmp)
        url, cleanup = prepare_database(kind, workdir)
        try:
            creds = bench_database(url)
            day = datetime.now(CHINA).date() - timedelta(days=5)
            marks = plan(rows)
            prepared = time.perf_counter()
            write_history(url, rows, creds.merchant_id, day, history)
            write_local(url, rows, creds.merchant_id, datetime.combine(day, datetime.min.time(), CHINA)
                        + timedelta(hours=12), marks)
            bill = workdir / "tradebill.csv"
            write_bill(bill, rows, day, marks)
            print(f"{kind}: {rows:,} payments on the day, {rows * history:,} in the {history} days before "
                  f"it, a {bill.stat().st_size / 2**20:.0f} MiB bill: prepared in "
                  f"{time.perf_counter() - prepared:.0f} s (not timed)", flush=True)
            reconcile = [sys.executable, "-m", "gateway.cli", "--config", str(config(workdir, url)), "reconcile",
                         "--account", "wx", "--date", day.isoformat(), "--file", str(bill), "--json",
                         "--defer-queries"]
            base = [sys.executable, str(Path(__file__).resolve()), "--baseline-of", str(bill), url, day.isoformat()]
            times: tuple[list[float], list[float]] = ([], [])
            peaks: tuple[list[float], list[float]] = ([], [])
            cpus: tuple[list[float], list[float]] = ([], [])
            verdict, joined = "", {}
            for k in range(rounds):
                reset(url, workdir)
                seconds, cpu, peak, out = child(reconcile, workdir)
                times[0].append(seconds)
                cpus[0].append(cpu)
                peaks[0].append(peak)
                if k == 0:
                    found_report = json.loads(out.strip().splitlines()[-1])
                    expected = {name: len(r) for name, r in marks.items()}
                    found = {name: found_report["counts"][name] for name in CLASSES}
                    verdict = "every injected difference found with its class" if found == expected else \
                        f"MISMATCH: injected {expected}, found {found}"
                seconds, cpu, peak, out = child(base, workdir)
                times[1].append(seconds)
                cpus[1].append(cpu)
                peaks[1].append(peak)
                joined = json.loads(out.strip().splitlines()[-1])
            t_rec, t_base, ratio = report(times[0], times[1], "{:.1f}", "{:.2f}")
            m_rec, m_base, _ = report(peaks[0], peaks[1], "{:.2f}")
            c_rec, c_base, c_ratio = report(cpus[0], cpus[1], "{:.1f}", "{:.2f}")
            print(f"{kind}: reconcile {rows:,} lines, {rounds} rounds (min/median/max): {t_rec} s, peak RSS {m_rec} GiB"
                  f"\n{kind}: baseline (same reads + join; {joined['local']:,} local rows read): {t_base} s, "
                  f"peak RSS {m_base} GiB\n{kind}: ratio reconcile/baseline {ratio}; {verdict}"
                  f"\n{kind}: CPU of each process itself (its threads, not the database server's): reconcile "
                  f"{c_rec} s, baseline {c_base} s, ratio {c_ratio}", flush=True)
        finally:
            if keep is None:
                cleanup()


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--baseline-of":
        baseline(Path(sys.argv[2]), sys.argv[3], date.fromisoformat(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of reconcile and baseline")
    parser.add_argument("--keep", type=Path, help="prepare in this directory and leave it there (to profile)")
    parser.add_argument("--history-days", type=int, default=HISTORY_DAYS,
                        help="days of history before the day (fewer only to save preparation time; say so)")
    args = parser.parse_args()
    from bench.api_create import database_kinds

    kinds = database_kinds() if args.db == "both" else [args.db]
    for kind in kinds:
        if args.keep:
            (args.keep / kind).mkdir(parents=True, exist_ok=True)
        measure(kind, args.rows, args.rounds, args.keep / kind if args.keep else None, args.history_days)


if __name__ == "__main__":
    main()
