"""Receivers and split payments (分账) through the sandbox over real HTTP: asked for after success or
declared with the payment, executed at the channel, booked merchant -> receiver, and never more
than what is left of the payment; a refund of a split payment refuses what was split."""
from __future__ import annotations

from gateway.books import full_check
from gateway.config import ChannelAccountConfig
from tests.conftest import SANDBOX_SECRET, checkout, free_port, make_settings, wait_for
from tests.support.splits import FAST, paid, receiver, receiver_balance


def test_a_split_after_success_moves_money_to_the_receiver(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()).with_changes(**FAST))
    client = gw.client(gw.merchant())
    rcv = receiver(client, bindings={"sandbox": "sbx-merchant-42"})
    payment = paid(client, "o-1", 10000)                              # fee 60 at the default 60 bps
    in_transit = client.request("GET", "/v1/balance").json()["balances"][0]["in_transit"]
    made = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                          {"merchant_split_no": "s-1", "receiver": rcv["id"], "amount": 3000, "description": "goods"})
    assert made.status_code == 201, made.text
    split = made.json()
    assert split["status"] in ("processing", "succeeded") and split["channel"] == "sandbox"
    assert wait_for(lambda: client.request("GET", f"/v1/splits/{split['id']}").json()["status"] == "succeeded")
    balances = client.request("GET", "/v1/balance").json()["balances"][0]
    assert (balances["in_transit"], balances["split_pending"]) == (in_transit - 3000, 0)
    assert receiver_balance(gw, rcv["id"]) == 3000
    sim = gw.gateway.host.account("sandbox").channel._sim
    [at_channel] = [s for o in sim.orders.values() for s in o.splits.values()]
    assert (at_channel["receiver"], at_channel["amount"]) == ("sbx-merchant-42", 3000)   # the binding was used
    assert client.request("GET", "/v1/events").json()["data"][0]["type"] == "split.succeeded"
    # The same split asked for again is the same split; the same number for another is refused.
    again = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                           {"merchant_split_no": "s-1", "receiver": rcv["id"], "amount": 3000})
    assert (again.status_code, again.json()["id"]) == (200, split["id"])
    other = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                           {"merchant_split_no": "s-1", "receiver": rcv["id"], "amount": 10})
    assert (other.status_code, other.json()["error"]["code"]) == (409, "duplicate_split")
    # 10000 - fee 60 - 3000 split = 6940 left: more is refused, with nothing written.
    too_much = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                              {"merchant_split_no": "s-2", "receiver": rcv["id"], "amount": 6941})
    assert (too_much.status_code, too_much.json()["error"]["code"]) == (400, "split_exceeds_payment")
    assert gw.count("splits") == 1
    listed = client.request("GET", f"/v1/payments/{payment['id']}/splits").json()["data"]
    assert [s["id"] for s in listed] == [split["id"]]
    # A refund may take back only what was not split ([splits] refund_policy = "refuse").
    refused = client.request("POST", f"/v1/payments/{payment['id']}/refunds",
                             {"merchant_refund_no": "r-1", "amount": 7001})
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "refund_exceeds_unsplit")
    refund = client.create_refund(payment["id"], merchant_refund_no="r-2", amount=6900)
    assert wait_for(lambda: client.get_refund(refund["id"])["status"] == "succeeded")
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []


def test_splits_declared_with_the_payment_start_when_it_succeeds(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()).with_changes(**FAST))
    client = gw.client(gw.merchant())
    a, b = receiver(client, "a"), receiver(client, "b", type="personal", name="李四")
    payment = client.create_payment(merchant_order_no="o-2", amount=20000, splits=[
        {"receiver": a["id"], "amount": 5000}, {"receiver": b["id"], "amount": 2000, "merchant_split_no": "mine"}])
    waiting = client.request("GET", f"/v1/payments/{payment['id']}/splits").json()["data"]
    assert [(s["status"], s["merchant_split_no"]) for s in waiting] == [("scheduled", "o-2-1"), ("scheduled", "mine")]
    checkout(payment)
    assert wait_for(lambda: {s["status"] for s in client.request(
        "GET", f"/v1/payments/{payment['id']}/splits").json()["data"]} == {"succeeded"})
    assert (receiver_balance(gw, a["id"]), receiver_balance(gw, b["id"])) == (5000, 2000)
    # A payment that fails cancels what it declared.
    failing = client.create_payment(merchant_order_no="o-3", amount=20000, splits=[{"receiver": a["id"], "amount": 1}])
    checkout(failing, "fail")
    assert wait_for(lambda: client.get_payment(failing["id"])["status"] == "failed")
    [cancelled] = client.request("GET", f"/v1/payments/{failing['id']}/splits").json()["data"]
    assert cancelled["status"] == "cancelled" and cancelled["failure"]["code"] == "payment_not_paid"
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []


def test_bad_splits_and_receivers_are_refused_with_nothing_written(gateway_factory, db_url) -> None:
    accounts = (ChannelAccountConfig("sandbox", "mock", True, {"secret": SANDBOX_SECRET}),)
    gw = gateway_factory(make_settings(db_url, free_port()).with_changes(channel_accounts=accounts, **FAST))
    client = gw.client(gw.merchant())
    other = gw.client(gw.merchant("other"))
    rcv = receiver(client)
    theirs = receiver(other)
    cases = [
        (client.request("POST", "/v1/receivers", {"type": "merchant", "name": "x", "account": "rcv-acct-1"}),
         409, "duplicate_receiver"),
        (client.request("POST", "/v1/receivers", {"type": "bank", "name": "x", "account": "y"}), 400,
         "parameter_invalid"),
        (client.request("POST", "/v1/receivers", {"type": "merchant", "name": "x", "account": "z",
                                                  "bindings": {"nowhere": "q"}}), 400, "unknown_channel"),
        (client.request("POST", "/v1/payments", {"merchant_order_no": "o", "amount": 100, "splits": [
            {"receiver": rcv["id"], "amount": 100}]}), 400, "split_exceeds_payment"),    # the fee (1) comes first
        (client.request("POST", "/v1/payments", {"merchant_order_no": "o", "amount": 100, "splits": [
            {"receiver": theirs["id"], "amount": 5}]}), 400, "unknown_receiver"),        # another merchant's
        (client.request("POST", "/v1/payments", {"merchant_order_no": "o", "amount": 100, "splits": [
            {"receiver": rcv["id"], "amount": 0}]}), 400, "amount_too_small"),
    ]
    for response, status, code in cases:
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text
    assert gw.count("payments") == 0 and gw.count("splits") == 0
    processing = client.create_payment(merchant_order_no="o-open", amount=1000)
    early = client.request("POST", f"/v1/payments/{processing['id']}/splits",
                           {"merchant_split_no": "s", "receiver": rcv["id"], "amount": 10})
    assert (early.status_code, early.json()["error"]["code"]) == (409, "payment_not_splittable")
    assert client.request("GET", f"/v1/receivers/{theirs['id']}").status_code == 404
    assert client.request("GET", f"/v1/receivers/{rcv['id']}").json()["name"] == "S**********d"   # masked


def test_with_the_return_policy_a_refund_takes_splits_back_first(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()).with_changes(split_refund_policy="return", **FAST))
    client = gw.client(gw.merchant())
    older, newer = receiver(client, "older"), receiver(client, "newer")
    payment = paid(client, "o-r", 10000)                                         # fee 60
    for number, rcv, amount in (("s-old", older, 3000), ("s-new", newer, 2000)):
        made = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                              {"merchant_split_no": number, "receiver": rcv["id"], "amount": amount}).json()
        assert wait_for(lambda m=made: client.request("GET", f"/v1/splits/{m['id']}").json()["status"] == "succeeded")
    # The merchant kept 10000 - fee 60 - 5000 split = 4940; a refund of 7500 takes 7500 - 45 (the fee it
    # gives back) = 7455 from the merchant, so 2515 comes back from the receivers, newest split first.
    refund = client.create_refund(payment["id"], merchant_refund_no="r-big", amount=7500)
    assert wait_for(lambda: client.get_refund(refund["id"])["status"] == "succeeded")
    by_number = {s["merchant_split_no"]: s for s in client.request(
        "GET", f"/v1/payments/{payment['id']}/splits").json()["data"]}
    assert (by_number["s-new"]["amount_returned"], by_number["s-old"]["amount_returned"]) == (2000, 515)
    assert (receiver_balance(gw, newer["id"]), receiver_balance(gw, older["id"])) == (0, 2485)
    types = [e["type"] for e in client.request("GET", "/v1/events").json()["data"]]
    assert types.count("split.returned") == 2
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []


def test_a_return_that_fails_leaves_the_refund_unmade(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()).with_changes(split_refund_policy="return", **FAST))
    client = gw.client(gw.merchant())
    spent = receiver(client, "spent-0000")           # the sandbox's receiver that has spent everything
    payment = paid(client, "o-f", 10000)
    made = client.request("POST", f"/v1/payments/{payment['id']}/splits",
                          {"merchant_split_no": "s", "receiver": spent["id"], "amount": 4000}).json()
    assert wait_for(lambda: client.request("GET", f"/v1/splits/{made['id']}").json()["status"] == "succeeded")
    refused = client.request("POST", f"/v1/payments/{payment['id']}/refunds",
                             {"merchant_refund_no": "r", "amount": 8000})
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "split_return_failed")
    assert "BALANCE_NOT_ENOUGH" in refused.json()["error"]["message"]
    assert gw.count("refunds") == 0 and receiver_balance(gw, spent["id"]) == 4000
    split = client.request("GET", f"/v1/splits/{made['id']}").json()
    assert split["amount_returned"] == 0
    # What was never split can still be refunded.
    small = client.create_refund(payment["id"], merchant_refund_no="r-small", amount=5000)
    assert wait_for(lambda: client.get_refund(small["id"])["status"] == "succeeded")
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []


def test_a_split_the_request_sends_is_not_sent_by_the_janitor_at_the_same_time(gateway_factory, db_url) -> None:
    """The request that makes a split due sends it itself; until its first query is due, the janitor's
    sweep does not take it, even while the channel is slow to answer (two sends of one split would race
    their answers: one could be a refusal while the other moved the money)."""
    import asyncio
    import threading

    from gateway.models import Split

    # The first query is due in a minute, not FAST's 0.3 s: the sweep below must not find it due merely
    # because a loaded machine took longer than that between the split's insert and the sweep.
    gw = gateway_factory(make_settings(db_url, free_port()).with_changes(
        **{**FAST, "query_schedule_seconds": (60.0, 0.3, 0.3)}))
    client = gw.client(gw.merchant())
    rcv = receiver(client, bindings={"sandbox": "sbx-merchant-42"})
    payment = paid(client, "o-slow", 10000)
    channel = gw.gateway.host.account("sandbox").channel
    answering, swept = threading.Event(), []
    real_split = channel.split

    async def slow_split(request):  # noqa: ANN001, ANN202
        await asyncio.to_thread(answering.wait, 10)
        return await real_split(request)

    channel.split = slow_split
    try:
        sending = threading.Thread(target=lambda: client.request("POST", f"/v1/payments/{payment['id']}/splits", {
            "merchant_split_no": "s-slow", "receiver": rcv["id"], "amount": 3000}))
        sending.start()
        assert wait_for(lambda: gw.count("splits") == 1)
        with gw.gateway.db.transaction() as conn:      # what a sweep now would take
            swept = gw.gateway.janitor._claim(Split.__table__)(conn)
    finally:
        answering.set()
        sending.join(10)
        channel.split = real_split
    assert swept == []
    [at_channel] = [s for o in channel._sim.orders.values() for s in o.splits.values()]
    assert at_channel["amount"] == 3000
