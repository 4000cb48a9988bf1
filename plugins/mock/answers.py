"""What the sandbox's answers mean: its status tables and the pure conversions of a verified answer (or
callback) into paymux's normalized results. No I/O: testable without a sandbox."""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from gateway.channel import ChannelEvent, Discount, Outcome, PaymentResult, PayoutResult, RefundResult, SplitResult

TRADE_STATUS = {"NOTPAY": Outcome.PENDING, "SUCCESS": Outcome.SUCCEEDED, "FAIL": Outcome.FAILED,
                "CLOSED": Outcome.CLOSED}
REFUND_STATUS = {"PROCESSING": Outcome.PENDING, "SUCCESS": Outcome.SUCCEEDED, "FAIL": Outcome.FAILED}
# Payouts and splits move through the same three states as refunds; a paid payout the receiving bank
# sent back is RETURNED (the sandbox's payout_return_days fault), with return_code and return_message.
MOVE_STATUS = REFUND_STATUS
PAYOUT_STATUS = {**MOVE_STATUS, "RETURNED": Outcome.RETURNED}
# What the sandbox's payout answers mean (the sandbox's own rules, plugins/mock/simulator.py):
# PROCESSING ask again; SUCCESS and FAIL final; error AMOUNT_INVALID final (nothing was taken);
# PAYOUT_NOT_EXIST "no record (yet)": ask again, never a failure nor a reason to send it again;
# any other error or garbage unknown.
PAYOUT_FINAL_ERRORS = ("AMOUNT_INVALID",)
REFUND_DECLINED = ("REFUND_EXCEEDS", "ORDER_NOT_PAID")   # final refusals; any other error is unknown
SPLIT_DECLINED = ("ORDER_NOT_PAID", "SPLIT_EXCEEDS")
RETURN_DECLINED = ("RETURN_EXCEEDS", "SPLIT_NOT_FINISHED")
UNHEARD = ("PAYOUT_NOT_EXIST", "SPLIT_NOT_EXIST", "RETURN_NOT_EXIST")

R = TypeVar("R", PayoutResult, SplitResult)


def discounts(promotions: list[dict[str, Any]]) -> tuple[Discount, ...]:
    """The sandbox's promotions, as verified in its signed answer."""
    return tuple(Discount(int(p["amount"]), int(p["merchant_contribute"]), int(p["channel_contribute"]),
                          int(p["other_contribute"]), int(p["amount"]) if p["kept"] else 0, p.get("coupon_id"),
                          str(p.get("name", ""))) for p in promotions)


def trade(data: dict[str, Any]) -> PaymentResult:
    if "error" in data:
        return PaymentResult(Outcome.UNKNOWN, error_code=str(data["error"]), error_message=data.get("message"))
    return PaymentResult(TRADE_STATUS.get(data.get("trade_status"), Outcome.UNKNOWN),
                         channel_transaction_id=data.get("transaction_id"), amount=data.get("amount"),
                         currency=data.get("currency"), discounts=discounts(data.get("promotions") or []),
                         payer_amount=data.get("payer_amount"), settled_amount=data.get("settled_amount"))


def refund(data: dict[str, Any]) -> RefundResult:
    if "error" in data:
        declined = data["error"] in REFUND_DECLINED
        # REFUND_NOT_EXIST (a query's): it never reached the sandbox; send it again under its number.
        return RefundResult(Outcome.FAILED if declined else Outcome.UNKNOWN, error_code=str(data["error"]),
                            error_message=data.get("message"), unheard=data["error"] == "REFUND_NOT_EXIST")
    return RefundResult(REFUND_STATUS.get(data.get("refund_status"), Outcome.UNKNOWN),
                        channel_refund_id=data.get("refund_id"), amount=data.get("amount"))


def moved(data: dict[str, Any], id_key: str, declined: tuple[str, ...], result: Callable[..., R]) -> R:
    """A split's or a return's answer (result: SplitResult), declined: the errors that are final."""
    if "error" in data:
        if data["error"] in UNHEARD:
            return result(Outcome.UNKNOWN, error_code=str(data["error"]), unheard=True)
        return result(Outcome.FAILED if data["error"] in declined else Outcome.UNKNOWN,
                      error_code=str(data["error"]), error_message=data.get("message"))
    return result(MOVE_STATUS.get(data.get("status"), Outcome.UNKNOWN), data.get(id_key),
                  error_code=data.get("fail_code"), error_message=data.get("fail_message"))


def payout(data: dict[str, Any]) -> PayoutResult:
    if "error" in data:
        if data["error"] == "PAYOUT_NOT_EXIST":
            return PayoutResult(Outcome.PENDING, error_code="PAYOUT_NOT_EXIST", unheard=True)
        return PayoutResult(Outcome.FAILED if data["error"] in PAYOUT_FINAL_ERRORS else Outcome.UNKNOWN,
                            error_code=str(data["error"]), error_message=data.get("message"))
    return PayoutResult(PAYOUT_STATUS.get(data.get("status"), Outcome.UNKNOWN), data.get("payout_id"),
                        error_code=data.get("fail_code") or data.get("return_code"),
                        error_message=data.get("fail_message") or data.get("return_message"))


def callback_events(data: dict[str, Any]) -> list[ChannelEvent]:
    """A verified callback's body as events; KeyError, TypeError or ValueError when it garbles one."""
    if data["event"] == "payout":
        return [ChannelEvent("payout", data["out_payout_no"], PAYOUT_STATUS[data["status"]],
                             amount=int(data["amount"]), channel_transaction_id=data.get("payout_id"),
                             error_code=data.get("return_code"))]
    if data["event"] == "split":
        return [ChannelEvent("split", data["out_trade_no"], MOVE_STATUS[data["status"]],
                             amount=int(data["amount"]), channel_transaction_id=data.get("split_id"),
                             out_split_no=data["out_split_no"])]
    if data["event"] == "refund":
        return [ChannelEvent("refund", data["out_trade_no"], REFUND_STATUS[data["refund_status"]],
                             amount=int(data["amount"]), out_refund_no=data["out_refund_no"],
                             channel_refund_id=data.get("refund_id"))]
    paid = trade(data)
    return [ChannelEvent("payment", data["out_trade_no"], TRADE_STATUS[data["trade_status"]],
                         amount=int(data["amount"]), currency=data["currency"],
                         channel_transaction_id=data.get("transaction_id"), discounts=paid.discounts,
                         payer_amount=paid.payer_amount, settled_amount=paid.settled_amount)]
