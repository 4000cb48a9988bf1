"""Verified WeChat Pay success callbacks per second through the gateway (signature check, AES-GCM
decrypt, state change, ledger entry, outbox event, callback record; over HTTP to a `paymux serve`
process), against, in the same run and on the same database, the essential callback transaction done
by a plain SQLAlchemy-core loop with the same concurrency (one connection per worker thread, prebuilt
text statements, one transaction each):

  - the payment's conditional UPDATE (status processing -> succeeded, channel transaction id, fee,
    paid_at) RETURNING what the entry needs,
  - one balanced entry: its ledger_entries row and its postings (on the same accounts, with the same
    amounts, as the gateway's own success entries: three postings) in one multi-row INSERT,
  - the merchant's balance row updated (UPDATE ... RETURNING the balance for balance_after); the
    platform's balance rows are not touched, as the essential work does not need them,
  - one merchant_events (outbox) INSERT and one channel_callbacks INSERT.

On SQLite the baseline's workers take one process-wide lock around each transaction (SQLite has one
writer; the gateway serializes its writers the same way). Measured on SQLite always, and on
PostgreSQL when PAYMUX_TEST_DATABASE_URL (or PAYMUX_BENCH_DATABASE_URL) is set.

The two sides run in interleaved windows (gateway, baseline, gateway, baseline, ...; --repeats
pairs; a gateway window applies --per-window payments' callbacks, a baseline window --per-window x
--baseline-factor, so that both last about as long) and the bench prints min/median/max of each
side's rate and of the per-pair ratio. The gateway's payments are created through the API; the
baseline's are copies (new id and order number) of one API-created processing payment, inserted
directly, so that both sides update rows of the same shape in the same table and indexes.

Outside the timer: creating and migrating the database, starting the gateway and the channel
simulator, creating every payment (through the API, or copying one for the baseline),
signing and encrypting every callback body, a warm-up of --concurrency callbacks through the gateway
(which also creates the ledger accounts the baseline then posts to), opening the baseline's
connections. Inside: for the gateway, the HTTP round trip and all its work; for the baseline, the
database transaction only (no verification or decryption, which cost ~0.03 ms).

On PostgreSQL, when pgbench is installed, the same transaction also runs once as a pgbench custom
script (-f; the same statements, with a sequence picking the payment; -c --concurrency -j 2), after
the windows, on more copies of the same payment: not interleaved, printed for reference as the
database's own rate without Python in the loop.

    .venv/bin/python bench/notify.py [--per-window 150] [--repeats 5] [--concurrency 16]
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from sqlalchemy import MetaData, Table, create_engine, insert, select, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.api_create import SECRET_KEY, bench_database, database_kinds, free_port, prepare_database, start  # noqa: E402
from bench.windows import interleave, report  # noqa: E402
from gateway import db as dbmod  # noqa: E402
from gateway.client import Client  # noqa: E402
from plugins.wechatpay import wire  # noqa: E402
from plugins.wechatpay.simulator import WechatPaySimulator  # noqa: E402

MCHID, APPID, SERIAL, APIV3 = "1900000109", "wx8888888888888888", "BENCH_SERIAL", "0123456789abcdef0123456789ABCDEF"

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
    """The essential callback transaction, from `concurrency` threads with one connection each."""

    def __init__(self, url: str, kind: str, concurrency: int) -> None:
        self.engine = create_engine(dbmod.normalize_url(url), pool_size=concurrency, max_overflow=0)
        self.lock = threading.Lock() if kind == "sqlite" else None
        self.concurrency = concurrency
        with self.engine.connect() as conn:  # the accounts and amounts of the gateway's last success entry
            entry = conn.execute(text("SELECT max(id) FROM ledger_entries")).scalar()
            self.postings = conn.execute(text(
                "SELECT p.account_id, p.amount, a.owner_type FROM ledger_postings p JOIN ledger_accounts a "
                "ON a.id = p.account_id WHERE p.entry_id = :e ORDER BY p.id"), {"e": entry}).all()
        merchant = [p for p in self.postings if p.owner_type == "merchant"]
        assert len(merchant) == 1, self.postings
        self.merchant_account, self.merchant_amount = merchant[0].account_id, merchant[0].amount
        self.fee = sum(-p.amount for p in self.postings if p.owner_type == "platform" and p.amount < 0)
        self.insert_postings = postings_statement(len(self.postings))
        conns = [self.engine.connect() for _ in range(concurrency)]  # open the pool before any window
        for conn in conns:
            conn.close()

    def one(self, conn, payment_id: str) -> None:  # noqa: ANN001
        now = datetime.now(UTC)
        with self.lock or nullcontext(), conn.begin():
            row = conn.execute(PAY, {"id": payment_id, "tx": "42" + secrets.token_hex(12), "fee": self.fee,
                                     "now": now}).one()
            entry_id = conn.execute(ENTRY, {"key": f"payment:{payment_id}:succeeded", "day": now.date(),
                                            "ref": f"payment:{payment_id}", "hash": "x" * 64, "now": now}).scalar()
            balance = conn.execute(MERCHANT_BALANCE, {"d": self.merchant_amount, "id": self.merchant_account}).scalar()
            params = {"e": entry_id}
            for k, p in enumerate(self.postings):
                params.update({f"a{k}": p.account_id, f"x{k}": p.amount,
                               f"b{k}": balance if p.account_id == self.merchant_account else 0})
            conn.execute(self.insert_postings, params)
            conn.execute(EVENT, {"id": "evt_" + secrets.token_hex(12), "merchant": row.merchant_id,
                                 "resource": payment_id, "payload": json.dumps({"id": payment_id, "amount": row.amount,
                                                                                "status": "succeeded"}), "now": now})
            conn.execute(CALLBACK, {"now": now, "ref": payment_id, "body": b"{}" * 200})

    def run(self, payment_ids: list[str]) -> float:
        queue = iter(payment_ids)
        lock = threading.Lock()
        done = [0] * self.concurrency
        errors: list[BaseException] = []

        def worker(w: int) -> None:
            try:
                work(w)
            except BaseException as e:  # noqa: BLE001 -- raised again below, from the main thread
                errors.append(e)

        def work(w: int) -> None:
            with self.engine.connect() as conn:
                while True:
                    with lock:
                        payment_id = next(queue, None)
                    if payment_id is None:
                        return
                    self.one(conn, payment_id)
                    done[w] += 1
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
  updated_at = now() WHERE id = 'pay_pgb' || :n AND status = 'processing' RETURNING merchant_id, amount;
INSERT INTO ledger_entries (key, event_type, business_date, reference, postings_hash, created_at)
  VALUES ('payment:pay_pgb' || :n || ':succeeded', 'payment.succeeded', current_date, 'payment:pay_pgb' || :n,
  '{hash}', now()) RETURNING id AS entry_id \\gset
UPDATE ledger_accounts SET balance = balance + {merchant_amount} WHERE id = {merchant_account} RETURNING balance \\gset
INSERT INTO ledger_postings (entry_id, account_id, currency, amount, balance_after) VALUES {postings};
INSERT INTO merchant_events (id, merchant_id, type, resource_id, payload, notify_url, status, attempts, created_at)
  VALUES ('evt_pgb' || :n, '{merchant}', 'payment.succeeded', 'pay_pgb' || :n,
  '{{"id": "x", "amount": 100, "status": "succeeded"}}', NULL, 'no_endpoint', 0, now());
INSERT INTO channel_callbacks (channel_account, received_at, verified, outcome, reference, body)
  VALUES ('wx', now(), true, 'applied', 'pay_pgb' || :n, '\\x{body}');
END;
"""


def pgbench(url: str, baseline: Baseline, template: str, payments: Table, clients: int, per_client: int,
            workdir: Path) -> str:
    """The same transaction as a pgbench custom script (-f) on the same database; its tps line."""
    n = clients * per_client
    engine = baseline.engine
    with engine.begin() as conn:
        cols = [c.name for c in payments.columns]
        chosen = ", ".join("'pay_pgb' || g" if c in ("id", "merchant_order_no") else f"p.{c}" for c in cols)
        conn.execute(text(f"INSERT INTO payments ({', '.join(cols)}) SELECT {chosen} FROM payments p, "
                          f"generate_series(1, {n}) g WHERE p.id = :t"), {"t": template})
        conn.execute(text("CREATE SEQUENCE bench_pgbench_seq"))
        merchant = conn.execute(text("SELECT merchant_id FROM payments WHERE id = :t"), {"t": template}).scalar()
    postings = ", ".join(f"(:entry_id, {p.account_id}, 'CNY', {p.amount}, "
                         f"{':balance' if p.account_id == baseline.merchant_account else 0})" for p in baseline.postings)
    script = workdir / "callback.sql"
    script.write_text(PGBENCH_SCRIPT.format(fee=baseline.fee, hash="x" * 64, merchant_amount=baseline.merchant_amount,
                                            merchant_account=baseline.merchant_account, postings=postings,
                                            merchant=merchant, body="7b7d" * 200))
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    out = subprocess.run(["pgbench", "-n", "-c", str(clients), "-j", "2", "-t", str(per_client), "-f", str(script),
                          plain], capture_output=True, text=True)
    if out.returncode != 0:
        return f"pgbench failed: {out.stderr.strip().splitlines()[-1:]}"
    tps = [line for line in out.stdout.splitlines() if line.startswith("tps")]
    return f"{tps[0].split('(')[0].strip()} ({n} transactions, {clients} clients)" if tps else out.stdout


def measure(kind: str, per_window: int, baseline_factor: int, repeats: int, concurrency: int,
            pgbench_per_client: int) -> tuple[list[float], list[float], str | None]:
    from tests.conftest import ServerThread  # the same in-thread uvicorn the tests use

    merchant_key = wire.new_key()
    sim = WechatPaySimulator(mchid=MCHID, appid=APPID, apiv3_key=APIV3, merchant_public_key=merchant_key.public_key(),
                             merchant_serial_no=SERIAL)
    sim_port, port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp, ServerThread(sim.app, sim_port):
        workdir = Path(tmp)
        url, cleanup = prepare_database(kind, workdir)
        gateway = None
        try:
            creds = bench_database(url)
            (workdir / "merchant.pem").write_text(wire.private_pem(merchant_key))
            (workdir / "platform.pem").write_text(sim.platform_public_pem)
            config = workdir / "paymux.toml"
            config.write_text(f'public_url = "http://127.0.0.1:{port}"\nsecret_key = "{SECRET_KEY}"\n[database]\n'
                              f'url = "{url}"\n[[channel_accounts]]\nid = "wx"\nplugin = "wechatpay"\n'
                              f'[channel_accounts.settings]\nmchid = "{MCHID}"\nappid = "{APPID}"\n'
                              f'merchant_serial_no = "{SERIAL}"\nmerchant_private_key = "file:{workdir}/merchant.pem"\n'
                              f'apiv3_key = "{APIV3}"\nplatform_public_key = "file:{workdir}/platform.pem"\n'
                              f'platform_public_key_id = "{sim.platform_serial}"\n'
                              f'base_url = "http://127.0.0.1:{sim_port}"\n')
            gateway = start([sys.executable, "-m", "gateway.cli", "--config", str(config), "serve", "--port",
                             str(port)], {}, port, workdir)
            client = Client(f"http://127.0.0.1:{port}", creds.merchant_id, creds.secret)
            serial = itertools.count()

            def callbacks(n: int) -> list[tuple[bytes, dict]]:
                out = []
                for _ in range(n):
                    i = next(serial)
                    p = client.create_payment(merchant_order_no=f"n{i}", amount=100 + i, channel="wx", method="native")
                    resource = {"mchid": MCHID, "appid": APPID, "out_trade_no": p["out_trade_no"],
                                "trade_state": "SUCCESS", "transaction_id": f"42{i:026d}",
                                "amount": {"total": p["amount"], "currency": "CNY"}}
                    body = sim.envelope("TRANSACTION.SUCCESS", "transaction", "ok", resource)
                    headers = {**wire.signed_headers(sim.platform_key, sim.platform_serial, body, int(time.time())),
                               "Content-Type": "application/json"}
                    out.append((body, headers))
                return out

            template = client.create_payment(merchant_order_no="template", amount=100, channel="wx",
                                             method="native")["id"]
            engine = create_engine(dbmod.normalize_url(url))
            payments = Table("payments", MetaData(), autoload_with=engine)

            def payment_ids(n: int) -> list[str]:
                """n copies of an API-created processing payment, with their own ids and order numbers."""
                with engine.begin() as conn:
                    row = conn.execute(select(payments).where(payments.c.id == template)).one()._asdict()
                    ids = [f"pay_bench{next(serial):018d}" for _ in range(n)]
                    conn.execute(insert(payments), [{**row, "id": i, "merchant_order_no": i} for i in ids])
                return ids

            notify = f"http://127.0.0.1:{port}/v1/notify/wx"
            asyncio.run(post_callbacks(notify, callbacks(concurrency), concurrency))  # warm-up, untimed
            gateway_batches = [callbacks(per_window) for _ in range(repeats)]
            baseline_batches = [payment_ids(per_window * baseline_factor) for _ in range(repeats)]
            engine.dispose()
            baseline = Baseline(url, kind, concurrency)
            try:
                through, bare = interleave(repeats, lambda k: asyncio.run(post_callbacks(notify, gateway_batches[k],
                                                                                         concurrency)),
                                           lambda k: baseline.run(baseline_batches[k]))
                extra = None
                if kind == "postgresql" and shutil.which("pgbench"):
                    extra = pgbench(url, baseline, template, payments, concurrency, pgbench_per_client, workdir)
                return through, bare, extra
            finally:
                baseline.engine.dispose()
        finally:
            if gateway is not None:
                gateway.terminate()
                gateway.wait()
            cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-window", type=int, default=150, help="callbacks (payments) in each window")
    parser.add_argument("--baseline-factor", type=int, default=6,
                        help="the baseline's windows apply this many times --per-window payments (it is faster)")
    parser.add_argument("--repeats", type=int, default=5, help="pairs of interleaved windows")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pgbench-per-client", type=int, default=500,
                        help="transactions per pgbench client (PostgreSQL, when pgbench is installed)")
    args = parser.parse_args()
    for kind in database_kinds():
        through, bare, extra = measure(kind, args.per_window, args.baseline_factor, args.repeats, args.concurrency,
                                      args.pgbench_per_client)
        sg, sb, sr = report(through, bare, ratio_fmt="{:.3f}")
        print(f"{kind}: verified callbacks through the gateway {sg}/s (signature + decrypt + state change + ledger "
              f"entry + event + callback record), the essential callback transaction in a plain SQLAlchemy-core loop "
              f"{sb}/s, ratio {sr} (min/median/max of {args.repeats} interleaved windows of {args.per_window} "
              f"and {args.per_window * args.baseline_factor} callbacks, {args.concurrency} concurrent)", flush=True)
        if extra:
            print(f"{kind}: the same transaction as a pgbench script (-f), once, after the windows: {extra}",
                  flush=True)


if __name__ == "__main__":
    main()
