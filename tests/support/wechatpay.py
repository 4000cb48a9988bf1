"""A WeChat Pay world for tests: the merchant's keys and certificates, the simulator, the account settings."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.config import ChannelAccountConfig, CircuitConfig, Settings
from plugins.wechatpay import wire
from plugins.wechatpay.simulator import WechatPaySimulator
from tests.conftest import SECRET_KEY, free_port

MCHID, APPID, SERIAL = "1900000109", "wx8888888888888888", "MERCHANT_SERIAL_0001"


APP_APPID = "wx9999999999999999"    # WeChat Pay binds an app's own AppID (移动应用) apart from the 公众号's


APIV3_KEY = "0123456789abcdef0123456789ABCDEF"


@dataclass
class WechatWorld:
    gw: Any
    client: Any
    sim: WechatPaySimulator
    sim_url: str
    merchant_key: Any

    def pay(self, payment: dict, outcome: str = "success") -> httpx.Response:
        return httpx.post(f"{self.sim_url}/sim/orders/{payment['out_trade_no']}/pay", json={"outcome": outcome})

    def faults(self, **faults: Any) -> dict:
        return httpx.post(f"{self.sim_url}/sim/faults", json=faults).json()

    def notify(self, body: bytes, key=None, serial: str | None = None, timestamp: int | None = None) -> httpx.Response:  # noqa: ANN001
        headers = wire.signed_headers(key or self.sim.platform_key, serial or self.sim.platform_serial, body,
                                      timestamp or int(time.time()))
        return httpx.post(f"{self.gw.url}/v1/notify/wx", content=body,
                          headers={**headers, "Content-Type": "application/json"})


def wechat_settings(db_url: str, sim: WechatPaySimulator, merchant_key, sim_port: int,  # noqa: ANN001
                    account: dict[str, Any] | None = None, circuit: CircuitConfig = CircuitConfig(),
                    **over: Any) -> Settings:
    """A gateway with one WeChat Pay account, "wx", pointed at the simulator on sim_port (account: more
    of the account's settings)."""
    return Settings(public_url=f"http://127.0.0.1:{free_port()}", database_url=db_url, secret_key=SECRET_KEY,
                    channel_accounts=(ChannelAccountConfig("wx", "wechatpay", True, {
                        "mchid": MCHID, "appid": APPID, "app_appid": APP_APPID, "merchant_serial_no": SERIAL,
                        "merchant_private_key": wire.private_pem(merchant_key), "apiv3_key": APIV3_KEY,
                        "platform_public_key": sim.platform_public_pem, "platform_public_key_id": sim.platform_serial,
                        "base_url": f"http://127.0.0.1:{sim_port}", **(account or {})}, circuit=circuit),), **over)


def simulator(merchant_key, **over: Any) -> WechatPaySimulator:  # noqa: ANN001
    """WeChat Pay's side, its callbacks retried on WeChat Pay's schedule sped up 1000 times."""
    return WechatPaySimulator(mchid=MCHID, appid=APPID, app_appid=APP_APPID, apiv3_key=APIV3_KEY,
                              merchant_public_key=merchant_key.public_key(), merchant_serial_no=SERIAL,
                              callback_time_scale=0.001, **over)

