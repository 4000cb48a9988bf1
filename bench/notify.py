"""Verified WeChat Pay success callbacks per second through `paymux serve --workers N` (1, 2 and 4
processes; signature check, AES-GCM decrypt, state change, ledger entry, outbox event, callback record;
over HTTP), against, in the same run and on the same database, the essential callback transaction done
by a plain SQLAlchemy-core loop with the same concurrency (one connection per worker thread, prebuilt
text statements, one transaction each):

  - the payment's conditional UPDATE (status processing -> succeeded, channel transaction id, fee,
    paid_at) RETURNING what the entry needs,
  - one balanced entry: its ledger_entries row and its postings (on the same accounts, with the same
    amounts, as the gateway's own success entries for that merchant) in one multi-row INSERT,
  - the merchant's balance row updated (UPDATE ... RETURNING the balance for balance_after); the
    platform's balance rows are not touched, as the essential work does not need them,
  - one merchant_events (outbox) INSERT and one channel_callbacks INSERT.

16 merchants (--merchants): the gateway's callbacks and the baseline's transactions go to them in turn.
The database holds history first (--history payments spread over the last 7 days and the merchants, each
with its attempt, success entry and postings, outbox event and callback record: copies of real rows the
gateway wrote, made by bulk INSERT ... SELECT), so indexes and tables are not those of an empty
database. The history's postings do not move balances (`paymux ledger check` would object: it is a bench
database), and on PostgreSQL it is written with triggers off (session_replication_role = replica: the
deferred check of each entry at commit takes minutes for 50,000 entries).

On SQLite the baseline's workers take one process-wide lock around each transaction (SQLite has one
writer; the gateway serializes its writers the same way, and its processes meet SQLite's busy wait).
Measured on SQLite always, and on PostgreSQL when PAYMUX_TEST_DATABASE_URL (or
PAYMUX_BENCH_DATABASE_URL) is set.

The gateway (1, 2 and 4 processes, each started afresh before its window, warmed up with
--warm-per-merchant callbacks per merchant, so that its pool's connections are open and have prepared
their statements, and stopped after it: idle gateways' pools would hold PostgreSQL's connections) and the
baseline run in interleaved windows (1, 2, 4, baseline, 1, 2, 4, baseline, ...; --repeats rounds; a
gateway window applies --per-window callbacks, a baseline window --per-window x --baseline-factor). The
bench prints min/median/max of each rate, of each gateway's ratio to the baseline of its round, and of 2
and 4 processes against 1 in the round. Every payment a window pays is a copy (new id, order number and
out_trade_no) of one API-created processing payment of its merchant and its attempt, inserted directly,
with its next query a day away (so no janitor queries the simulator meanwhile).

For each gateway window the bench also prints the CPU each side spent per callback (median over the
windows), read from /proc before and after the window: the gateway's processes (the one started and its
children), every PostgreSQL process on the machine (by command name: on a machine running other
PostgreSQL work this counts it too), and this process itself (its HTTP client; the simulator's thread
is idle meanwhile), with how busy that left the machine's cores.

Outside the timer: creating and migrating the database, the merchants, starting and stopping the
gateways and the channel simulator, the history, copying every payment, signing and encrypting every
callback body, a first warm-up of --concurrency callbacks (which also creates the ledger accounts the
baseline then posts to) and each gateway's own, opening the baseline's connections. Inside: for the
gateway, the HTTP round trip and all its work; for the baseline, the database transaction only (no
verification or decryption, which cost ~0.03 ms).

On PostgreSQL, when pgbench is installed, the same transaction also runs once as a pgbench custom script
(-f; the same statements, with a sequence picking the payment and its merchant in turn, the merchant's
balance row found by a subquery on a 16-row table; -c --concurrency -j 2), after the windows, on more
copies: not interleaved, printed for reference as the database's own rate without Python in the loop.

With --soak K, after the rounds, one gateway process serves K windows one after another without being
restarted (its database connections live on, as a deployed gateway's do): each window's rate is printed,
and the last against the first. A cost that grows with a connection's age shows as a falling rate, which
the rounds above, each on a fresh gateway, cannot show (migration 0029 removed one such cost).

    .venv/bin/python bench/notify.py [--per-window 128] [--repeats 3] [--concurrency 16] [--history 50000]
                                     [--soak 8]

"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import Connection, DateTime, Integer, MetaData, Table, create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.api_create import SECRET_KEY, database_kinds, free_port, prepare_database, start  # noqa: E402
from bench.windows import POSTGRES, cpu_by_group, cpu_delta, mmm  # noqa: E402
from gateway import db as dbmod  # noqa: E402
from gateway.client import Client  # noqa: E402
from gateway.clock import Clock  # noqa: E402
from gateway.merchants import create_merchant  # noqa: E402
from gateway.secretbox import SecretBox  # noqa: E402
from plugins.wechatpay import wire  # noqa: E402
from plugins.wechatpay.simulator import WechatPaySimulator  # noqa: E402

MCHID, APPID, SERIAL, APIV3 = "1900000109", "wx8888888888888888", "BENCH_SERIAL", "0123456789abcdef0123456789ABCDEF"
PROCESSES = (1, 2, 4)   # --processes chooses others
WEEK_SECONDS = 7 * 24 * 3600

PAY = text("UPDATE payments SET status = 'succeeded', channel_transaction_id = :tx, fee_amount = :fee, paid_at = :now, "
           "updated_at = :now WHERE id = :id AND status = 'processing' RETURNING merchant_id, amount")
ENTRY = text("INSERT INTO ledger_entries (key, event_type, business_date, reference, postings_hash, created_at) "
             "VALUES (:key, 'payment.succeeded', :day, :ref, :hash, :now) RETURNING id")
MERCHANT_BALANCE = text("UPDATE ledger_accounts SET balance = balance + :d WHERE id = :id RETURNING balance")
EVENT = text("INSERT INTO merchant_events (id, merchant_id, type, resource_id, payload, notify_url, status, attempts, "
             "created_at) VALUES (:id, :merchant, 'payment.succeeded', :resource, :payload, NULL, 'no_endpoint', 0, :now)")
CALLBACK = text("INSERT INTO channel_callbacks (channel_account, received_at, verified, outcome, reference, body) "
                "VALUES ('wx', :now, true, 'applied', :ref, :body)")


def postings_statement(n: int):  # noqa: ANN201
    rows = ", ".join(f"(:e, :a{k}, 'CNY', :x{k}, :b{k})" for k in range(n))
    return text(f"INSERT INTO ledger_postings (entry_id, account_id, currency, amount, balance_after) VALUES {rows}")


# ---- rows made in bulk: history and the payments the windows pay ----

def copy_rows(conn: Connection, table: Table, where: str, params: dict, n: int, replaced: dict[str, str],
              spread_seconds: float = 0.0) -> None:
    """n copies of the rows of `table` matching `where` (on alias src), in one INSERT ... SELECT over a
    recursive series g(n) (SQLite and PostgreSQL alike): an integer primary key is left to the database,
    `replaced` columns take the given SQL, timestamps move back by g.n x spread_seconds, the rest is copied."""
    sqlite = conn.dialect.name == "sqlite"
    columns, values = [], []
    step = spread_seconds
    for column in table.columns:
        if column.primary_key and isinstance(column.type, Integer):
            continue
        columns.append(column.name)
        if column.name in replaced:   # literal text: a colon in it is no bind parameter
            values.append(replaced[column.name].replace(":", "\\:"))
        elif isinstance(column.type, DateTime) and step:
            values.append(f"strftime('%Y-%m-%d %H:%M:%f', src.{column.name}, '-' || (g.n * {step}) || ' seconds') "
                          f"|| '000'" if sqlite else f"src.{column.name} - (g.n * {step}) * interval '1 second'")
        else:
            values.append(f"src.{column.name}")
    conn.execute(text(f"INSERT INTO {table.name} ({', '.join(columns)}) WITH RECURSIVE g(n) AS "
                      f"(SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {n}) SELECT {', '.join(values)} "
                      f"FROM {table.name} AS src, g WHERE {where}"), params)


class Rows:
    """The tables the bench copies rows of, reflected from the migrated database."""

    def __init__(self, conn: Connection) -> None:
        meta = MetaData()
        for name in ("payments", "attempts", "ledger_entries", "ledger_postings", "merchant_events",
                     "channel_callbacks"):
            setattr(self, name, Table(name, meta, autoload_with=conn))

    def history(self, conn: Connection, k: int, paid: str, n: int) -> None:
        """n succeeded payments of merchant k over the last week, copies of `paid` and of its rows."""
        pay = f"'pay_h{k}_' || g.n"
        spread = round(WEEK_SECONDS / n, 3)
        copy_rows(conn, self.payments, "src.id = :p", {"p": paid}, n,
                  {"id": pay, "merchant_order_no": f"'h{k}_' || g.n", "channel_transaction_id": f"'42h{k}_' || g.n"},
                  spread)
        copy_rows(conn, self.attempts, "src.payment_id = :p", {"p": paid}, n,
                  {"id": f"'att_h{k}_' || g.n", "payment_id": pay, "out_trade_no": f"'h{k}_' || g.n",
                   "channel_transaction_id": f"'42h{k}_' || g.n"}, spread)
        entry = conn.execute(text("SELECT max(id) FROM ledger_entries WHERE key LIKE :p OR reference LIKE :p"),
                             {"p": f"%{paid}%"}).scalar_one()
        copy_rows(conn, self.ledger_entries, "src.id = :e", {"e": entry}, n,
                  {"key": f"'payment:pay_h{k}_' || g.n || ':succeeded'", "reference": f"'payment:' || {pay}"}, spread)
        posting_columns = [c.name for c in self.ledger_postings.columns if c.name not in ("id", "entry_id")]
        conn.execute(text(f"INSERT INTO ledger_postings (entry_id, {', '.join(posting_columns)}) SELECT e.id, "
                          f"{', '.join('p.' + c for c in posting_columns)} FROM ledger_entries e, ledger_postings p "
                          f"WHERE e.key LIKE :k ESCAPE '!' AND p.entry_id = :e"),
                     {"k": f"payment:pay!_h{k}!_%", "e": entry})
        copy_rows(conn, self.merchant_events, "src.resource_id = :p", {"p": paid}, n,
                  {"id": f"'evt_h{k}_' || g.n", "resource_id": pay}, spread)
        out_trade_no = conn.execute(text("SELECT out_trade_no FROM attempts WHERE payment_id = :p"),
                                    {"p": paid}).scalar()
        copy_rows(conn, self.channel_callbacks, "src.reference = :r", {"r": out_trade_no}, n,
                  {"reference": f"'h{k}_' || g.n"}, spread)

    def open_payments(self, conn: Connection, k: int, template: str, tag: str, n: int) -> list[tuple[str, str, int]]:
        """n processing copies of merchant k's template payment and its attempt: (payment id, out_trade_no, amount)."""
        pay = f"'pay_{tag}_' || g.n"
        copy_rows(conn, self.payments, "src.id = :p", {"p": template}, n,
                  {"id": pay, "merchant_order_no": f"'{tag}_' || g.n"})
        copy_rows(conn, self.attempts, "src.payment_id = :p", {"p": template}, n,
                  {"id": f"'att_{tag}_' || g.n", "payment_id": pay, "out_trade_no": f"'{tag}_' || g.n",
                   "next_query_at": ("strftime('%Y-%m-%d %H:%M:%f', 'now', '+1 day') || '000'"
                                     if conn.dialect.name == "sqlite" else "now() + interval '1 day'")})
        amount = conn.execute(text("SELECT amount FROM payments WHERE id = :p"), {"p": template}).scalar_one()
        return [(f"pay_{tag}_{i}", f"{tag}_{i}", amount) for i in range(1, n + 1)]


# ---- the two sides ----

def client_run(coroutine: Any) -> Any:
    """The load generator's event loop: uvloop, as the gateway's. Its CPU is taken from the two cores the
    gateway and PostgreSQL share (printed as "bench client"); on asyncio's own loop it took ~0.5 ms a
    callback, a tenth of all the machine did for one."""
    try:
        import uvloop
    except ImportError:   # Windows, PyPy: asyncio's loop
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


async def post_callbacks(url: str, callbacks: list[tuple[bytes, dict]], concurrency: int) -> float:
    """POST every callback from `concurrency` keep-alive connections; accepted callbacks per second."""
    queue = list(callbacks)
    ok = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok
        while queue:
            body, headers = queue.pop()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                ok += response.status == 204
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    if ok != len(callbacks):
        print(f"  ({len(callbacks) - ok} callbacks were not accepted)", file=sys.stderr)
    return ok / elapsed


class Baseline:
    """The essential callback transaction, from `concurrency` threads with one connection each; each
    payment's merchant gets its own postings (those of the gateway's last success entry for it)."""

    def __init__(self, url: str, kind: str, concurrency: int, merchants: list[str]) -> None:
        self.engine = create_engine(dbmod.normalize_url(url), pool_size=concurrency, max_overflow=0)
        self.lock = threading.Lock() if kind == "sqlite" else None
        self.concurrency = concurrency
        self.postings: dict[str, list] = {}
        with self.engine.connect() as conn:
            for merchant in merchants:
                entry = conn.execute(text(
                    "SELECT max(e.id) FROM ledger_entries e JOIN ledger_postings p ON p.entry_id = e.id JOIN "
                    "ledger_accounts a ON a.id = p.account_id WHERE a.owner_type = 'merchant' AND a.owner_id = :m "
                    "AND e.event_type = 'payment.succeeded'"), {"m": merchant}).scalar_one()
                self.postings[merchant] = conn.execute(text(
                    "SELECT p.account_id, p.amount, a.owner_type FROM ledger_postings p JOIN ledger_accounts a "
                    "ON a.id = p.account_id WHERE p.entry_id = :e ORDER BY p.id"), {"e": entry}).all()
        self.statements = {n: postings_statement(n) for n in {len(p) for p in self.postings.values()}}
        conns = [self.engine.connect() for _ in range(concurrency)]  # open the pool before any window
        for conn in conns:
            conn.close()

    def merchant_posting(self, merchant: str):  # noqa: ANN201
        found = [p for p in self.postings[merchant] if p.owner_type == "merchant"]
        assert len(found) == 1, self.postings[merchant]
        return found[0]

    def one(self, conn, payment_id: str, merchant: str) -> None:  # noqa: ANN001
        now = datetime.now(UTC)
        postings, mine = self.postings[merchant], self.merchant_posting(merchant)
        fee = sum(-p.amount for p in postings if p.owner_type == "platform" and p.amount < 0)
        with self.lock or nullcontext(), conn.begin():
            row = conn.execute(PAY, {"id": payment_id, "tx": "42" + secrets.token_hex(12), "fee": fee,
                                     "now": now}).one()
            entry_id = conn.execute(ENTRY, {"key": f"payment:{payment_id}:succeeded", "day": now.date(),
                                            "ref": f"payment:{payment_id}", "hash": "x" * 64, "now": now}).scalar()
            balance = conn.execute(MERCHANT_BALANCE, {"d": mine.amount, "id": mine.account_id}).scalar()
            params = {"e": entry_id}
            for k, p in enumerate(postings):
                params.update({f"a{k}": p.account_id, f"x{k}": p.amount,
                               f"b{k}": balance if p.account_id == mine.account_id else 0})
            conn.execute(self.statements[len(postings)], params)
            conn.execute(EVENT, {"id": "evt_" + secrets.token_hex(12), "merchant": row.merchant_id,
                                 "resource": payment_id, "payload": json.dumps({"id": payment_id, "amount": row.amount,
                                                                                "status": "succeeded"}), "now": now})
            conn.execute(CALLBACK, {"now": now, "ref": payment_id, "body": b"{}" * 200})

    def run(self, work: list[tuple[str, str]]) -> float:
        queue = iter(work)
        lock = threading.Lock()
        done = [0] * self.concurrency
        errors: list[BaseException] = []

        def worker(w: int) -> None:
            try:
                with self.engine.connect() as conn:
                    while True:
                        with lock:
                            item = next(queue, None)
                        if item is None:
                            return
                        self.one(conn, *item)
                        done[w] += 1
            except BaseException as e:  # noqa: BLE001 -- raised again below, from the main thread
                errors.append(e)
        threads = [threading.Thread(target=worker, args=(w,)) for w in range(self.concurrency)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        if errors:
            raise errors[0]
        return sum(done) / elapsed


PGBENCH_SCRIPT = """\\set fee {fee}
BEGIN;
SELECT nextval('bench_pgbench_seq') AS n \\gset
UPDATE payments SET status = 'succeeded', channel_transaction_id = '42' || :n, fee_amount = :fee, paid_at = now(),
  updated_at = now() WHERE id = 'pay_pgb_' || :n AND status = 'processing' RETURNING merchant_id, amount;
INSERT INTO ledger_entries (key, event_type, business_date, reference, postings_hash, created_at)
  VALUES ('payment:pay_pgb_' || :n || ':succeeded', 'payment.succeeded', current_date, 'payment:pay_pgb_' || :n,
  '{hash}', now()) RETURNING id AS entry_id \\gset
\\set k (:n - 1) % {merchants}
UPDATE ledger_accounts SET balance = balance + {merchant_amount}
  WHERE id = (SELECT account_id FROM bench_pgb_accounts WHERE k = :k) RETURNING id AS merchant_account, balance \\gset
INSERT INTO ledger_postings (entry_id, account_id, currency, amount, balance_after) VALUES {postings};
INSERT INTO merchant_events (id, merchant_id, type, resource_id, payload, notify_url, status, attempts, created_at)
  VALUES ('evt_pgb_' || :n, (SELECT merchant_id FROM bench_pgb_accounts WHERE k = :k), 'payment.succeeded',
  'pay_pgb_' || :n,
  '{{"id": "x", "amount": 100, "status": "succeeded"}}', NULL, 'no_endpoint', 0, now());
INSERT INTO channel_callbacks (channel_account, received_at, verified, outcome, reference, body)
  VALUES ('wx', now(), true, 'applied', 'pay_pgb_' || :n, '\\x{body}');
END;
"""


def pgbench(url: str, baseline: Baseline, rows: Rows, templates: list[tuple[str, str]], clients: int,
            per_client: int, workdir: Path) -> str:
    """The same transaction as a pgbench custom script (-f) on the same database, its payments spread
    over the merchants in turn; its tps line."""
    n = clients * per_client
    with baseline.engine.begin() as conn:
        conn.execute(text("CREATE TABLE bench_pgb_accounts (k int PRIMARY KEY, merchant_id varchar(40), "
                          "account_id bigint)"))
        for k, (merchant, template) in enumerate(templates):
            conn.execute(text("INSERT INTO bench_pgb_accounts VALUES (:k, :m, :a)"),
                         {"k": k, "m": merchant, "a": baseline.merchant_posting(merchant).account_id})
        # payment pay_pgb_<i> belongs to merchant i mod len(templates), as the sequence hands them out
        for k, (merchant, template) in enumerate(templates):
            copy_rows(conn, rows.payments, "src.id = :p", {"p": template}, n // len(templates) + 1,
                      {"id": f"'pay_pgb_' || ((g.n - 1) * {len(templates)} + {k + 1})",
                       "merchant_order_no": f"'pgb_' || ((g.n - 1) * {len(templates)} + {k + 1})"})
        conn.execute(text("CREATE SEQUENCE bench_pgbench_seq"))
    first = templates[0][0]
    mine = baseline.merchant_posting(first)
    postings = ", ".join(f"(:entry_id, {':merchant_account' if p.account_id == mine.account_id else p.account_id}, "
                         f"'CNY', {p.amount}, {':balance' if p.account_id == mine.account_id else 0})"
                         for p in baseline.postings[first])
    fee = sum(-p.amount for p in baseline.postings[first] if p.owner_type == "platform" and p.amount < 0)
    script = workdir / "callback.sql"
    script.write_text(PGBENCH_SCRIPT.format(fee=fee, hash="x" * 64, merchant_amount=mine.amount, postings=postings,
                                            merchants=len(templates), body="7b7d" * 200))
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    out = subprocess.run(["pgbench", "-n", "-c", str(clients), "-j", "2", "-t", str(per_client), "-f", str(script),
                          plain], capture_output=True, text=True)
    if out.returncode != 0:
        return f"pgbench failed: {out.stderr.strip().splitlines()[-3:]}"
    tps = [line for line in out.stdout.splitlines() if line.startswith("tps")]
    return f"{tps[0].split('(')[0].strip()} ({n} transactions, {clients} clients)" if tps else out.stdout


def gateway_config(workdir: Path, port: int, url: str, sim: WechatPaySimulator, sim_port: int) -> Path:
    config = workdir / f"paymux-{port}.toml"
    config.write_text(f'public_url = "http://127.0.0.1:{port}"\nsecret_key = "{SECRET_KEY}"\n[database]\n'
                      f'url = "{url}"\n[[channel_accounts]]\nid = "wx"\nplugin = "wechatpay"\n'
                      f'[channel_accounts.settings]\nmchid = "{MCHID}"\nappid = "{APPID}"\n'
                      f'merchant_serial_no = "{SERIAL}"\nmerchant_private_key = "file:{workdir}/merchant.pem"\n'
                      f'apiv3_key = "{APIV3}"\nplatform_public_key = "file:{workdir}/platform.pem"\n'
                      f'platform_public_key_id = "{sim.platform_serial}"\n'
                      f'base_url = "http://127.0.0.1:{sim_port}"\n')
    return config


def measure(kind: str, args: argparse.Namespace) -> tuple[dict[int, list[float]], list[float], str | None,
                                                          dict[int, list[tuple[dict[str, float], float, int]]],
                                                          list[float]]:
    from tests.conftest import ServerThread  # the same in-thread uvicorn the tests use

    merchant_key = wire.new_key()
    sim = WechatPaySimulator(mchid=MCHID, appid=APPID, apiv3_key=APIV3, merchant_public_key=merchant_key.public_key(),
                             merchant_serial_no=SERIAL)
    sim_port = free_port()
    with tempfile.TemporaryDirectory() as tmp, ServerThread(sim.app, sim_port):
        workdir = Path(tmp)
        url, cleanup = prepare_database(kind, workdir)
        gateways: dict[int, subprocess.Popen] = {}
        try:
            dbmod.upgrade(url)
            database = dbmod.Database(url)
            with database.transaction() as conn:
                merchants = [create_merchant(conn, SecretBox(SECRET_KEY), Clock(), f"bench-{k}")
                             for k in range(args.merchants)]
            database.dispose()
            (workdir / "merchant.pem").write_text(wire.private_pem(merchant_key))
            (workdir / "platform.pem").write_text(sim.platform_public_pem)
            ports = {n: free_port() for n in PROCESSES}
            configs = {n: gateway_config(workdir, port, url, sim, sim_port) for n, port in ports.items()}

            def serve(n: int) -> None:
                """`paymux serve --workers n`, alone: idle gateways' pools would hold PostgreSQL's connections."""
                for proc in gateways.values():
                    proc.terminate()
                    proc.wait()
                gateways.clear()
                gateways[n] = start([sys.executable, "-m", "gateway.cli", "--config", str(configs[n]), "serve",
                                     "--port", str(ports[n]), "--workers", str(n)], {}, ports[n], workdir)

            serve(1)
            clients = [Client(f"http://127.0.0.1:{ports[1]}", m.merchant_id, m.secret) for m in merchants]
            serial = itertools.count()

            def callback(out_trade_no: str, amount: int) -> tuple[bytes, dict]:
                resource = {"mchid": MCHID, "appid": APPID, "out_trade_no": out_trade_no, "trade_state": "SUCCESS",
                            "transaction_id": f"42{next(serial):026d}", "amount": {"total": amount, "currency": "CNY"}}
                body = sim.envelope("TRANSACTION.SUCCESS", "transaction", "ok", resource)
                return body, {**wire.signed_headers(sim.platform_key, sim.platform_serial, body, int(time.time())),
                              "Content-Type": "application/json"}

            # Per merchant: one processing payment the windows' payments copy, and warm-up payments.
            templates = [(m.merchant_id, c.create_payment(merchant_order_no="template", amount=100, channel="wx",
                                                          method="native")["id"]) for m, c in zip(merchants, clients)]
            warm = [callback(p["out_trade_no"], p["amount"]) for p in (
                clients[i % len(clients)].create_payment(merchant_order_no=f"warm-{i}", amount=100, channel="wx",
                                                         method="native")
                for i in range(max(args.concurrency, len(clients))))]
            # untimed; also creates the ledger accounts the baseline posts to, and the rows history copies
            client_run(post_callbacks(f"http://127.0.0.1:{ports[1]}/v1/notify/wx", warm, args.concurrency))
            engine = create_engine(dbmod.normalize_url(url))
            with engine.begin() as conn:
                rows = Rows(conn)
            started = time.perf_counter()
            for k, merchant in enumerate(merchants if args.history else ()):
                with engine.begin() as conn:
                    if kind == "postgresql":   # copies of balanced entries: the per-entry commit check is skipped
                        conn.execute(text("SET LOCAL session_replication_role = replica"))
                    paid = conn.execute(text("SELECT max(id) FROM payments WHERE merchant_id = :m AND status = "
                                             "'succeeded'"), {"m": merchant.merchant_id}).scalar_one()
                    rows.history(conn, k, paid, max(1, args.history // len(merchants)))
            if kind == "postgresql":
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM ANALYZE"))
            with engine.connect() as conn:
                held = {name: conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
                        for name in ("payments", "attempts", "ledger_entries", "ledger_postings", "merchant_events",
                                     "channel_callbacks")}
            print(f"{kind}: history over 7 days and {len(merchants)} merchants written in "
                  f"{time.perf_counter() - started:.1f} s (outside the timer); the database holds "
                  + ", ".join(f"{count} {name}" for name, count in held.items()), flush=True)

            def batch(tag: str, per_merchant: int) -> list[tuple[str, str, int, str]]:
                """per_merchant open payments of each merchant, taken in turn: (id, out_trade_no, amount, merchant)."""
                with engine.begin() as conn:
                    each = [[(*p, merchant) for p in rows.open_payments(conn, k, template, f"{tag}m{k}", per_merchant)]
                            for k, (merchant, template) in enumerate(templates)]
                return [p for group in zip(*each) for p in group]

            per_merchant = max(1, args.per_window // len(merchants))
            gateway_batches = {(n, r): [callback(t, a) for _, t, a, _ in batch(f"g{n}r{r}", per_merchant)]
                               for n in PROCESSES for r in range(args.repeats)}
            warm_batches = {(n, r): [callback(t, a) for _, t, a, _ in batch(f"w{n}r{r}", args.warm_per_merchant)]
                            for n in PROCESSES for r in range(args.repeats)}
            baseline_batches = [[(p, m) for p, _, _, m in batch(f"b{r}", per_merchant * args.baseline_factor)]
                                for r in range(args.repeats)]
            soak_batches = [[callback(t, a) for _, t, a, _ in batch(f"s{k}", per_merchant)] for k in range(args.soak)]
            soak_warm = [callback(t, a) for _, t, a, _ in batch("sw", args.warm_per_merchant)] if args.soak else []
            engine.dispose()
            baseline = Baseline(url, kind, args.concurrency, [m for m, _ in templates])
            try:
                through: dict[int, list[float]] = {n: [] for n in PROCESSES}
                cpu: dict[int, list[tuple[dict[str, float], float, int]]] = {n: [] for n in PROCESSES}
                bare: list[float] = []
                for r in range(args.repeats):   # 1, 2, 4 processes, baseline; again
                    for n in PROCESSES:
                        serve(n)
                        notify = f"http://127.0.0.1:{ports[n]}/v1/notify/wx"
                        client_run(post_callbacks(notify, warm_batches[(n, r)], args.concurrency))   # untimed
                        groups = {"gateway": [gateways[n].pid]}
                        before, started = cpu_by_group(groups, POSTGRES), time.perf_counter()
                        mine = os.times()
                        through[n].append(client_run(post_callbacks(notify, gateway_batches[(n, r)],
                                                                     args.concurrency)))
                        spent = cpu_delta(before, cpu_by_group(groups, POSTGRES))
                        after = os.times()   # this process alone (its threads), not the gateways it started
                        spent["bench client"] = after.user + after.system - mine.user - mine.system
                        cpu[n].append((spent, time.perf_counter() - started, len(gateway_batches[(n, r)])))
                    bare.append(baseline.run(baseline_batches[r]))
                soak: list[float] = []
                if args.soak:   # one gateway, its connections kept through every window
                    serve(1)
                    notify = f"http://127.0.0.1:{ports[1]}/v1/notify/wx"
                    client_run(post_callbacks(notify, soak_warm, args.concurrency))   # untimed
                    soak = [client_run(post_callbacks(notify, callbacks, args.concurrency)) for callbacks in soak_batches]
                for proc in gateways.values():   # their connections would leave pgbench's clients none
                    proc.terminate()
                    proc.wait()
                gateways.clear()
                extra = None
                if kind == "postgresql" and shutil.which("pgbench"):
                    extra = pgbench(url, baseline, rows, templates, args.concurrency, args.pgbench_per_client, workdir)
                return through, bare, extra, cpu, soak
            finally:
                baseline.engine.dispose()
                for c in clients:
                    c.close()
        finally:
            for proc in gateways.values():
                proc.terminate()
            for proc in gateways.values():
                proc.wait()
            cleanup()


def cpu_split(windows: list[tuple[dict[str, float], float, int]]) -> str:
    """CPU per callback by group (gateway processes, PostgreSQL's processes, this bench process: the HTTP
    client and the idle simulator), median over the windows, and how busy the machine's cores were."""
    groups = list(windows[0][0])
    per = {g: statistics.median(spent[g] / count * 1000 for spent, _, count in windows) for g in groups}
    busy = [sum(spent.values()) / (seconds * (os.cpu_count() or 1)) for spent, seconds, _ in windows]
    return ("CPU per callback (median ms): " + ", ".join(f"{g} {v:.2f}" for g, v in per.items())
            + f"; the machine's {os.cpu_count()} cores busy {mmm([b * 100 for b in busy])}% of the window")


def per_window(args: argparse.Namespace) -> int:
    return args.per_window // args.merchants * args.merchants


def main() -> None:
    global PROCESSES
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-window", type=int, default=512, help="callbacks (payments) in each gateway window")
    parser.add_argument("--baseline-factor", type=int, default=4,
                        help="the baseline's windows apply this many times --per-window payments (it is faster)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of interleaved windows")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--merchants", type=int, default=16)
    parser.add_argument("--warm-per-merchant", type=int, default=8,
                        help="untimed callbacks per merchant sent to each gateway before its window (its pool's "
                             "connections open and prepare their statements)")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--history", type=int, default=50_000, help="succeeded payments written before, over 7 days")
    parser.add_argument("--pgbench-per-client", type=int, default=300,
                        help="transactions per pgbench client (PostgreSQL, when pgbench is installed)")
    parser.add_argument("--soak", type=int, default=0, metavar="K",
                        help="after the rounds, K windows one after another on one gateway process that is not "
                             "restarted: a rate that falls from window to window is a cost that grows with a "
                             "connection's age")
    parser.add_argument("--processes", default=",".join(map(str, PROCESSES)),
                        help="gateway process counts to measure, comma-separated (1 comes first: the others are compared with it)")
    args = parser.parse_args()
    PROCESSES = tuple(sorted({1, *(int(n) for n in args.processes.split(","))}))
    for kind in database_kinds():
        if args.db not in ("both", kind):
            continue
        through, bare, extra, cpu, soak = measure(kind, args)
        windows = (f"min/median/max of {args.repeats} rounds of interleaved windows of "
                   f"{per_window(args)} callbacks "
                   f"(baseline x{args.baseline_factor}), "
                   f"{args.concurrency} concurrent, {args.merchants} merchants")
        print(f"{kind}: the essential callback transaction in a plain SQLAlchemy-core loop {mmm(bare)}/s ({windows})")
        for n in PROCESSES:
            ratio = [g / b for g, b in zip(through[n], bare)]
            versus = [g / o for g, o in zip(through[n], through[1])]
            print(f"{kind}: `paymux serve --workers {n}`: verified callbacks {mmm(through[n])}/s, ratio to the "
                  f"baseline {mmm(ratio, '{:.3f}')}" + ("" if n == 1 else f", to 1 process {mmm(versus, '{:.2f}')}"),
                  flush=True)
            print(f"{kind}: `paymux serve --workers {n}`: {cpu_split(cpu[n])}", flush=True)
        if soak:
            print(f"{kind}: one `paymux serve` process kept through {len(soak)} windows of {per_window(args)} callbacks "
                  f"(its database connections live on): " + ", ".join(f"{rate:.0f}" for rate in soak)
                  + f" callbacks/s; the last window against the first {soak[-1] / soak[0]:.2f}", flush=True)
        if extra:
            print(f"{kind}: the same transaction as a pgbench script (-f), once, after the windows: {extra}",
                  flush=True)


if __name__ == "__main__":
    main()
