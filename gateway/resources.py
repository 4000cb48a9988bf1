"""The public shapes of API objects, in one place (the OpenAPI document describes the same)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway import discounts
from gateway.redact import masked, masked_name  # noqa: F401  (how account numbers and names are shown back)


def iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat().replace("+00:00", "Z")


def payment_object(p: Any) -> dict[str, Any]:
    """p: a payments row with the latest attempt's attempt_action and attempt_out_trade_no."""
    return {
        "id": p.id,
        "object": "payment",
        "merchant_order_no": p.merchant_order_no,
        "status": p.status,
        "amount": p.amount,
        "currency": p.currency,
        "amount_refunded": p.refunded_amount,
        "amount_refund_pending": p.refund_pending_amount,
        "amount_split": p.split_amount,
        "amount_frozen": p.frozen_amount,
        "splittable": p.splittable,
        "fee": p.fee_amount,
        # From the channel's verified answer at success: its coupons, who funded them, what it kept
        "discount": discounts.rendered(p),
        "subject": p.subject,
        "channel": p.channel_account,
        "method": p.method,
        "action": p.attempt_action if p.status == "processing" else None,
        "channel_transaction_id": p.channel_transaction_id,
        "out_trade_no": p.attempt_out_trade_no,
        "notify_url": p.notify_url,
        "metadata": p.metadata,
        "failure": {"code": p.failure_code, "message": p.failure_message} if p.failure_code else None,
        "expires_at": iso(p.expires_at),
        "paid_at": iso(p.paid_at),
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
    }


def refund_object(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "object": "refund",
        "payment_id": r.payment_id,
        "kind": r.kind,
        "merchant_refund_no": r.merchant_refund_no,
        "status": r.status,
        "amount": r.amount,
        "currency": r.currency,
        "fee_refund": r.fee_refund,
        "discount_refund": r.discount_refund,
        "reason": r.reason,
        "channel_refund_id": r.channel_refund_id,
        "failure": {"code": r.failure_code, "message": r.failure_message} if r.failure_code else None,
        # Still processing, and the channel says a person must act (WeChat Pay ABNORMAL); still reserved
        "attention": {"code": r.attention_code, "message": r.attention_message, "since": iso(r.attention_at)}
        if r.attention_code and r.status == "processing" else None,
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
    }


def attempt_object(a: Any) -> dict[str, Any]:
    """One attempt of a payment: where it went, why (routing), and what the channel said."""
    return {
        "id": a.id,
        "object": "attempt",
        "payment_id": a.payment_id,
        "channel": a.channel_account,
        "method": a.method,
        "status": a.status,
        "out_trade_no": a.out_trade_no,
        "channel_transaction_id": a.channel_transaction_id,
        "error": {"code": a.error_code, "message": a.error_message} if a.error_code else None,
        "routing": a.routing,
        "created_at": iso(a.created_at),
        "updated_at": iso(a.updated_at),
    }


def payout_object(p: Any) -> dict[str, Any]:
    return {
        "id": p.id,
        "object": "payout",
        "merchant_payout_no": p.merchant_payout_no,
        "status": p.status,
        "amount": p.amount,
        "fee": p.fee,
        "currency": p.currency,
        "bank_account": {"name": p.account_name_masked, "number": p.account_no_masked, "bank_code": p.bank_code},
        "remark": p.remark,
        "channel": p.channel_account,
        "receiver": p.receiver_id,
        "out_payout_no": p.out_payout_no,
        "channel_payout_id": p.channel_payout_id,
        "routing": p.routing,
        "failure": {"code": p.failure_code, "message": p.failure_message} if p.failure_code else None,
        "notify_url": p.notify_url,
        "created_at": iso(p.created_at),
        "updated_at": iso(p.updated_at),
        "finished_at": iso(p.finished_at),
        "returned_at": iso(p.returned_at),
    }


def receiver_object(r: Any) -> dict[str, Any]:
    """Who the receiver is, masked (the merchant registered it; it is kept sealed)."""
    return {"id": r.id, "object": "receiver", "type": r.type, "name": r.name_masked, "account": r.account_masked,
            "bindings": r.bindings, "status": r.status, "held_by": r.held_by, "settlement_days": r.settlement_days,
            "created_at": iso(r.created_at)}


def split_object(s: Any) -> dict[str, Any]:
    return {
        "id": s.id,
        "object": "split",
        "payment_id": s.payment_id,
        "merchant_split_no": s.merchant_split_no,
        "receiver": s.receiver_id,
        "status": s.status,
        "amount": s.amount,
        "amount_returned": s.returned_amount,
        "currency": s.currency,
        "description": s.description,
        "channel": s.channel_account,
        "out_split_no": s.out_split_no,
        "channel_split_id": s.channel_split_id,
        "failure": {"code": s.failure_code, "message": s.failure_message} if s.failure_code else None,
        "created_at": iso(s.created_at),
        "updated_at": iso(s.updated_at),
    }
