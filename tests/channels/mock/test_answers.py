"""The sandbox's answers mean what its own rules say, read without any HTTP (plugins/mock/answers.py)."""
from __future__ import annotations

import pytest

from gateway.channel import Outcome, PayoutResult, SplitResult
from plugins.mock import answers


def test_a_trade_is_decided_only_by_a_status_the_sandbox_documents() -> None:
    paid = answers.trade({"trade_status": "SUCCESS", "transaction_id": "t1", "amount": 100, "currency": "CNY",
                          "promotions": [{"amount": 10, "merchant_contribute": 10, "channel_contribute": 0,
                                          "other_contribute": 0, "kept": False, "coupon_id": "c1"}]})
    assert (paid.outcome, paid.channel_transaction_id, paid.amount) == (Outcome.SUCCEEDED, "t1", 100)
    assert paid.discounts[0].amount == 10 and paid.discounts[0].unsettled == 0
    assert answers.trade({"trade_status": "WHATEVER"}).outcome is Outcome.UNKNOWN
    assert answers.trade({"error": "SYSTEM_ERROR"}).outcome is Outcome.UNKNOWN


def test_a_refund_refused_for_cause_is_final_and_an_unheard_one_may_be_sent_again() -> None:
    assert answers.refund({"error": "REFUND_EXCEEDS"}).outcome is Outcome.FAILED
    unheard = answers.refund({"error": "REFUND_NOT_EXIST"})
    assert (unheard.outcome, unheard.unheard) == (Outcome.UNKNOWN, True)
    assert answers.refund({"refund_status": "PROCESSING"}).outcome is Outcome.PENDING


def test_a_payout_unheard_is_pending_never_failed() -> None:
    assert answers.payout({"error": "PAYOUT_NOT_EXIST"}) == PayoutResult(Outcome.PENDING,
                                                                          error_code="PAYOUT_NOT_EXIST", unheard=True)
    assert answers.payout({"error": "AMOUNT_INVALID"}).outcome is Outcome.FAILED
    assert answers.payout({"error": "BUSY"}).outcome is Outcome.UNKNOWN
    assert answers.payout({"status": "SUCCESS", "payout_id": "p1"}).channel_payout_id == "p1"


def test_a_split_refusal_is_final_only_for_the_errors_named() -> None:
    refused = answers.moved({"error": "SPLIT_EXCEEDS"}, "split_id", answers.SPLIT_DECLINED, SplitResult)
    assert refused.outcome is Outcome.FAILED
    assert answers.moved({"error": "SPLIT_EXCEEDS"}, "split_id", (), SplitResult).outcome is Outcome.UNKNOWN
    assert answers.moved({"error": "SPLIT_NOT_EXIST"}, "split_id", (), SplitResult).unheard


def test_a_callback_body_becomes_its_event_and_a_garbled_one_raises() -> None:
    [event] = answers.callback_events({"event": "refund", "out_trade_no": "o1", "refund_status": "SUCCESS",
                                       "amount": "30", "out_refund_no": "r1"})
    assert (event.kind, event.outcome, event.amount, event.out_refund_no) == ("refund", Outcome.SUCCEEDED, 30, "r1")
    with pytest.raises(KeyError):
        answers.callback_events({"event": "payout", "status": "SUCCESS"})
