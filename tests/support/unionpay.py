"""A UnionPay merchant (signing key and certificate) and the simulator of UnionPay's side, shared by
the UnionPay tests and its conformance harness."""
from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from gateway.clock import Clock
from gateway.config import AccountLimits, ChannelAccountConfig, CircuitConfig, Settings
from gateway.db import Database
from gateway.service import make_ledger
from ledger.booking import Booker
from plugins.unionpay import wire
from plugins.unionpay.sim_files import Material
from plugins.unionpay.simulator import SimOrder, UnionPaySimulator
from tests.conftest import SECRET_KEY, free_port

MER_ID = "777290058110048"


class ShiftedClock(Clock):
    """A clock some days ahead, for "the day after" without waiting a day (gateway and simulator alike)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


class UnionPayMerchant:
    def __init__(self, clock: Clock | None = None, test_environment: bool = False) -> None:
        self.key = wire.new_key()
        self.cert = wire.issue(wire.entity_name("acp test merchant", "CFCA OCA1"), self.key, None, self.key, ca=False)
        self.sim = UnionPaySimulator(mer_id=MER_ID, merchant_cert_pem=wire.cert_pem(self.cert), clock=clock,
                                     test_environment=test_environment)
        self.test_environment = test_environment

    def settings(self, base_url: str, **over: Any) -> dict[str, Any]:
        return {"mer_id": MER_ID, "base_url": base_url, "file_url": f"{base_url}/files/",
                "verify_cert": self.sim.trust_pem, "encrypt_cert": wire.cert_pem(self.sim.encrypt_cert),
                "sign_cert": {"private_key": wire.private_pem(self.key), "cert_id": str(self.cert.serial_number)},
                **({"test_environment": True} if self.test_environment else {}), **over}

    def pay(self, base_url: str, payment: dict, outcome: str = "success") -> None:
        """The payer's browser posts the signed form, then pays on UnionPay's page."""
        action = payment["action"]
        assert action["type"] == "form" and action["url"].startswith(base_url), action
        assert httpx.post(action["url"], data=action["fields"]).status_code == 200
        answer = httpx.post(f"{base_url}/sim/orders/{payment['out_trade_no']}/pay", json={"outcome": outcome})
        assert answer.status_code == 200, answer.text

    def notification(self, payment: dict, *, forge: bool = False) -> tuple[bytes, dict[str, str]]:
        """A success notification as UnionPay posts it; forged: signed by a look-alike certificate
        (UnionPay's name in its CN) that does not chain to UnionPay's root."""
        order = SimOrder(payment["out_trade_no"], wire.bank_time(datetime.now(UTC)), "01", payment["amount"],
                         code="00", finished=datetime.now(UTC))
        if forge:
            fake = Material.new()
            fields = self.sim.signed(self.sim.view(order), fake.sign_key, fake.sign_cert)
        else:
            fields = self.sim.signed(self.sim.view(order))
        body = "&".join(f"{k}={quote(v, safe='')}" for k, v in fields.items()).encode()
        return body, {"Content-Type": "application/x-www-form-urlencoded"}


CARD = {"name": "张三", "number": "6216261000000000018"}


def up_settings(db_url: str, sim_url: str, merchant: UnionPayMerchant, **over) -> Settings:  # noqa: ANN003
    account = ChannelAccountConfig("up", "unionpay", True, merchant.settings(sim_url), 100, 1, AccountLimits(),
                                   CircuitConfig(), fee_bps=60)
    return Settings(public_url=f"http://127.0.0.1:{free_port()}", database_url=db_url, secret_key=SECRET_KEY,
                    channel_accounts=(account,), **over)


def reconcile_days(settings: Settings, clock: Any, days: list[tuple[timedelta, date]], account: str = "up",
                   between: Any = None, files: list[Path] | None = None) -> list[dict]:
    """`paymux reconcile` as an operator runs it, day after day: for each (how far `clock` is ahead, the
    business date), one reconciliation by a gateway of the operator's own on that clock."""
    from gateway.logs import get_logger
    from gateway.service import Gateway

    async def run() -> list[dict]:
        gw = Gateway.build(settings, get_logger(role="reconcile"), clock)
        reports = []
        try:
            for index, (offset, day) in enumerate(days):
                clock.offset = offset
                reports.append(await gw.reconciler.reconcile(account, day, files[index] if files else None))
                if between is not None:
                    await asyncio.to_thread(between, reports[-1])
            return reports
        finally:
            await gw.aclose()

    return asyncio.run(run())


def get(client: Any, payout: dict, sync: bool = True) -> dict:
    return client.request("GET", f"/v1/payouts/{payout['id']}" + ("?sync=true" if sync else "")).json()


def fund(settings: Settings, merchant_id: str, available: int, position: int) -> None:
    """Sales of the merchant's, settled, and the account's prefunded position, booked with the
    templates payments, settlement and `paymux positions topup` use (tested on their own)."""
    db, booker = Database(settings.database_url), Booker(make_ledger(settings))
    try:
        with db.transaction() as conn:
            for event, variables in (("payment.succeeded", {"amount": available, "fee": 0, "discount": 0}),
                                     ("settlement.merchant", {"amount": available})):
                booker.book(conn, event, f"funding:{merchant_id}", merchant_id=merchant_id, channel_account="up",
                            currency="CNY", variables=variables, now=Clock().now())
            booker.book(conn, "position.topup", "position:up:t", merchant_id="", channel_account="up",
                        currency="CNY", variables={"amount": position}, now=Clock().now())
    finally:
        db.dispose()
