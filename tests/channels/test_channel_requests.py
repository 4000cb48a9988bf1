"""What the plugins send, checked against the channels' own SDKs (wechatpayv3, alipay-sdk-python): the
requests that move money or release it — refunds, their queries, profit-sharing orders, unfreeze, order
settle with royalty_finish, the remaining-to-settle query — carry the path or method and the fields
the SDK builds for the same operation. The plugin runs for real; only its HTTP exchange is captured
(and answered, signed, as the channel would)."""
from __future__ import annotations

import asyncio
import json
import time
from types import SimpleNamespace
from typing import Any, Callable

import httpx

from gateway.channel import ChannelContext, RefundRequest, SplitFinish, SplitRequest
from gateway.clock import Clock
from gateway.logs import get_logger

APIV3 = "0123456789abcdef0123456789ABCDEF"


def captured(channel_type: Any, raw: dict[str, Any], answer: Callable[[httpx.Request], httpx.Response]) -> tuple[Any, list]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    ctx = ChannelContext("acct", channel_type.parse_settings(raw), httpx.AsyncClient(transport=httpx.MockTransport(handler)),
                         Clock(), get_logger(), "https://pay.example.com")
    return channel_type(ctx), seen


# ---- WeChat Pay against wechatpayv3 ----

def wechat() -> tuple[Any, list, Any]:
    from plugins.wechatpay import wire
    from plugins.wechatpay.channel import WechatPayChannel

    merchant, platform = wire.new_key(), wire.new_key()

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.dumps({"state": "FINISHED", "order_id": "3008", "status": "SUCCESS", "refund_id": "5030",
                           "receivers": [{"result": "SUCCESS"}], "amount": {"refund": 100}}).encode()
        return httpx.Response(200, content=body, headers=wire.signed_headers(platform, "PUB_KEY_ID_1", body,
                                                                             int(time.time())))

    channel, seen = captured(WechatPayChannel, {
        "mchid": "1900000109", "appid": "wx8888888888888888", "merchant_serial_no": "S1",
        "merchant_private_key": wire.private_pem(merchant), "apiv3_key": APIV3,
        "platform_public_key": wire.public_pem(platform.public_key()), "platform_public_key_id": "PUB_KEY_ID_1"}, answer)
    return channel, seen, platform


def reference_wechat(call: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[str, dict]:
    """What wechatpayv3 sends for the same operation: its path and body."""
    sent: dict[str, Any] = {}

    def request(path: str, method: Any = None, data: Any = None, **_: Any) -> None:
        sent.update(path=path, data=data or {})

    call(SimpleNamespace(_core=SimpleNamespace(request=request), _partner_mode=False, _notify_url=None,
                         _appid="wx8888888888888888"), *args, **kwargs)
    return sent["path"], sent["data"]


def test_wechat_pay_requests_are_what_wechatpayv3_sends() -> None:
    from wechatpayv3.profitsharing import profitsharing_order, profitsharing_unfreeze
    from wechatpayv3.transaction import query_refund, refund, trade_bill

    channel, seen, _ = wechat()
    asyncio.run(channel.refund(RefundRequest("T1", "R1", 100, 1000, "CNY", "退货")))
    path, data = reference_wechat(refund, out_refund_no="R1", out_trade_no="T1", reason="退货",
                                  amount={"refund": 100, "total": 1000, "currency": "CNY"},
                                  notify_url=channel.ctx.notify_url)
    assert (seen[-1].url.raw_path.decode(), json.loads(seen[-1].content)) == (path, data)
    asyncio.run(channel.query_refund("T1", "R1"))
    assert seen[-1].url.raw_path.decode() == reference_wechat(query_refund, "R1")[0]
    finish = SplitFinish("F1", "T1", "4200001", 500, "CNY", "splitting finished")
    asyncio.run(channel.finish_split(finish))
    path, data = reference_wechat(profitsharing_unfreeze, "4200001", "F1", "splitting finished")
    assert (seen[-1].method, seen[-1].url.raw_path.decode(), json.loads(seen[-1].content)) == ("POST", path, data)
    asyncio.run(channel.split(SplitRequest("S1", "T1", "4200001", 300, "CNY", "merchant", "1900000110", "供应商",
                                           "goods")))
    path, data = reference_wechat(profitsharing_order, "4200001", "S1", [{"type": "MERCHANT_ID", "account": "1900000110",
                                                                         "amount": 300, "description": "goods"}], False)
    ours = json.loads(seen[-1].content)
    assert seen[-1].url.raw_path.decode() == path and {k: ours[k] for k in data} == data
    assert all(r.headers.get("Wechatpay-Serial") == "PUB_KEY_ID_1" for r in seen)   # on every request
    reference_path = reference_wechat(trade_bill, "2026-01-02")[0]
    assert "tar_type=GZIP" in reference_path   # the SDK asks for it gzipped, as the plugin does


# ---- Alipay against alipay-sdk-python's models ----

def alipay() -> tuple[Any, list]:
    from plugins.alipay import wire
    from plugins.alipay.channel import AlipayChannel

    app_key, alipay_key = wire.new_key(), wire.new_key()

    def answer(request: httpx.Request) -> httpx.Response:
        method = dict(httpx.QueryParams(request.content.decode()))["method"]
        return httpx.Response(200, content=wire.signed_response(alipay_key, method, {
            "code": "10000", "msg": "Success", "unsettled_amount": "0.00", "fund_change": "Y",
            "royalty_detail_list": [{"state": "SUCCESS"}], "refund_status": "REFUND_SUCCESS",
            "refund_amount": "1.00"}))

    channel, seen = captured(AlipayChannel, {"app_id": "2021000000000001", "app_private_key": wire.private_pem(app_key),
                                             "alipay_public_key": wire.public_pem(alipay_key.public_key()),
                                             "seller_id": "2088102177846880"}, answer)
    return channel, seen


def sent(request: httpx.Request) -> tuple[str, dict]:
    form = dict(httpx.QueryParams(request.content.decode()))
    return form["method"], json.loads(form["biz_content"])


def test_alipay_requests_are_what_alipays_sdk_models_hold() -> None:
    """Each biz_content read into the SDK's model and written back is unchanged: no field the SDK does
    not know, none in another shape."""
    from alipay.aop.api.domain.AlipayTradeFastpayRefundQueryModel import AlipayTradeFastpayRefundQueryModel
    from alipay.aop.api.domain.AlipayTradeOrderOnsettleQueryModel import AlipayTradeOrderOnsettleQueryModel
    from alipay.aop.api.domain.AlipayTradeOrderSettleModel import AlipayTradeOrderSettleModel
    from alipay.aop.api.domain.AlipayTradeRefundModel import AlipayTradeRefundModel

    channel, seen = alipay()
    asyncio.run(channel.finish_split(SplitFinish("F1", "T1", "2026010222001", 500, "CNY", "done")))
    settles = [sent(r) for r in seen if sent(r)[0] == "alipay.trade.order.settle"]
    assert settles == [("alipay.trade.order.settle", {"out_request_no": "F1", "trade_no": "2026010222001",
                                                      "extend_params": {"royalty_finish": "true"}})]
    assert AlipayTradeOrderSettleModel.from_alipay_dict(settles[0][1]).to_alipay_dict() == settles[0][1]
    [onsettle] = [sent(r) for r in seen if sent(r)[0] == "alipay.trade.order.onsettle.query"]
    assert AlipayTradeOrderOnsettleQueryModel.from_alipay_dict(onsettle[1]).to_alipay_dict() == onsettle[1]
    seen.clear()
    asyncio.run(channel.split(SplitRequest("S1", "T1", "2026010222001", 300, "CNY", "merchant", "2088102177840000",
                                           "分店", "goods")))
    settle = next(biz for method, biz in map(sent, seen) if method == "alipay.trade.order.settle")
    assert AlipayTradeOrderSettleModel.from_alipay_dict(settle).to_alipay_dict() == settle
    seen.clear()
    asyncio.run(channel.refund(RefundRequest("T1", "R1", 100, 1000, "CNY", "退货")))
    method, biz = sent(seen[0])
    assert method == "alipay.trade.refund"
    assert AlipayTradeRefundModel.from_alipay_dict(biz).to_alipay_dict() == biz
    asyncio.run(channel.query_refund("T1", "R1"))
    method, biz = sent(seen[-1])
    assert method == "alipay.trade.fastpay.refund.query"
    assert AlipayTradeFastpayRefundQueryModel.from_alipay_dict(biz).to_alipay_dict() == biz
