"""Splits end where the money really goes (issue 19): where the channel pays the receiver itself, a
split leaves our books when the channel's statement of splits says it paid it (split.channel_paid:
receiver in-transit -> channel clearing), the channel settles that much less, and after the day is
reconciled and settled the receiver's in-transit holds only what is still owed and the books check."""
from __future__ import annotations

from gateway.books import full_check
from tests.conftest import free_port, make_settings, wait_for
from tests.support.split_days import balance, close_day, reconcile_splits, split_row, today
from tests.support.splits import FAST, paid, receiver


def split(client, payment: dict, number: str, rcv: dict, amount: int) -> dict:  # noqa: ANN001
    made = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                          {"merchant_split_no": number, "receiver": rcv["id"], "amount": amount})
    assert made.status_code == 201, made.text
    assert wait_for(lambda: client.request("GET", f"/v1/splits/{made.json()['id']}").json()["status"] == "succeeded")
    return made.json()


def test_a_sandbox_day_of_splits_reconciled_and_settled_leaves_the_receiver_nothing_in_transit(
        gateway_factory, db_url, tmp_path) -> None:
    settings = make_settings(db_url, free_port()).with_changes(statement_dir=str(tmp_path / "st"), **FAST)
    gw = gateway_factory(settings)
    client = gw.client(gw.merchant())
    rcv = receiver(client)
    payment = paid(client, "o-1", 10000)                              # fee 60 at 60 bps
    made = split(client, payment, "s-1", rcv, 3000)
    assert balance(gw, "receiver_in_transit", rcv["id"]) == 3000     # owed, until the channel says it paid
    day = today(gw)
    closed = close_day(settings, "sandbox", day)
    assert closed["trades"]["status"] == "completed"
    assert closed["splits"]["status"] == "completed" and closed["splits"]["open"] == 0
    assert closed["splits"]["summary"] == {"split_amount": 3000, "return_amount": 0, "splits": 1, "returns": 0}
    assert balance(gw, "receiver_in_transit", rcv["id"]) == 0         # the channel paid the receiver itself
    row = split_row(gw, made["id"])
    assert (row.channel_paid_on, row.channel_paid_amount) == (day, 3000)
    [channel] = [b for b in closed["settled"]["booked"] if b["kind"] == "channel"]
    assert channel["amount"] == 10000 - 60 - 3000                     # the channel settled that much less
    assert balance(gw, "channel_clearing", "sandbox") == 0
    # The same statement again is the same run, booking nothing twice.
    again = reconcile_splits(settings, "sandbox", day)
    assert again["run_id"] == closed["splits"]["run_id"]
    assert balance(gw, "receiver_in_transit", rcv["id"]) == 0
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []
