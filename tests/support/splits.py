"""Splits in tests: a receiver, a paid payment, a receiver's balance."""
from __future__ import annotations

from ledger.core import AccountRef
from tests.conftest import checkout, wait_for

FAST = dict(query_schedule_seconds=(0.3, 0.3, 0.3), janitor_poll_seconds=0.1, query_give_up_seconds=3600)


def receiver(client, account: str = "rcv-acct-1", **over) -> dict:  # noqa: ANN001, ANN003
    made = client.request("POST", "/v1/receivers", {"type": "merchant", "name": "Supplier Ltd", "account": account,
                                                    **over})
    assert made.status_code == 201, made.text
    return made.json()


def paid(client, order: str, amount: int, **fields) -> dict:  # noqa: ANN001, ANN003
    payment = client.create_payment(merchant_order_no=order, amount=amount, **fields)
    checkout(payment)
    assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
    return client.get_payment(payment["id"])


def receiver_balance(gw, receiver_id: str) -> int:  # noqa: ANN001
    with gw.gateway.db.transaction() as conn:
        return gw.gateway.ledger.balance(conn, AccountRef("receiver_in_transit", receiver_id, "CNY"))
