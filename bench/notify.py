"""Verified WeChat Pay callbacks per second through the gateway (signature check, AES-GCM decrypt,
state change and ledger entry, over HTTP to a uvicorn gateway), against, in the same run, the bare
signature verification of the same callbacks. Prints both and the ratio.

    .venv/bin/python bench/notify.py [--payments 600] [--concurrency 16]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.api_create import SECRET_KEY, bench_database, free_port, prepare_database, start  # noqa: E402
from gateway.client import Client  # noqa: E402
from plugins.wechatpay import wire  # noqa: E402
from plugins.wechatpay.simulator import WechatPaySimulator  # noqa: E402

MCHID, APPID, SERIAL, APIV3 = "1900000109", "wx8888888888888888", "BENCH_SERIAL", "0123456789abcdef0123456789ABCDEF"


async def post_all(url: str, callbacks: list[tuple[bytes, dict]], concurrency: int) -> float:
    queue = list(callbacks)
    ok = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok
        while queue:
            body, headers = queue.pop()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                ok += response.status == 204
    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    if ok != len(callbacks):
        print(f"  ({len(callbacks) - ok} callbacks were not accepted)", file=sys.stderr)
    return ok / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    from tests.conftest import ServerThread  # the same in-thread uvicorn the tests use

    merchant_key = wire.new_key()
    sim = WechatPaySimulator(mchid=MCHID, appid=APPID, apiv3_key=APIV3, merchant_public_key=merchant_key.public_key(),
                             merchant_serial_no=SERIAL)
    sim_port, port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp, ServerThread(sim.app, sim_port):
        workdir = Path(tmp)
        url, cleanup = prepare_database("sqlite", workdir)
        creds = bench_database(url)
        (workdir / "merchant.pem").write_text(wire.private_pem(merchant_key))
        (workdir / "platform.pem").write_text(sim.platform_public_pem)
        config = workdir / "paymux.toml"
        config.write_text(f'public_url = "http://127.0.0.1:{port}"\nsecret_key = "{SECRET_KEY}"\n[database]\n'
                          f'url = "{url}"\n[[channel_accounts]]\nid = "wx"\nplugin = "wechatpay"\n'
                          f'[channel_accounts.settings]\nmchid = "{MCHID}"\nappid = "{APPID}"\n'
                          f'merchant_serial_no = "{SERIAL}"\nmerchant_private_key = "file:{workdir}/merchant.pem"\n'
                          f'apiv3_key = "{APIV3}"\nplatform_public_key = "file:{workdir}/platform.pem"\n'
                          f'platform_public_key_id = "{sim.platform_serial}"\nbase_url = "http://127.0.0.1:{sim_port}"\n')
        gateway = start([sys.executable, "-m", "gateway.cli", "--config", str(config), "serve", "--port", str(port)],
                        {}, port, workdir)
        try:
            client = Client(f"http://127.0.0.1:{port}", creds.merchant_id, creds.secret)
            callbacks = []
            for i in range(args.payments):
                p = client.create_payment(merchant_order_no=f"n{i}", amount=100 + i, channel="wx", method="native")
                resource = {"mchid": MCHID, "appid": APPID, "out_trade_no": p["out_trade_no"], "trade_state": "SUCCESS",
                            "transaction_id": f"42{i:026d}", "amount": {"total": p["amount"], "currency": "CNY"}}
                body = sim.envelope("TRANSACTION.SUCCESS", "transaction", "ok", resource)
                headers = {**wire.signed_headers(sim.platform_key, sim.platform_serial, body, int(time.time())),
                           "Content-Type": "application/json"}
                callbacks.append((body, headers))

            started = time.perf_counter()
            for body, headers in callbacks:  # the baseline: verifying the same callbacks, nothing more
                wire.verify_headers({sim.platform_serial: sim.platform_key.public_key()}, headers, body,
                                    int(time.time()))
            bare = len(callbacks) / (time.perf_counter() - started)
            through = asyncio.run(post_all(f"http://127.0.0.1:{port}/v1/notify/wx", callbacks, args.concurrency))
        finally:
            gateway.terminate()
            gateway.wait()
            cleanup()
    print(f"sqlite: verified callbacks through the gateway {through:.0f}/s "
          f"(signature + decrypt + state change + ledger entry), bare signature verification {bare:.0f}/s, "
          f"ratio {through / bare:.3f}")


if __name__ == "__main__":
    main()
