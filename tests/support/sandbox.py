"""The sandbox's callbacks in tests: signed as the sandbox signs them, posted to the gateway's notify URL."""
from __future__ import annotations

import time

import httpx

from plugins.mock import wire
from tests.conftest import SANDBOX_SECRET


def callback(gw, payload: dict, secret: str = SANDBOX_SECRET, timestamp: int | None = None) -> httpx.Response:  # noqa: ANN001
    body = wire.encode(payload)
    headers = wire.signed_headers(secret, body, timestamp or int(time.time()))
    return httpx.post(f"{gw.url}/v1/notify/sandbox", content=body, headers=headers)


def paid_event(payment: dict, **over) -> dict:  # noqa: ANN003
    return {"event": "payment", "out_trade_no": payment["out_trade_no"], "trade_status": "SUCCESS",
            "amount": payment["amount"], "currency": payment["currency"], "transaction_id": "sbx-forged", **over}
