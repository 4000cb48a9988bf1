"""Booking business events through the templates in conf/ledger.toml.

The gateway calls these inside the same transaction as the state change they record. Keys are
`{reference}:{event_type}` (e.g. `payment:pay_1:payment.succeeded`), so booking twice is a no-op.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping

from sqlalchemy import Connection

from ledger.chart import fee_for
from ledger.core import AccountRef, Entry, Ledger, Posting
from ledger.errors import InsufficientBalance, InvalidEntry, LedgerError

COUPON_FUNDERS = ("platform", "merchant")


@dataclass(frozen=True)
class PaymentFacts:
    payment_id: str
    merchant_id: str
    channel_account: str
    amount: int
    currency: str
    metadata: Mapping[str, str] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        return f"payment:{self.payment_id}"


def coupon(metadata: Mapping[str, str]) -> tuple[int, str | None]:
    """(coupon_amount, coupon_funded_by) from payment metadata; raises ValueError if malformed."""
    raw = metadata.get("coupon_amount")
    if raw is None:
        return 0, None
    if not raw.isdigit() or len(raw) > 13:
        raise ValueError("coupon_amount must be a non-negative integer in minor units")
    funded_by = metadata.get("coupon_funded_by")
    if funded_by not in COUPON_FUNDERS:
        raise ValueError("coupon_funded_by must be platform or merchant when coupon_amount is set")
    return int(raw), funded_by


class Booker:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.chart = ledger.chart

    def book(self, conn: Connection, event_type: str, reference: str, *, merchant_id: str, channel_account: str,
             currency: str, variables: Mapping[str, int], now: datetime, memo: str | None = None,
             receiver_id: str = "") -> Entry:
        """Turn one business event into one entry, as its template says."""
        template = self.chart.template(event_type)
        key = f"{reference}:{event_type}"
        if template.reverses is not None:
            original = self.ledger.entry(conn, f"{reference}:{template.reverses}")
            if original is None:
                raise InvalidEntry(f"{event_type} for {reference} needs its {template.reverses} entry, which is missing")
            return self.ledger.reverse(conn, original, now=now, key=key, event_type=event_type, memo=memo)
        owners = {"platform": "", "merchant": merchant_id, "channel_account": channel_account, "receiver": receiver_id}
        lines = []
        for line in template.lines:
            amount = line.amount.evaluate(variables)
            if amount < 0:
                raise InvalidEntry(f"{event_type}: {line.account} {line.side} {line.amount.source} = {amount} < 0")
            if amount:
                ref = AccountRef(line.account, owners[line.owner], currency)
                lines.append(Posting.debit(ref, amount) if line.side == "debit" else Posting.credit(ref, amount))
        return self.ledger.post(conn, key, event_type, lines, now=now, reference=reference, memo=memo)

    # ---- payments ----

    def merchant_fee(self, p: PaymentFacts) -> int:
        return fee_for(p.amount, self.chart.fees.bps(p.merchant_id, p.channel_account))

    def payment_succeeded(self, conn: Connection, p: PaymentFacts, now: datetime) -> tuple[Entry, int]:
        """Channel clearing Dr amount; merchant in-transit Cr amount - fee; fee income Cr fee
        (and a platform-funded coupon paid to the merchant). Returns the entry and the fee."""
        fee = self.merchant_fee(p)
        coupon_amount, funded_by = coupon(p.metadata)
        memo = f"coupon {coupon_amount} funded by {funded_by}" if coupon_amount else None
        entry = self.book(conn, "payment.succeeded", p.reference, merchant_id=p.merchant_id,
                          channel_account=p.channel_account, currency=p.currency, now=now, memo=memo,
                          variables={"amount": p.amount, "fee": fee,
                                     "platform_coupon": coupon_amount if funded_by == "platform" else 0})
        return entry, fee

    # ---- refunds ----

    def fee_refund(self, amount: int, fee: int, refund_amount: int, fee_refunded_before: int, completes: bool) -> int:
        """The fee given back with a refund: pro rata, rounded half up; the refund that completes the
        payment gives back the rest, so a full refund returns exactly the fee. Or none ("keep")."""
        if self.chart.fees.refund_policy == "keep" or fee == 0:
            return 0
        if completes:
            return fee - fee_refunded_before
        return min((fee * refund_amount * 2 + amount) // (2 * amount), fee - fee_refunded_before)

    def refund_requested(self, conn: Connection, p: PaymentFacts, refund_id: str, refund_amount: int,
                         fee_refund: int, now: datetime) -> Entry:
        """Reserve the refund: the merchant's part from in-transit first, then available."""
        taken = self._from_merchant(conn, p.merchant_id, p.currency, refund_amount - fee_refund, "a refund")
        return self.book(conn, "refund.requested", f"refund:{refund_id}", merchant_id=p.merchant_id,
                         channel_account=p.channel_account, currency=p.currency, now=now,
                         variables={"refund_amount": refund_amount, "fee_refund": fee_refund, **taken})

    def refund_succeeded(self, conn: Connection, p: PaymentFacts, refund_id: str, refund_amount: int,
                         now: datetime) -> Entry:
        return self.book(conn, "refund.succeeded", f"refund:{refund_id}", merchant_id=p.merchant_id,
                         channel_account=p.channel_account, currency=p.currency, now=now,
                         variables={"refund_amount": refund_amount})

    def refund_failed(self, conn: Connection, p: PaymentFacts, refund_id: str, now: datetime) -> Entry:
        return self.book(conn, "refund.failed", f"refund:{refund_id}", merchant_id=p.merchant_id,
                         channel_account=p.channel_account, currency=p.currency, now=now, variables={})

    def _from_merchant(self, conn: Connection, merchant_id: str, currency: str, owed: int, what: str) -> dict[str, int]:
        """Take `owed` from the merchant's in-transit first, then available (locked while deciding)."""
        in_transit = self.ledger.balance(conn, AccountRef("merchant_in_transit", merchant_id, currency), lock=True)
        available = self.ledger.balance(conn, AccountRef("merchant_available", merchant_id, currency), lock=True)
        from_in_transit = min(in_transit, owed)
        if owed - from_in_transit > available:
            raise InsufficientBalance(f"the merchant's balance ({in_transit + available}) cannot cover {what} "
                                      f"needing {owed}", "merchant_available")
        return {"from_in_transit": from_in_transit, "from_available": owed - from_in_transit}

    # ---- payouts: merchant available -> bank account, paid from a channel account's position ----

    def payout_requested(self, conn: Connection, payout_id: str, merchant_id: str, channel_account: str,
                         currency: str, amount: int, fee: int, now: datetime) -> Entry:
        """Freeze amount + fee of the merchant's available balance and hold amount of the channel
        account's position; either being short raises InsufficientBalance naming the account."""
        return self.book(conn, "payout.requested", f"payout:{payout_id}", merchant_id=merchant_id,
                         channel_account=channel_account, currency=currency, now=now,
                         variables={"amount": amount, "fee": fee})

    def payout_succeeded(self, conn: Connection, payout_id: str, merchant_id: str, channel_account: str,
                         currency: str, amount: int, fee: int, now: datetime) -> Entry:
        return self.book(conn, "payout.succeeded", f"payout:{payout_id}", merchant_id=merchant_id,
                         channel_account=channel_account, currency=currency, now=now,
                         variables={"amount": amount, "fee": fee})

    def payout_failed(self, conn: Connection, payout_id: str, now: datetime) -> Entry:
        return self.book(conn, "payout.failed", f"payout:{payout_id}", merchant_id="", channel_account="",
                         currency="", now=now, variables={})

    # ---- splits: merchant -> receiver, of a paid payment ----

    def split_requested(self, conn: Connection, split_id: str, merchant_id: str, channel_account: str,
                        currency: str, amount: int, now: datetime) -> Entry:
        return self.book(conn, "split.requested", f"split:{split_id}", merchant_id=merchant_id,
                         channel_account=channel_account, currency=currency, now=now,
                         variables={"amount": amount, **self._from_merchant(conn, merchant_id, currency, amount,
                                                                             "a split")})

    def split_succeeded(self, conn: Connection, split_id: str, merchant_id: str, receiver_id: str,
                        currency: str, amount: int, now: datetime) -> Entry:
        return self.book(conn, "split.succeeded", f"split:{split_id}", merchant_id=merchant_id, channel_account="",
                         receiver_id=receiver_id, currency=currency, now=now, variables={"amount": amount})

    def split_returned(self, conn: Connection, return_id: str, merchant_id: str, receiver_id: str, currency: str,
                       amount: int, now: datetime) -> Entry:
        return self.book(conn, "split.returned", f"split_return:{return_id}", merchant_id=merchant_id,
                         channel_account="", receiver_id=receiver_id, currency=currency, now=now,
                         variables={"amount": amount})

    def split_failed(self, conn: Connection, split_id: str, now: datetime) -> Entry:
        return self.book(conn, "split.failed", f"split:{split_id}", merchant_id="", channel_account="",
                         currency="", now=now, variables={})

    # ---- holds ----

    def freeze(self, conn: Connection, merchant_id: str, currency: str, amount: int, reference: str,
               now: datetime, memo: str | None = None) -> Entry:
        return self._hold("merchant.freeze", conn, merchant_id, currency, amount, reference, now, memo)

    def unfreeze(self, conn: Connection, merchant_id: str, currency: str, amount: int, reference: str,
                 now: datetime, memo: str | None = None) -> Entry:
        return self._hold("merchant.unfreeze", conn, merchant_id, currency, amount, reference, now, memo)

    def _hold(self, event_type: str, conn: Connection, merchant_id: str, currency: str, amount: int,
              reference: str, now: datetime, memo: str | None) -> Entry:
        if amount <= 0:
            raise InvalidEntry("a hold moves a positive amount")
        return self.book(conn, event_type, reference, merchant_id=merchant_id, channel_account="",
                         currency=currency, now=now, memo=memo, variables={"amount": amount})


__all__ = ["Booker", "PaymentFacts", "LedgerError", "coupon"]
