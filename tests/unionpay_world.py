"""A UnionPay merchant (signing key and certificate) and the simulator of UnionPay's side, shared by
the UnionPay tests and its conformance harness."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from plugins.unionpay import wire
from plugins.unionpay.simulator import SimOrder, UnionPaySimulator

MER_ID = "777290058110048"


class UnionPayMerchant:
    def __init__(self) -> None:
        self.key = wire.new_key()
        self.cert = wire.issue("acp test merchant", self.key, None, self.key, ca=False)
        self.sim = UnionPaySimulator(mer_id=MER_ID, merchant_cert_pem=wire.cert_pem(self.cert))

    def settings(self, base_url: str) -> dict[str, Any]:
        return {"mer_id": MER_ID, "base_url": base_url, "verify_cert": self.sim.trust_pem,
                "encrypt_cert": wire.cert_pem(self.sim.encrypt_cert),
                "sign_cert": {"private_key": wire.private_pem(self.key), "cert_id": str(self.cert.serial_number)}}

    def pay(self, base_url: str, payment: dict, outcome: str = "success") -> None:
        """The payer's browser posts the signed form, then pays on UnionPay's page."""
        action = payment["action"]
        assert action["type"] == "form" and action["url"].startswith(base_url), action
        assert httpx.post(action["url"], data=action["fields"]).status_code == 200
        answer = httpx.post(f"{base_url}/sim/orders/{payment['out_trade_no']}/pay", json={"outcome": outcome})
        assert answer.status_code == 200, answer.text

    def notification(self, payment: dict, *, forge: bool = False) -> tuple[bytes, dict[str, str]]:
        """A success notification as UnionPay posts it; forged: signed by a look-alike certificate
        that does not chain to UnionPay's root."""
        order = SimOrder(payment["out_trade_no"], wire.bank_time(datetime.now(UTC)),
                         payment["amount"], "", payment["out_trade_no"], status="SUCCESS")
        if forge:
            key = wire.new_key()
            cert = wire.issue(f"{wire.UNIONPAY_NAME}:SIGN", key, None, key, ca=False)
            fields = self.sim.signed(self.sim.view(order), key, cert)
        else:
            fields = self.sim.signed(self.sim.view(order))
        body = "&".join(f"{k}={quote(v, safe='')}" for k, v in fields.items()).encode()
        return body, {"Content-Type": "application/x-www-form-urlencoded"}
