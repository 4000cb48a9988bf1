"""Alipay OpenAPI's answers and what each means to paymux, as pure tables (no I/O).

Kinds, as in plugins/wechatpay/answers.py: final (SUCCEEDED, FAILED, CLOSED), unknown (it may or may not
have acted: UNKNOWN, asked about, sent again under the same number only if the query finds nothing),
ask again (PENDING: it has it and has not finished). A refusal of a refund or a settle counts only once
a query finds no record of it (the core asks before failing anything).

Sources (read 2025-2026):
  [GW]       公共错误码: 10000 接口调用成功; 20000 服务不可用 (isp.unknow-error, "服务暂不可用…请稍后重试"); 20001 授权权限不足;
             40001 缺少必选参数; 40002 非法的参数; 40004 业务处理失败 (see sub_code); 40006 权限不足
  [REFUND]   alipay.trade.refund 错误码, as copied in SDK notes (e.g. ACQ.SYSTEM_ERROR 系统错误 "请使用相同的参数再次调用";
             ACQ.SELLER_BALANCE_NOT_ENOUGH 卖家余额不足; ACQ.REFUND_AMT_NOT_EQUAL_TOTAL 退款金额超限;
             ACQ.REASON_TRADE_BEEN_FREEZEN; ACQ.TRADE_NOT_EXIST; ACQ.TRADE_HAS_FINISHED; ACQ.TRADE_STATUS_ERROR 交易状态非法
             "查询交易，确认交易是否已经付款"; ACQ.DISCORDANT_REPEAT_REQUEST 不一致的请求; ACQ.REASON_TRADE_REFUND_FEE_ERR 退款金额无效;
             ACQ.TRADE_NOT_ALLOW_REFUND; ACQ.REFUND_FEE_ERROR) and its answer: fund_change "本次退款是否发生了资金变化" —
             only Y says money moved now (alipay-sdk-java-all AlipayTradeRefundResponseModel); anything else is
             confirmed by alipay.trade.fastpay.refund.query
  [RQUERY]   alipay.trade.fastpay.refund.query (https://docs.open.alipay.com/api_1/alipay.trade.fastpay.refund.query):
             "该接口的返回码10000，仅代表本次查询操作成功，不代表退款成功。如果该接口返回了查询数据，则代表退款成功，如果没有查询到
             则代表未退款成功，可以调用退款接口进行重试。重试时请务必保证退款请求号一致"; refund_status REFUND_SUCCESS
  [TRADE]    alipay.trade.query trade_status: WAIT_BUYER_PAY, TRADE_CLOSED, TRADE_SUCCESS, TRADE_FINISHED
  [PRECREATE] alipay.trade.precreate: ACQ.TRADE_HAS_SUCCESS 交易已被支付, ACQ.TRADE_HAS_CLOSE 交易已经关闭; and Alipay's
             answer on precreate orders (https://cloud.tencent.com/developer/article/1096089): "预下单并没有创建订单，所以根据
             商户订单号操作订单，比如查询或者关闭，会报错订单不存在。当用户扫码后订单才会创建，用户扫码之前二维码有效期2小时"
  [SETTLE]   alipay.trade.order.settle (opendocs, copied at https://zhifubao.apifox.cn/api-126563053): "如果接口调用超时
             或者返回ACQ.SYSTEM_ERROR ACQ.TRADE_SETTLE_ERROR 当前请求可能成功也可能失败。请使用相同的参数再次重试调用，外部请求号和
             金额等均不能变更"; "建议支付成功后间隔 30s 再发起"; royalty_finish "本次分账处理完成后会把该笔交易的剩余冻结金额全额
             解冻", royalty_parameters "单独调用分账完结时，可以不传此参数" (alipay-sdk-java-all SettleExtendParams,
             AlipayTradeOrderSettleModel); alipay.trade.order.settle.query royalty_detail_list state SUCCESS/FAIL/PROCESSING;
             alipay.trade.order.onsettle.query unsettled_amount 剩余可分金额; 商家分账 product notes: "分账分出金额最高不能
             超过订单金额的 30%" unless the merchant raises it
"""
from __future__ import annotations

from dataclasses import dataclass

from gateway.channel import Outcome


@dataclass(frozen=True)
class Row:
    outcome: Outcome
    source: str


TRADE_STATUS = {
    "TRADE_SUCCESS": Row(Outcome.SUCCEEDED, "[TRADE] 交易支付成功"),
    "TRADE_FINISHED": Row(Outcome.SUCCEEDED, "[TRADE] 交易结束，不可退款"),
    "WAIT_BUYER_PAY": Row(Outcome.PENDING, "[TRADE] 交易创建，等待买家付款"),
    "TRADE_CLOSED": Row(Outcome.CLOSED, "[TRADE] 未付款交易超时关闭，或支付完成后全额退款"),
}

# Gateway codes other than 40004 (a business answer: see the sub_code tables).
GATEWAY = {
    "20000": Row(Outcome.UNKNOWN, "[GW] 服务不可用: try again later"),
    "20001": Row(Outcome.UNKNOWN, "[GW] 授权权限不足: nothing done; sent again once fixed"),
    "40001": Row(Outcome.FAILED, "[GW] 缺少必选参数"),
    "40002": Row(Outcome.FAILED, "[GW] 非法的参数"),
    "40006": Row(Outcome.FAILED, "[GW] 权限不足"),
}

PRECREATE_REFUSED = {
    "ACQ.SYSTEM_ERROR": Row(Outcome.UNKNOWN, "[PRECREATE] 系统错误"),
    "ACQ.INVALID_PARAMETER": Row(Outcome.FAILED, "[PRECREATE] 参数无效"),
    "ACQ.ACCESS_FORBIDDEN": Row(Outcome.FAILED, "[PRECREATE] 无权限使用接口"),
    "ACQ.EXIST_FORBIDDEN_WORD": Row(Outcome.FAILED, "[PRECREATE] 订单信息中包含违禁词"),
    "ACQ.PARTNER_ERROR": Row(Outcome.FAILED, "[PRECREATE] 应用APP_ID填写错误"),
    "ACQ.TOTAL_FEE_EXCEED": Row(Outcome.FAILED, "[PRECREATE] 订单总金额超过限额"),
    "ACQ.TRADE_HAS_CLOSE": Row(Outcome.FAILED, "[PRECREATE] 交易已经关闭"),
    # Paid already: not a failure. The query says how (the plugin asks at once).
    "ACQ.TRADE_HAS_SUCCESS": Row(Outcome.SUCCEEDED, "[PRECREATE] 交易已被支付"),
    "ACQ.CONTEXT_INCONSISTENT": Row(Outcome.UNKNOWN, "[PRECREATE] 交易信息被篡改: the number exists there"),
}

REFUND_REFUSED = {
    "ACQ.SYSTEM_ERROR": Row(Outcome.UNKNOWN, "[REFUND] 系统错误: 请使用相同的参数再次调用"),
    "ACQ.TRADE_SETTLE_ERROR": Row(Outcome.UNKNOWN, "[REFUND] 交易结算异常: ask"),
    "ACQ.INVALID_PARAMETER": Row(Outcome.FAILED, "[REFUND] 参数无效"),
    "ACQ.SELLER_BALANCE_NOT_ENOUGH": Row(Outcome.FAILED, "[REFUND] 卖家余额不足"),
    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL": Row(Outcome.FAILED, "[REFUND] 退款金额超限"),
    "ACQ.REASON_TRADE_BEEN_FREEZEN": Row(Outcome.FAILED, "[REFUND] 请求退款的交易被冻结"),
    "ACQ.TRADE_NOT_EXIST": Row(Outcome.FAILED, "[REFUND] 交易不存在"),
    "ACQ.TRADE_HAS_FINISHED": Row(Outcome.FAILED, "[REFUND] 交易已完结"),
    "ACQ.TRADE_STATUS_ERROR": Row(Outcome.FAILED, "[REFUND] 交易状态非法 (a resend of a refund that closed the "
                                                  "trade gets it too: the core's query decides)"),
    "ACQ.DISCORDANT_REPEAT_REQUEST": Row(Outcome.FAILED, "[REFUND] 不一致的请求"),
    "ACQ.REASON_TRADE_REFUND_FEE_ERR": Row(Outcome.FAILED, "[REFUND] 退款金额无效"),
    "ACQ.TRADE_NOT_ALLOW_REFUND": Row(Outcome.FAILED, "[REFUND] 当前交易不允许退款"),
    "ACQ.REFUND_FEE_ERROR": Row(Outcome.FAILED, "[REFUND] 交易退款金额有误"),
    "ACQ.BUYER_ERROR": Row(Outcome.FAILED, "[REFUND] 买家状态异常"),
    "ACQ.CUSTOMER_VALIDATE_ERROR": Row(Outcome.FAILED, "[REFUND] 账户已注销或者被冻结"),
}

SETTLE_REFUSED = {
    "ACQ.SYSTEM_ERROR": Row(Outcome.UNKNOWN, "[SETTLE] 当前请求可能成功也可能失败: 请使用相同的参数再次重试"),
    "ACQ.TRADE_SETTLE_ERROR": Row(Outcome.UNKNOWN, "[SETTLE] 当前请求可能成功也可能失败: 请使用相同的参数再次重试"),
    "ACQ.INVALID_PARAMETER": Row(Outcome.FAILED, "[SETTLE] 参数无效 (e.g. 分账关系未绑定)"),
    "ACQ.TRADE_NOT_EXIST": Row(Outcome.FAILED, "[SETTLE] 交易不存在"),
    "ACQ.TRADE_STATUS_ERROR": Row(Outcome.FAILED, "[SETTLE] 交易状态不合法: 必须为交易成功状态才允许进行分账"),
    "ACQ.DISCORDANT_REPEAT_REQUEST": Row(Outcome.FAILED, "[SETTLE] 请求被篡改: the core's query decides"),
    "ACQ.ALLOC_AMOUNT_VALIDATE_ERROR": Row(Outcome.FAILED, "[SETTLE] 分账金额超过最大可分账金额"),
    "ACQ.PARTNER_ERROR": Row(Outcome.FAILED, "[SETTLE] 应用APP_ID填写错误"),
}

ROYALTY_STATE = {
    "SUCCESS": Row(Outcome.SUCCEEDED, "[SETTLE] 分账成功"),
    "FAIL": Row(Outcome.FAILED, "[SETTLE] 分账失败"),
    "PROCESSING": Row(Outcome.PENDING, "[SETTLE] 处理中"),
}


def refused(table: dict[str, Row], code: str, sub_code: str) -> Row:
    """The row for an answer other than 10000: the gateway code first, then the business sub_code;
    anything not listed is unknown (never a failure on an answer paymux cannot place)."""
    if code != "40004":
        return GATEWAY.get(code) or Row(Outcome.UNKNOWN, f"gateway code {code} is not final")
    return table.get(sub_code) or Row(Outcome.UNKNOWN, f"not in the table: {sub_code} is not final")
