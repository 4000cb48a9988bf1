"""An Alipay world for tests: the app's keys, the simulator, the account settings."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from gateway.config import ChannelAccountConfig, CircuitConfig, Settings
from plugins.alipay import wire
from plugins.alipay.simulator import AlipaySimulator
from tests.conftest import SECRET_KEY, free_port

APP_ID = "2021000000000001"


@dataclass
class AlipayWorld:
    gw: Any
    client: Any
    sim: AlipaySimulator
    sim_url: str

    def open_and_pay(self, payment: dict, outcome: str = "success") -> httpx.Response:
        action = payment["action"]
        if action["type"] == "redirect":  # the payer's browser opens the page, then clicks Pay
            assert httpx.get(action["url"]).status_code == 200
        elif action["type"] == "app":  # the Alipay app receives the order string
            assert httpx.post(f"{self.sim_url}/sim/app", content=action["order_string"]).status_code == 200
        return httpx.post(f"{self.sim_url}/sim/orders/{payment['out_trade_no']}/pay", json={"outcome": outcome})

    def faults(self, **faults: Any) -> None:
        httpx.post(f"{self.sim_url}/sim/faults", json=faults)

    def pay_after_close(self, payment: dict) -> httpx.Response:
        return httpx.post(f"{self.sim_url}/sim/orders/{payment['out_trade_no']}/pay", json={"outcome": "success"})

    def notify(self, form: dict[str, str]) -> httpx.Response:
        return httpx.post(f"{self.gw.url}/v1/notify/ali", content=urlencode(form),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})




def simulator(app_key, **over: Any) -> AlipaySimulator:  # noqa: ANN001
    """Alipay's side, its notifies retried on Alipay's schedule sped up 1000 times."""
    return AlipaySimulator(app_id=APP_ID, app_public_key=app_key.public_key(), callback_time_scale=0.001, **over)


def alipay_settings(db_url: str, sim: AlipaySimulator, app_key, sim_port: int,  # noqa: ANN001
                    account: dict[str, Any] | None = None, circuit: CircuitConfig = CircuitConfig(),
                    **over: Any) -> Settings:
    """A gateway with one Alipay account, "ali", pointed at the simulator on sim_port."""
    return Settings(public_url=f"http://127.0.0.1:{free_port()}", database_url=db_url, secret_key=SECRET_KEY,
                    channel_accounts=(ChannelAccountConfig("ali", "alipay", True, {
                        "app_id": APP_ID, "app_private_key": wire.private_pem(app_key),
                        "alipay_public_key": sim.alipay_public_pem, "seller_id": sim.seller_id,
                        "gateway_url": f"http://127.0.0.1:{sim_port}/gateway.do", **(account or {})},
                        circuit=circuit),), **{"channel_timeout_seconds": 2.0, **over})
