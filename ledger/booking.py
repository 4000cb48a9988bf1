"""Booking business events through the templates in conf/ledger.toml.

The gateway calls these inside the same transaction as the state change they record. Keys are
`{reference}:{event_type}` (e.g. `payment:pay_1:payment.succeeded`), so booking twice is a no-op.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping, Protocol, Sequence

from sqlalchemy import Connection

from ledger.chart import fee_for
from ledger.core import AccountRef, Entry, Ledger, Posting
from ledger.errors import InsufficientBalance, InvalidEntry, LedgerError

@dataclass(frozen=True)
class PaymentFacts:
    payment_id: str
    merchant_id: str
    channel_account: str
    amount: int
    currency: str
    method: str = ""

    @property
    def reference(self) -> str:
        return f"payment:{self.payment_id}"


class FeePolicy(Protocol):
    """Fee rules from configuration (the gateway's gateway/fees.py): without one, the chart's [fees]."""

    def payment_fee(self, p: PaymentFacts, settled: int, conn: Connection | None = None) -> tuple[int, str]:
        """The merchant's fee on `settled` (what the channel pays for the order), and the rule's name
        (`conn`: the transaction to read what the rule needs from, if it needs anything)."""

    def refund_policy(self, rule: str | None) -> str:
        """What a refund gives back of a fee the named rule produced: all, pro_rata or none."""


@dataclass(frozen=True)
class DiscountFacts:
    """One discount on a paid order, from the channel's verified answer: `unsettled` is what the
    channel keeps of it (the merchant gives that up, unless a campaign the platform configured,
    named by the channel's `campaign` id, pays it back)."""

    amount: int
    unsettled: int
    campaign: str | None = None
    other_funded: int = 0      # what neither the merchant nor the channel put in: a campaign may own it


@dataclass(frozen=True)
class PaymentBooking:
    entry: Entry | None               # None: the channel kept all of the order (nothing moved)
    fee: int
    discount: int                     # what the channel keeps out of what it pays us
    campaigns: Mapping[str, int]      # campaign id -> what it paid the merchant back
    fee_rule: str | None = None       # the fee rule that produced `fee`


@dataclass(frozen=True)
class RefundShares:
    """What of a payment's discount a refund takes back: the channel's kept part (not taken from us)
    and each campaign's payback (returned by the merchant to the campaign)."""

    discount: int = 0
    campaigns: Mapping[str, int] = field(default_factory=dict)


class Booker:
    def __init__(self, ledger: Ledger, fees: FeePolicy | None = None) -> None:
        self.ledger = ledger
        self.chart = ledger.chart
        self.fees = fees

    def book(self, conn: Connection, event_type: str, reference: str, *, merchant_id: str, channel_account: str,
             currency: str, variables: Mapping[str, int], now: datetime, memo: str | None = None,
             receiver_id: str = "", campaign_id: str = "", key_prefix: str | None = None,
             at_commit: bool = False) -> Entry | None:
        """Turn one business event into one entry, as its template says. Its key is
        `{key_prefix or reference}:{event_type}` (key_prefix: one reference, several entries of a type).
        at_commit: as Ledger.post's (None returned when the entry goes with the COMMIT)."""
        template = self.chart.template(event_type)
        key = f"{key_prefix or reference}:{event_type}"
        if template.reverses is not None:
            original = self.ledger.entry(conn, f"{key_prefix or reference}:{template.reverses}")
            if original is None:
                raise InvalidEntry(f"{event_type} for {reference} needs its {template.reverses} entry, which is missing")
            return self.ledger.reverse(conn, original, now=now, key=key, event_type=event_type, memo=memo)
        owners = {"platform": "", "merchant": merchant_id, "channel_account": channel_account, "receiver": receiver_id,
                  "campaign": campaign_id}
        lines = []
        for line in template.lines:
            amount = line.amount.evaluate(variables)
            if amount < 0:
                raise InvalidEntry(f"{event_type}: {line.account} {line.side} {line.amount.source} = {amount} < 0")
            if amount:
                ref = AccountRef(line.account, owners[line.owner], currency)
                lines.append(Posting.debit(ref, amount) if line.side == "debit" else Posting.credit(ref, amount))
        return self.ledger.post(conn, key, event_type, lines, now=now, reference=reference, memo=memo,
                                at_commit=at_commit)

    # ---- payments ----

    def merchant_fee(self, p: PaymentFacts, discount: int = 0) -> int:
        """The merchant's fee, on what the channel pays for the order (the order less what it keeps)."""
        return self.merchant_fee_rule(p, discount)[0]

    def merchant_fee_rule(self, p: PaymentFacts, discount: int = 0,
                          conn: Connection | None = None) -> tuple[int, str | None]:
        """The merchant's fee and the rule that produced it (None: the chart's single rate)."""
        if self.fees is not None:
            return self.fees.payment_fee(p, p.amount - discount, conn)
        return fee_for(p.amount - discount, self.chart.fees.bps(p.merchant_id, p.channel_account)), None

    def success_figures(self, p: PaymentFacts, discounts: Sequence[DiscountFacts] = (),
                        conn: Connection | None = None) -> PaymentBooking:
        """What payment_succeeded will book, before it books it: the fee and the part the channel keeps.
        `campaigns` holds what each campaign is asked to pay back; what it pays depends on its budget,
        which only payment_succeeded reads (under lock)."""
        discount = sum(d.unsettled for d in discounts)
        if not 0 <= discount <= p.amount:
            raise InvalidEntry(f"a discount of {discount} on an order of {p.amount}")
        wanted: dict[str, int] = {}
        for d in discounts:
            campaign = self.chart.campaign_for(d.campaign, p.merchant_id, p.channel_account, p.currency)
            # Only what the channel says someone other than the merchant and itself funded is a campaign's.
            if campaign is not None and min(d.unsettled, d.other_funded):
                wanted[campaign.id] = wanted.get(campaign.id, 0) + min(d.unsettled, d.other_funded)
        fee, rule = self.merchant_fee_rule(p, discount, conn)
        return PaymentBooking(None, fee, discount, wanted, rule)

    def payment_succeeded(self, conn: Connection, p: PaymentFacts, now: datetime,
                          discounts: Sequence[DiscountFacts] = (), at_commit: bool = False,
                          figures: PaymentBooking | None = None) -> PaymentBooking:
        """Channel clearing Dr what the channel pays for the order; merchant in-transit Cr that less the
        fee; fee income Cr fee. Then, per campaign the platform funds whose coupon the channel kept part
        of, that part paid back to the merchant within the campaign's budget. at_commit (no campaign): the
        entry goes with the transaction's COMMIT, as Ledger.post's, and the booking's entry is None.
        figures: what success_figures gave the caller for the same payment and discounts, not worked out twice."""
        figures = figures if figures is not None else self.success_figures(p, discounts, conn)
        fee, discount = figures.fee, figures.discount
        memo = "; ".join(f"coupon {d.amount}" + (f" ({d.campaign})" if d.campaign else "")
                         + (f", {d.unsettled} kept by the channel" if d.unsettled else "")
                         for d in discounts) or None
        if figures.fee_rule is not None:
            memo = "; ".join(filter(None, (memo, f"fee rule {figures.fee_rule}")))
        entry = None if discount == p.amount else self.book(
            conn, "payment.succeeded", p.reference, merchant_id=p.merchant_id, channel_account=p.channel_account,
            currency=p.currency, now=now, memo=memo, variables={"amount": p.amount, "fee": fee, "discount": discount},
            at_commit=at_commit and not figures.campaigns)
        paid = {}
        for campaign_id, amount in sorted(figures.campaigns.items()):
            ref = AccountRef("coupon_expense", campaign_id, p.currency)
            self.ledger.account_id(conn, ref, now)     # exists, so that it can be locked
            left = self.chart.campaigns[campaign_id].budget - self.ledger.balance(conn, ref, lock=True)
            paid[campaign_id] = max(0, min(amount, left))
            if paid[campaign_id]:
                self.book(conn, "campaign.discount", p.reference, key_prefix=f"{p.reference}:campaign:{campaign_id}",
                          merchant_id=p.merchant_id, channel_account=p.channel_account, campaign_id=campaign_id,
                          currency=p.currency, now=now, variables={"amount": paid[campaign_id]},
                          memo=None if paid[campaign_id] == amount else
                          f"campaign {campaign_id}: {amount - paid[campaign_id]} beyond its budget")
        return PaymentBooking(entry, fee, discount, paid, figures.fee_rule)

    # ---- refunds ----

    def fee_refund(self, amount: int, fee: int, refund_amount: int, fee_refunded_before: int, completes: bool,
                   refunded_before: int | None = None, rule: str | None = None) -> int:
        """The fee given back with a refund: pro rata, rounded half up; the refund that completes the
        payment gives back the rest, so a full refund returns exactly the fee. Or none ("keep").
        With `refunded_before` (what earlier refunds took) the rounding is of the running total, so
        many small refunds give back no more than one refund of their sum would.
        With a discount the channel kept, amount and refund_amount are what the channel pays and takes
        back (the fee was charged on that), and no refund gives back more fee than that part of it.
        `rule`: the fee rule that produced the fee, whose policy holds ("all": the first refund gives
        back all it can)."""
        policy = self.chart.fees.refund_policy if self.fees is None else self.fees.refund_policy(rule)
        if policy in ("keep", "none") or fee == 0:
            return 0
        if completes or policy == "all":
            return min(fee - fee_refunded_before, refund_amount)
        if refunded_before is None:
            return min((fee * refund_amount * 2 + amount) // (2 * amount), fee - fee_refunded_before)
        owed_after = (fee * (refunded_before + refund_amount) * 2 + amount) // (2 * amount)
        return max(0, min(owed_after - fee_refunded_before, fee - fee_refunded_before, refund_amount))

    @staticmethod
    def discount_share(total: int, amount: int, refund_amount: int, taken_before: int, completes: bool) -> int:
        """A refund's share of a payment's discount (what the channel kept, or a campaign's payback): in
        proportion, rounded down; the refund that completes the payment takes whatever is left."""
        if completes:
            return total - taken_before
        return min(total * refund_amount // amount, total - taken_before)

    def refund_requested(self, conn: Connection, p: PaymentFacts, refund_id: str, refund_amount: int,
                         fee_refund: int, now: datetime, shares: RefundShares = RefundShares(),
                         frozen: int = 0) -> Entry | None:
        """Reserve the refund: the merchant's part from what the channel holds frozen of the payment
        (up to `frozen`), then in-transit, then available; the refund's share of what campaigns paid
        back goes back to them."""
        owed = refund_amount - shares.discount - fee_refund
        # A refund of only what the channel kept (its share of a coupon) moves no money of ours.
        entry = None if refund_amount == shares.discount else self.book(
            conn, "refund.requested", f"refund:{refund_id}", merchant_id=p.merchant_id,
            channel_account=p.channel_account, currency=p.currency, now=now,
            variables={"refund_amount": refund_amount, "fee_refund": fee_refund, "discount_refund": shares.discount,
                       **self._from_merchant(conn, p.merchant_id, p.currency, owed, "a refund", frozen)})
        for campaign_id, amount in sorted(shares.campaigns.items()):
            if amount:
                self.book(conn, "campaign.discount_returned", f"refund:{refund_id}",
                          key_prefix=f"refund:{refund_id}:campaign:{campaign_id}",
                          merchant_id=p.merchant_id, channel_account=p.channel_account, campaign_id=campaign_id,
                          currency=p.currency, now=now, variables={
                              "amount": amount, **self._from_merchant(conn, p.merchant_id, p.currency, amount,
                                                                      "a campaign's share of a refund")})
        return entry

    def refund_succeeded(self, conn: Connection, p: PaymentFacts, refund_id: str, refund_amount: int,
                         now: datetime, discount_refund: int = 0) -> Entry | None:
        if refund_amount == discount_refund:
            return None   # the channel gave back only the coupon it kept: none of our money moved
        return self.book(conn, "refund.succeeded", f"refund:{refund_id}", merchant_id=p.merchant_id,
                         channel_account=p.channel_account, currency=p.currency, now=now,
                         variables={"refund_amount": refund_amount, "discount_refund": discount_refund})

    def refund_failed(self, conn: Connection, p: PaymentFacts, refund_id: str, now: datetime,
                      campaigns: Sequence[str] = (), reserved: bool = True) -> Entry | None:
        """Give back what refund_requested reserved (`reserved`: it reserved any money of ours)."""
        for campaign_id in sorted(campaigns):
            self.book(conn, "campaign.discount_return_failed", f"refund:{refund_id}",
                      key_prefix=f"refund:{refund_id}:campaign:{campaign_id}",
                      merchant_id=p.merchant_id, channel_account=p.channel_account, currency=p.currency, now=now,
                      variables={})
        if not reserved:
            return None
        return self.book(conn, "refund.failed", f"refund:{refund_id}", merchant_id=p.merchant_id,
                         channel_account=p.channel_account, currency=p.currency, now=now, variables={})

    def _from_merchant(self, conn: Connection, merchant_id: str, currency: str, owed: int, what: str,
                       frozen: int = 0) -> dict[str, int]:
        """Take `owed` from `frozen` (what the channel holds frozen of the payment it is for) first, then
        the merchant's in-transit, then available (locked while deciding)."""
        from_frozen = max(0, min(frozen, owed))
        owed -= from_frozen
        in_transit = self.ledger.balance(conn, AccountRef("merchant_in_transit", merchant_id, currency), lock=True)
        available = self.ledger.balance(conn, AccountRef("merchant_available", merchant_id, currency), lock=True)
        from_in_transit = min(in_transit, owed)
        if owed - from_in_transit > available:
            raise InsufficientBalance(f"the merchant's balance ({in_transit + available}) cannot cover {what} "
                                      f"needing {owed}", "merchant_available")
        return {"from_frozen": from_frozen, "from_in_transit": from_in_transit,
                "from_available": owed - from_in_transit}

    def frozen_part(self, conn: Connection, key: str) -> int:
        """What the entry `key` took from split_frozen (to give a payment its frozen share back when the
        split or refund it booked fails)."""
        entry = self.ledger.entry(conn, key)
        if entry is None:
            return 0
        return sum(line.amount for line in entry.lines if line.account.code == "split_frozen" and line.amount > 0)

    # ---- payouts: merchant available -> bank account, paid from a channel account's position ----

    def payout_requested(self, conn: Connection, payout_id: str, merchant_id: str, channel_account: str,
                         currency: str, amount: int, fee: int, now: datetime,
                         fee_rule: str | None = None, receiver_id: str = "") -> Entry:
        """Freeze amount + fee of the payee's available balance (the merchant's, or the receiver's whose
        money paymux holds) and hold amount of the channel account's position; either being short raises
        InsufficientBalance naming the account."""
        return self.book(conn, "payout.requested", f"payout:{payout_id}", merchant_id=merchant_id,
                         channel_account=channel_account, currency=currency, now=now, receiver_id=receiver_id,
                         variables=payout_variables(amount, fee, receiver_id),
                         memo=None if fee_rule is None else f"fee rule {fee_rule}")

    def payout_succeeded(self, conn: Connection, payout_id: str, merchant_id: str, channel_account: str,
                         currency: str, amount: int, fee: int, now: datetime,
                         fee_rule: str | None = None, receiver_id: str = "") -> Entry:
        return self.book(conn, "payout.succeeded", f"payout:{payout_id}", merchant_id=merchant_id,
                         channel_account=channel_account, currency=currency, now=now, receiver_id=receiver_id,
                         variables=payout_variables(amount, fee, receiver_id),
                         memo=None if fee_rule is None else f"fee rule {fee_rule}")

    def payout_failed(self, conn: Connection, payout_id: str, now: datetime) -> Entry:
        return self.book(conn, "payout.failed", f"payout:{payout_id}", merchant_id="", channel_account="",
                         currency="", now=now, variables={})

    # ---- splits: merchant -> receiver, of a paid payment ----

    def split_requested(self, conn: Connection, split_id: str, merchant_id: str, channel_account: str,
                        currency: str, amount: int, now: datetime, frozen: int = 0) -> Entry:
        """Reserve a split from what the channel holds frozen of its payment (up to `frozen`), then from
        the merchant's in-transit and available."""
        return self.book(conn, "split.requested", f"split:{split_id}", merchant_id=merchant_id,
                         channel_account=channel_account, currency=currency, now=now,
                         variables={"amount": amount, **self._from_merchant(conn, merchant_id, currency, amount,
                                                                             "a split", frozen)})

    def split_frozen(self, conn: Connection, p: PaymentFacts, amount: int, now: datetime) -> Entry | None:
        """The channel holds the merchant's share of a payment made to be split frozen."""
        return self.book(conn, "split.frozen", p.reference, merchant_id=p.merchant_id,
                         channel_account=p.channel_account, currency=p.currency, now=now,
                         variables={"amount": amount}) if amount > 0 else None

    def split_released(self, conn: Connection, p: PaymentFacts, release_id: str, amount: int,
                       now: datetime) -> Entry | None:
        """The channel released what it held frozen of a payment: in-transit again, settled from there."""
        return self.book(conn, "split.released", p.reference, key_prefix=f"split_release:{release_id}",
                         merchant_id=p.merchant_id, channel_account=p.channel_account, currency=p.currency, now=now,
                         variables={"amount": amount}) if amount > 0 else None

    def split_succeeded(self, conn: Connection, split_id: str, merchant_id: str, receiver_id: str,
                        currency: str, amount: int, now: datetime) -> Entry:
        return self.book(conn, "split.succeeded", f"split:{split_id}", merchant_id=merchant_id, channel_account="",
                         receiver_id=receiver_id, currency=currency, now=now, variables={"amount": amount})

    def split_returned(self, conn: Connection, return_id: str, merchant_id: str, receiver_id: str, currency: str,
                       amount: int, now: datetime) -> Entry:
        """Take a split back from what the receiver is owed: its in-transit first, then (a receiver whose
        money paymux holds, already settled) its available balance."""
        in_transit = self.ledger.balance(conn, AccountRef("receiver_in_transit", receiver_id, currency), lock=True)
        from_in_transit = max(0, min(in_transit, amount))
        return self.book(conn, "split.returned", f"split_return:{return_id}", merchant_id=merchant_id,
                         channel_account="", receiver_id=receiver_id, currency=currency, now=now,
                         variables={"amount": amount, "from_in_transit": from_in_transit,
                                    "from_available": amount - from_in_transit})

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


__all__ = ["Booker", "DiscountFacts", "PaymentBooking", "PaymentFacts", "RefundShares", "LedgerError"]


def payout_variables(amount: int, fee: int, receiver_id: str = "") -> dict[str, int]:
    """A payout's template variables: amount + fee is the payee's, a receiver's (receiver_id) or the merchant's."""
    return {"amount": amount, "fee": fee, "by_merchant": 0 if receiver_id else amount + fee,
            "by_receiver": amount + fee if receiver_id else 0}
