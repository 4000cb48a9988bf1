"""The public shapes of API objects, in one place (the OpenAPI document describes the same)."""
from __future__ import annotations

from datetime import datetime
from typing import Any


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
        "fee": p.fee_amount,
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
        "reason": r.reason,
        "channel_refund_id": r.channel_refund_id,
        "failure": {"code": r.failure_code, "message": r.failure_message} if r.failure_code else None,
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
