"""A UnionPay merchant (signing key and certificate) and the simulator of UnionPay's side, shared by
the UnionPay tests and its conformance harness."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx

from gateway.clock import Clock
from plugins.unionpay import wire
from plugins.unionpay.sim_files import Material
from plugins.unionpay.simulator import SimOrder, UnionPaySimulator

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
