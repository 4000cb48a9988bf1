"""Receivers: someone a merchant passes part of its payments on to (分账接收方). Who they are is sealed
(AES-GCM, bound to the receiver and the field) and shown masked; unsealed only to build a channel request.
`GET /v1/receivers/{id}` also shows the receiver's money: split to it, taken back, paid to it by the
channel itself (by statement day: gateway/split_recon.py), and still owed."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Row, and_, func, insert, select
from sqlalchemy.exc import IntegrityError

from gateway.auth import Caller
from gateway.clock import Clock
from gateway.db import Database, owned_row
from gateway.errors import PaymuxError, conflict, invalid_request
from gateway.ids import public_id
from gateway.models import Payout, Receiver, Split, SplitReturn
from gateway.plugins import PluginHost
from gateway.redact import masked, masked_name
from gateway.resources import receiver_object
from gateway.secretbox import SecretBox
from gateway.split_settlement import receiver_settlements
from ledger.core import AccountRef, Ledger

receivers = Receiver.__table__
splits = Split.__table__
returns = SplitReturn.__table__
payouts = Payout.__table__


def sealed_receiver(box: SecretBox, receiver_id: str, name: str, account: str,
                    bindings: dict[str, str]) -> dict[str, Any]:
    """The columns that say who a receiver is: sealed (bound to the receiver and the field), masked
    for display, and the account's keyed digest (one receiver per account and merchant)."""
    return dict(name_sealed=box.seal(name, f"{receiver_id}:name"), name_masked=masked_name(name),
                account_sealed=box.seal(account, f"{receiver_id}:account"), account_masked=masked(account),
                account_digest=box.fingerprint(account),
                bindings_sealed=box.seal(json.dumps(bindings, sort_keys=True), f"{receiver_id}:bindings"),
                bindings={k: masked(v) for k, v in bindings.items()})


def receiver_identity(box: SecretBox, r: Row) -> tuple[str, str, dict[str, str]]:
    """(name, account, bindings) of a receivers row, unsealed here, in memory, for the channel."""
    return (box.open(r.name_sealed, f"{r.id}:name"), box.open(r.account_sealed, f"{r.id}:account"),
            json.loads(box.open(r.bindings_sealed, f"{r.id}:bindings")))


class Receivers:
    def __init__(self, db: Database, host: PluginHost, clock: Clock, box: SecretBox, ledger: Ledger | None = None) -> None:
        self.db, self.host, self.clock, self.box, self.ledger = db, host, clock, box, ledger

    async def create_receiver(self, caller: Caller, type_: str, name: str, account: str,
                              bindings: dict[str, str], held_by: str = "channel", settlement_days: int = 1) -> dict:
        unknown = sorted(set(bindings) - set(self.host.accounts))
        if unknown:
            raise invalid_request("unknown_channel", f"bindings name unknown channel account(s): {', '.join(unknown)}",
                                  "bindings")
        receiver_id, now = public_id("rcv"), self.clock.now()

        def tx(conn: Connection) -> dict:
            caller.verify(conn)
            try:
                conn.execute(insert(receivers).values(id=receiver_id, merchant_id=caller.merchant_id, type=type_,
                                                      status="active", created_at=now, held_by=held_by,
                                                      settlement_days=settlement_days,
                                                      **sealed_receiver(self.box, receiver_id, name, account,
                                                                        bindings)))
            except IntegrityError:
                raise conflict("duplicate_receiver", f"A receiver with account {masked(account)!r} exists",
                               "account") from None
            return receiver_object(conn.execute(select(receivers).where(receivers.c.id == receiver_id)).first())

        return await self.db.tx(tx)

    async def get_receiver(self, caller: Caller, receiver_id: str) -> dict:
        def tx(conn: Connection) -> dict:
            caller.verify(conn)
            return {**receiver_object(self.receiver(conn, caller.merchant_id, receiver_id)),
                    "money": self.money(conn, receiver_id)}

        return await self.db.tx(tx)

    def money(self, conn: Connection, receiver_id: str) -> list[dict[str, Any]]:
        """Per currency: what splits passed to the receiver (succeeded), what returns took back, what was
        settled to it — by the channel itself, as its statement of splits says (`by` "channel", per
        statement day), or by paymux on the receiver's T+n where paymux holds its money (`by` "paymux",
        per day, with the day it was settled) — what was paid out to it (paymux-held), and what the
        books still owe it: in transit, available, and in payouts under way (`owed` is all three)."""
        split_rows = conn.execute(select(splits.c.currency, func.sum(splits.c.amount)).where(and_(
            splits.c.receiver_id == receiver_id, splits.c.status == "succeeded")).group_by(splits.c.currency)).all()
        back = dict(conn.execute(select(returns.c.currency, func.sum(returns.c.amount))
                                 .select_from(returns.join(splits, splits.c.id == returns.c.split_id))
                                 .where(and_(splits.c.receiver_id == receiver_id, returns.c.status == "succeeded"))
                                 .group_by(returns.c.currency)).all())
        days = conn.execute(select(splits.c.currency, splits.c.channel_paid_on, splits.c.channel_account,
                                   func.sum(splits.c.channel_paid_amount)).where(and_(
            splits.c.receiver_id == receiver_id, splits.c.channel_paid_on.is_not(None)))
            .group_by(splits.c.currency, splits.c.channel_paid_on, splits.c.channel_account)
            .order_by(splits.c.channel_paid_on, splits.c.channel_account)).all()
        by_paymux = receiver_settlements(conn, receiver_id)
        paid_out = conn.execute(select(payouts).where(payouts.c.receiver_id == receiver_id)
                                .order_by(payouts.c.created_at, payouts.c.id)).all()
        out = []
        for currency, amount in split_rows:
            settlements = [{"by": "channel", "business_date": day.isoformat(), "channel": account, "amount": int(paid)}
                           for cur, day, account, paid in days if cur == currency]
            settlements += [{"by": "paymux", **{k: v for k, v in s.items() if k != "currency"}}
                            for s in by_paymux if s["currency"] == currency]
            held = {code: self.ledger.balance(conn, AccountRef(code, receiver_id, currency)) if self.ledger else 0
                    for code in ("receiver_in_transit", "receiver_available", "receiver_payouts_pending")}
            payouts_of = [{"id": p.id, "amount": p.amount, "status": p.status,
                           "finished_at": p.finished_at.isoformat() if p.finished_at else None}
                          for p in paid_out if p.currency == currency]
            out.append({"currency": currency, "split": int(amount), "returned": int(back.get(currency) or 0),
                        "settled": sum(x["amount"] for x in settlements), "settlements": settlements,
                        "paid_out": sum(p["amount"] for p in payouts_of if p["status"] == "succeeded"),
                        "payouts": payouts_of, "in_transit": held["receiver_in_transit"],
                        "available": held["receiver_available"], "owed": sum(held.values())})
        return out

    @staticmethod
    def receiver(conn: Connection, merchant_id: str, receiver_id: str, param: str | None = None) -> Row:
        """The merchant's receiver; named in a request body (`param`), a missing one is a 400, not a 404."""
        try:
            return owned_row(conn, receivers, merchant_id, "receiver", receiver_id)
        except PaymuxError:
            if param:
                raise invalid_request("unknown_receiver", f"No receiver {receiver_id!r}", param) from None
            raise
