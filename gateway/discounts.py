"""Discounts on paid orders: believed only from the channel's verified answer, checked against the
order, kept on the payment, shared out again by refunds.

A merchant's request never carries a discount: the amount it asks the payer for is all it says
about money. What the payer did not pay, who funded it and what the channel keeps of it come from
the channel (WeChat Pay's promotion_detail and payer_total, Alipay's voucher_detail_list and
receipt_amount, the sandbox's the same way); the ledger books them by funder (ledger/booking.py).
"""
from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy import Connection, Row, select

from gateway.channel import Discount, PaymentResult
from gateway.models import Refund
from ledger.booking import Booker, DiscountFacts, PaymentBooking, RefundShares

refunds = Refund.__table__


def problem(order_amount: int, result: PaymentResult) -> str | None:
    """Why a success's discount figures cannot be true of this order, or None. Such an answer is
    recorded as a mismatch and not applied, like one for another amount."""
    for d in result.discounts:
        if (why := d.problem()) is not None:
            return why
    total = sum(d.amount for d in result.discounts)
    kept = sum(d.unsettled for d in result.discounts)
    if total > order_amount:
        return f"discounts of {total} on an order of {order_amount}"
    if result.payer_amount is not None and result.payer_amount != order_amount - total:
        return f"the payer paid {result.payer_amount} of {order_amount} with discounts of {total}"
    if result.settled_amount is not None and result.settled_amount != order_amount - kept:
        return f"the channel pays {result.settled_amount} of {order_amount} while keeping {kept}"
    return None


def facts(discounts: tuple[Discount, ...]) -> tuple[DiscountFacts, ...]:
    return tuple(DiscountFacts(d.amount, d.unsettled, d.campaign, d.other_funded) for d in discounts)


def stored(discounts: tuple[Discount, ...], booking: PaymentBooking) -> dict[str, Any] | None:
    """What a payment keeps of its discounts (payments.discounts)."""
    if not discounts:
        return None
    return {"lines": [{"amount": d.amount, "merchant_funded": d.merchant_funded, "channel_funded": d.channel_funded,
                       "other_funded": d.other_funded, "kept_by_channel": d.unsettled, "campaign": d.campaign,
                       "name": d.name[:64]} for d in discounts],
            "campaigns": dict(booking.campaigns)}


def rendered(p: Row) -> dict[str, Any] | None:
    """The merchant's view of a paid payment's discounts (the payment object's `discount`)."""
    if not p.discounts:
        return None
    lines = p.discounts.get("lines", [])
    return {"amount": sum(line["amount"] for line in lines), "kept_by_channel": p.discount_amount,
            "paid_back_by_platform": sum(p.discounts.get("campaigns", {}).values()),
            "lines": [{"amount": line["amount"], "name": line["name"], "campaign": line["campaign"],
                       "funded_by": {"merchant": line["merchant_funded"], "channel": line["channel_funded"],
                                     "other": line["other_funded"]},
                       "kept_by_channel": line["kept_by_channel"]} for line in lines]}


def refund_shares(conn: Connection, p: Row, refund_amount: int, completes: bool) -> RefundShares:
    """A refund's share of what the channel kept and of what each campaign paid back
    (Booker.discount_share), counting what earlier refunds that did not fail took."""
    campaigns: Mapping[str, int] = (p.discounts or {}).get("campaigns", {})
    if not p.discount_amount and not any(campaigns.values()):
        return RefundShares()
    before = conn.execute(select(refunds.c.discount_refund, refunds.c.campaign_refund).where(
        refunds.c.payment_id == p.id, refunds.c.status != "failed", refunds.c.kind == "merchant")).all()

    def share(total: int, taken: int) -> int:
        return Booker.discount_share(total, p.amount, refund_amount, taken, completes)

    discount = share(p.discount_amount, sum(int(r.discount_refund) for r in before))
    shares = {cid: share(amount, sum((r.campaign_refund or {}).get(cid, 0) for r in before))
              for cid, amount in sorted(campaigns.items()) if amount}
    return RefundShares(discount, {cid: amount for cid, amount in shares.items() if amount})


__all__ = ["facts", "problem", "refund_shares", "rendered", "stored"]
