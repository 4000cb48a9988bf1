"""WeChat Pay APIv3's answers and what each means to paymux, as pure tables (no I/O).

Every answer is one of three kinds:
  final      the channel's last word: SUCCEEDED, FAILED (nothing was or will be done) or CLOSED;
  unknown    it may or may not have acted (timeout, 5xx, SYSTEM_ERROR): UNKNOWN, never a failure. paymux
             asks (queries) and sends again only under the same number, and only if the query finds
             no record;
  ask again  it has it and has not finished, or said "not now" without acting: PENDING (or UNKNOWN,
             when it did not take the request): asked again on the janitor's schedule.
A refusal of a refund, split, return or release counts only once a query finds no record of it
(ResentOperation.send_confirmed in gateway/operations.py): a resend of one WeChat Pay took can be
refused as a repeat.

Each row names where the meaning comes from. Sources (read 2025-2026):
  [ERR]     the APIv3 error-code tables of the transaction APIs (e.g. 关闭订单, 错误码 / 业务错误码:
            https://pay.weixin.qq.com/docs/partner/apis/partner-miniprogram-payment/close-order.html)
  [REFUND]  退款申请 (POST /v3/refund/domestic/refunds), 错误码 table, as published on
            https://pay.weixin.qq.com/doc/v3/partner/4012886219 and copied in the SDK notes
            (egzosn/pay-java-parent WxRefundResult: "500 SYSTEM_ERROR … 请不要更换商户退款单号，请使用相同参数再次
            调用API", "403 USER_ACCOUNT_ABNORMAL 退款请求失败 … 商户可自行处理退款", "429 FREQUENCY_LIMITED 该笔退款未受理")
  [RSTATE]  退款 开发指引, 退款状态 (https://pay.weixin.qq.com/doc/v3/merchant/4013071031): SUCCESS, CLOSED
            ("退款处理中超过7天 … 余额不足 … 可充值后生成新的商户退款单号"), PROCESSING, ABNORMAL ("退款到银行发现用户的卡作废或者
            冻结了 … 前往商户平台-交易中心，手动处理此笔退款。或调用发起异常退款API"), and 发起异常退款
            (POST /v3/refund/domestic/refunds/{refund_id}/apply-abnormal-refund, 4012810603: the money waits in
            WeChat Pay's refund account until a person sends it to a card or back to the merchant)
  [RQUERY]  查询单笔退款 (GET /v3/refund/domestic/refunds/{out_refund_no}, 4012760530): 404 RESOURCE_NOT_EXISTS
            "退款单不存在"; FREQUENCY_LIMITED "可间隔1分钟再重试查询"
  [RNOTIFY] 退款结果通知: event_type REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED, resource.refund_status
  [TRADE]   查询订单 trade_state: SUCCESS, REFUND, NOTPAY, CLOSED, REVOKED, USERPAYING, PAYERROR
  [SHARE]   请求分账 / 查询分账结果 / 解冻剩余资金 (https://pay.weixin.qq.com/docs/merchant/products/profit-sharing/
            apilist.html, …/apis/profit-sharing/orders/unfreeze-order.html): state PROCESSING / FINISHED, each
            receiver's result PENDING / SUCCESS / CLOSED; "同一分账单号多次请求等同一次"; the 常见问题
            (https://pay.weixin.qq.com/doc/v3/merchant/4014547102): 非分账订单, 分账金额不足, 超出最大分账比例 (final)
  [RETURN]  请求分账回退 / 查询分账回退结果: result PROCESSING / SUCCESS / FAILED
"""
from __future__ import annotations

from dataclasses import dataclass

from gateway.channel import Outcome


@dataclass(frozen=True)
class Row:
    outcome: Outcome
    source: str
    attention: str | None = None    # the channel holds it and a person must act


# ---- states in answers and callbacks ----

TRADE_STATE = {
    "SUCCESS": Row(Outcome.SUCCEEDED, "[TRADE] 支付成功"),
    "REFUND": Row(Outcome.SUCCEEDED, "[TRADE] 转入退款: it was paid"),
    "NOTPAY": Row(Outcome.PENDING, "[TRADE] 未支付"),
    "USERPAYING": Row(Outcome.PENDING, "[TRADE] 用户支付中"),
    "CLOSED": Row(Outcome.CLOSED, "[TRADE] 已关闭"),
    "REVOKED": Row(Outcome.CLOSED, "[TRADE] 已撤销"),
    "PAYERROR": Row(Outcome.FAILED, "[TRADE] 支付失败"),
}

REFUND_STATUS = {
    "SUCCESS": Row(Outcome.SUCCEEDED, "[RSTATE] 退款成功"),
    "PROCESSING": Row(Outcome.PENDING, "[RSTATE] 退款处理中: ask again"),
    "CLOSED": Row(Outcome.FAILED, "[RSTATE] 退款关闭: closed after 7 days without funds; a new number may refund"),
    "ABNORMAL": Row(Outcome.PENDING, "[RSTATE] 退款异常: the money left the merchant, the payer's bank refused it",
                    attention="WeChat Pay could not return the money to the payer's card (ABNORMAL): resolve it at "
                              "the merchant platform (交易中心) or with apply-abnormal-refund; do not refund again"),
}

SHARING_RESULT = {
    "PENDING": Row(Outcome.PENDING, "[SHARE] 待分账"),
    "SUCCESS": Row(Outcome.SUCCEEDED, "[SHARE] 分账成功"),
    "CLOSED": Row(Outcome.FAILED, "[SHARE] 已关闭: the receiver could not take it; WeChat Pay keeps it for the payer"),
}

SHARING_STATE = {   # a finish (unfreeze) order has no receiver of ours: its state decides
    "PROCESSING": Row(Outcome.PENDING, "[SHARE] 处理中"),
    "FINISHED": Row(Outcome.SUCCEEDED, "[SHARE] 分账完成"),
}

RETURN_RESULT = {
    "PROCESSING": Row(Outcome.PENDING, "[RETURN] 处理中"),
    "SUCCESS": Row(Outcome.SUCCEEDED, "[RETURN] 已成功"),
    "FAILED": Row(Outcome.FAILED, "[RETURN] 已失败"),
}

# ---- refusals (HTTP status, code) of requests that would move money ----
# A code not in a table is unknown: paymux never fails on an answer it cannot place.

CREATE_REFUSED = {
    (400, "PARAM_ERROR"): Row(Outcome.FAILED, "[ERR] 参数错误"),
    (400, "INVALID_REQUEST"): Row(Outcome.FAILED, "[ERR] 无效请求"),
    (400, "APPID_MCHID_NOT_MATCH"): Row(Outcome.FAILED, "[ERR] AppID和mch_id不匹配"),
    (400, "MCH_NOT_EXISTS"): Row(Outcome.FAILED, "[ERR] 商户号不存在"),
    (400, "ORDER_CLOSED"): Row(Outcome.FAILED, "[ERR] 订单已关闭"),
    (403, "ACCOUNT_ERROR"): Row(Outcome.FAILED, "[ERR] 账号异常"),
    (403, "NO_AUTH"): Row(Outcome.FAILED, "[ERR] 商户无权限: another account may take it"),
    (403, "NOT_ENOUGH"): Row(Outcome.FAILED, "[ERR] 余额不足"),
    (403, "RULE_LIMIT"): Row(Outcome.FAILED, "[ERR] 业务规则限制: another account may take it"),
    (403, "TRADE_ERROR"): Row(Outcome.FAILED, "[ERR] 交易错误"),
    # The number is taken there: that order may well be paid. Not a failure; the query decides.
    (403, "OUT_TRADE_NO_USED"): Row(Outcome.UNKNOWN, "[ERR] 商户订单号重复: the order exists at WeChat Pay"),
    (429, "FREQUENCY_LIMITED"): Row(Outcome.UNKNOWN, "[ERR] 频率超限: not taken, try later"),
    (500, "SYSTEM_ERROR"): Row(Outcome.UNKNOWN, "[ERR] 系统异常，请稍后重试"),
    (500, "BANK_ERROR"): Row(Outcome.UNKNOWN, "[ERR] 银行系统异常"),
}
CREATE_RETRYABLE = {"NO_AUTH", "RULE_LIMIT", "ACCOUNT_ERROR", "MCH_NOT_EXISTS", "APPID_MCHID_NOT_MATCH"}

REFUND_REFUSED = {
    (400, "PARAM_ERROR"): Row(Outcome.FAILED, "[REFUND] 参数错误"),
    (400, "INVALID_REQUEST"): Row(Outcome.FAILED, "[REFUND] 不符合业务规则: 此状态代表退款申请失败"),
    (403, "NOT_ENOUGH"): Row(Outcome.FAILED, "[REFUND] 余额不足: 此状态代表退款申请失败"),
    (403, "NO_AUTH"): Row(Outcome.FAILED, "[REFUND] 没有退款权限: 此状态代表退款申请失败"),
    (403, "USER_ACCOUNT_ABNORMAL"): Row(Outcome.FAILED, "[REFUND] 退款请求失败: 商户可自行处理退款"),
    (404, "MCH_NOT_EXISTS"): Row(Outcome.FAILED, "[REFUND] MCHID不存在"),
    (404, "RESOURCE_NOT_EXISTS"): Row(Outcome.FAILED, "[REFUND] 订单号不存在: 未支付的订单不能发起退款"),
    (429, "FREQUENCY_LIMITED"): Row(Outcome.UNKNOWN, "[REFUND] 频率限制: 该笔退款未受理，请降低频率后重试"),
    (500, "SYSTEM_ERROR"): Row(Outcome.UNKNOWN, "[REFUND] 系统超时: 请不要更换商户退款单号，请使用相同参数再次调用"),
}

SHARE_REFUSED = {   # 请求分账, 请求分账回退, 解冻剩余资金
    (400, "PARAM_ERROR"): Row(Outcome.FAILED, "[ERR] 参数错误"),
    (400, "INVALID_REQUEST"): Row(Outcome.FAILED, "[SHARE] 非分账订单 / 接收方关系不存在 / 超出最大分账比例"),
    (403, "NO_AUTH"): Row(Outcome.FAILED, "[SHARE] 无分账权限"),
    (403, "NOT_ENOUGH"): Row(Outcome.FAILED, "[SHARE] 分账金额不足"),
    (429, "FREQUENCY_LIMITED"): Row(Outcome.UNKNOWN, "[SHARE] 频率超限: try later"),
    (500, "SYSTEM_ERROR"): Row(Outcome.UNKNOWN, "[SHARE] 系统错误: 请使用相同参数稍后重新调用"),
}

# A query's "no such thing" (404 RESOURCE_NOT_EXISTS / ORDER_NOT_EXIST): it never took effect there.
NOT_FOUND = {"RESOURCE_NOT_EXISTS", "ORDER_NOT_EXIST"}


def refused(table: dict[tuple[int, str], Row], status: int, code: str) -> Row:
    """The row for a refusal; anything not listed (401 SIGN_ERROR, a new code, a 5xx) is unknown."""
    return table.get((status, code)) or Row(Outcome.UNKNOWN, f"not in the table: {status} {code} is not final")
