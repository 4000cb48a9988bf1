"""WeChat Pay's documented answers, table by table (plugins/wechatpay/answers.py), driven through the
simulator over real HTTP: what each answer to a refund, a split or an order means in the end (final,
unknown, ask again), by the synchronous answer, the query and the callback; no run of unknown answers
ever moves money twice or fails what WeChat Pay did not refuse; and a refund that goes ABNORMAL stays
reserved and shown until WeChat Pay says SUCCESS, which is applied once."""
from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text

from gateway.config import CircuitConfig
from gateway.janitor import exceptions
from plugins.wechatpay import wire
from tests.conftest import ServerThread, free_port, wait_for
from tests.support.operator import books_clean
from tests.support.splits import receiver
from tests.support.wechatpay import simulator, wechat_settings

FAST = dict(query_schedule_seconds=(0.2,) * 20, janitor_poll_seconds=0.1, query_give_up_seconds=3600)


def answer(status: int, code: str, after: bool = False) -> dict[str, Any]:
    """WeChat Pay's next answer to an operation; after: it acted first (as a timeout after it acted looks)."""
    return {"status": status, "code": code, "after": after}


class World:
    def __init__(self, gw: Any, sim: Any, sim_url: str) -> None:
        self.gw, self.sim, self.sim_url = gw, sim, sim_url
        self.client = gw.client(gw.merchant())
        self.n = 0

    def faults(self, **faults: Any) -> None:
        httpx.post(f"{self.sim_url}/sim/faults", json=faults).raise_for_status()

    def paid(self, **fields: Any) -> dict:
        self.n += 1
        self.faults(callback_mode="normal")
        payment = self.client.create_payment(merchant_order_no=f"ans-{self.n}", amount=10000, channel="wx",
                                             method="native", **fields)
        httpx.post(f"{self.sim_url}/sim/orders/{payment['out_trade_no']}/pay", json={}).raise_for_status()
        assert wait_for(lambda: self.client.get_payment(payment["id"])["status"] == "succeeded")
        return payment

    def events(self, resource_id: str) -> list[str]:
        return [e["type"] for e in self.client.request("GET", "/v1/events").json()["data"]
                if e["data"]["object"].get("id") == resource_id]


@pytest.fixture
def world(gateway_factory, db_url):  # noqa: ANN001, ANN201
    key = wire.new_key()
    sim = simulator(key, split_ready_seconds=0.3)
    port = free_port()
    with ServerThread(sim.app, port):
        # Its circuit stays shut: the unknown answers here are the point, not a reason to stop paying.
        gw = gateway_factory(wechat_settings(db_url, sim, key, port, {"profit_sharing_delay_seconds": 0.3},
                                             CircuitConfig(min_calls=10_000), **FAST))
        yield World(gw, sim, f"http://127.0.0.1:{port}")


# (what WeChat Pay answers, callbacks delivered?, the refund's end, its failure code, times money moved)
REFUNDS = [
    ("200 PROCESSING, then REFUND.SUCCESS", {}, True, "succeeded", None, 1),
    ("200 PROCESSING, no callback: the query's SUCCESS", {}, False, "succeeded", None, 1),
    ("500 SYSTEM_ERROR after acting: unknown; the query finds it", {"refund": [answer(500, "SYSTEM_ERROR", True)]},
     False, "succeeded", None, 1),
    ("500 SYSTEM_ERROR before acting: unknown; 404 on query, resent under its number",
     {"refund": [answer(500, "SYSTEM_ERROR")]}, True, "succeeded", None, 1),
    ("429 FREQUENCY_LIMITED: not taken, ask again; resent under its number",
     {"refund": [answer(429, "FREQUENCY_LIMITED")]}, False, "succeeded", None, 1),
    ("400 INVALID_REQUEST though it acted (a resend refused as a repeat): the query finds it",
     {"refund": [answer(400, "INVALID_REQUEST", True)]}, False, "succeeded", None, 1),
    ("query 500 and 429 meanwhile: asked again", {"refund": [answer(500, "SYSTEM_ERROR", True)],
                                                  "refund_query": [answer(500, "SYSTEM_ERROR"),
                                                                   answer(429, "FREQUENCY_LIMITED")]},
     False, "succeeded", None, 1),
    ("403 NOT_ENOUGH: final", {"refund": [answer(403, "NOT_ENOUGH")]}, True, "failed", "NOT_ENOUGH", 0),
    ("403 NO_AUTH: final", {"refund": [answer(403, "NO_AUTH")]}, True, "failed", "NO_AUTH", 0),
    ("403 USER_ACCOUNT_ABNORMAL: final", {"refund": [answer(403, "USER_ACCOUNT_ABNORMAL")]}, True, "failed",
     "USER_ACCOUNT_ABNORMAL", 0),
    ("401 SIGN_ERROR: not final; no record, resent", {"refund": [answer(401, "SIGN_ERROR")]}, True, "succeeded",
     None, 1),
]


def test_each_refund_answer_ends_as_wechat_pay_documents_it(world) -> None:
    for name, script, callbacks, status, code, moved in REFUNDS:
        payment = world.paid()
        world.faults(callback_mode="normal" if callbacks else "drop", script=script)
        refund = world.client.create_refund(payment["id"], merchant_refund_no=f"r-{world.n}", amount=2500)
        assert refund["status"] != "failed" or code, name           # an unknown first answer never fails it
        assert wait_for(lambda: world.client.get_refund(refund["id"])["status"] == status), name
        ended = world.client.get_refund(refund["id"])
        assert (ended["failure"] or {}).get("code") == code, (name, ended)
        numbers = [r["out_refund_no"] for r in world.sim.refunds.values() if r["out_trade_no"] == payment["out_trade_no"]]
        assert len(numbers) == moved and all(world.sim.moved_for("refund", n) == 1 for n in numbers), name
        assert world.client.get_payment(payment["id"])["amount_refunded"] == (2500 if status == "succeeded" else 0)
        assert "refund.failed" not in world.events(refund["id"]) or status == "failed", name
    # The CLOSED end (7 days without funds) is final, by callback and by query alike.
    for callbacks in (True, False):
        payment = world.paid()
        world.faults(callback_mode="normal" if callbacks else "drop", refund_result="CLOSED")
        refund = world.client.create_refund(payment["id"], merchant_refund_no=f"closed-{callbacks}", amount=2500)
        assert wait_for(lambda: world.client.get_refund(refund["id"])["status"] == "failed")
        assert world.client.get_payment(payment["id"])["amount_refund_pending"] == 0
    world.faults(refund_result="SUCCESS")
    assert books_clean(world.gw)


def test_no_run_of_unknown_answers_refunds_twice_or_fails(world) -> None:
    """However many unknown answers come in a row, before or after WeChat Pay acted, the refund is made
    exactly once under its one number and ends succeeded: never failed, never a second number."""
    runs = [
        [answer(500, "SYSTEM_ERROR"), answer(500, "SYSTEM_ERROR", True)],
        [answer(429, "FREQUENCY_LIMITED"), answer(429, "FREQUENCY_LIMITED"), answer(500, "SYSTEM_ERROR")],
        [answer(500, "SYSTEM_ERROR", True), answer(400, "INVALID_REQUEST", True)],
    ]
    for run in runs:
        payment = world.paid()
        world.faults(callback_mode="drop", script={"refund": list(run), "refund_query": [
            answer(500, "SYSTEM_ERROR"), answer(429, "FREQUENCY_LIMITED")]})
        refund = world.client.create_refund(payment["id"], merchant_refund_no=f"run-{world.n}", amount=1000)
        assert wait_for(lambda: world.client.get_refund(refund["id"])["status"] == "succeeded"), run
        numbers = [r["out_refund_no"] for r in world.sim.refunds.values()
                   if r["out_trade_no"] == payment["out_trade_no"]]
        assert len(numbers) == 1 and world.sim.moved_for("refund", numbers[0]) == 1, run
        assert "refund.failed" not in world.events(refund["id"])
        world.faults(script={"refund": [], "refund_query": []})
    assert books_clean(world.gw)


def test_an_abnormal_refund_stays_reserved_and_shown_until_its_success_is_applied_once(world) -> None:
    """REFUND.ABNORMAL: the money has left the merchant and the payer's bank refused it. The refund stays
    processing and reserved, is shown to operators and the merchant, is never refunded again; when a
    person resolves it (apply-abnormal-refund) WeChat Pay says SUCCESS, booked once."""
    payment = world.paid()
    world.faults(refund_result="ABNORMAL")
    refund = world.client.create_refund(payment["id"], merchant_refund_no="abnormal", amount=4000)

    def attention() -> dict | None:
        return world.client.get_refund(refund["id"])["attention"]

    shown = wait_for(attention)
    assert shown["code"] == "ABNORMAL" and "apply-abnormal-refund" in shown["message"]
    held = world.client.get_refund(refund["id"])
    assert held["status"] == "processing"
    assert world.client.get_payment(payment["id"])["amount_refund_pending"] == 4000
    # The merchant cannot refund the same money again while it is held.
    again = world.client.request("POST", f"/v1/payments/{payment['id']}/refunds",
                                 {"merchant_refund_no": "again", "amount": 10000 - 4000 + 1})
    assert again.status_code == 400
    with world.gw.gateway.db.transaction() as conn:
        listed = [e for e in exceptions(conn) if e["id"] == refund["id"]]
    assert listed and listed[0]["status"] == "processing: ABNORMAL"
    assert world.events(refund["id"]).count("refund.attention") == 1
    # The janitor keeps asking (ABNORMAL again each time) and changes nothing.
    queries = world.gw.count("channel_exchanges")
    assert wait_for(lambda: world.gw.count("channel_exchanges") > queries + 2)
    assert world.events(refund["id"]).count("refund.attention") == 1
    [at_channel] = [r for r in world.sim.refunds.values() if r["status"] == "ABNORMAL"]
    # A person resolves it: WeChat Pay's SUCCESS comes by callback, twice (a retry), and by query.
    world.faults(callback_mode="duplicate")
    httpx.post(f"{world.sim_url}/sim/refunds/{at_channel['out_refund_no']}/resolve").raise_for_status()
    assert wait_for(lambda: world.client.get_refund(refund["id"])["status"] == "succeeded")
    ended = world.client.get_refund(refund["id"])
    assert ended["attention"] is None and world.client.get_payment(payment["id"])["amount_refunded"] == 4000
    assert world.sim.moved_for("refund", at_channel["out_refund_no"]) == 1
    assert world.events(refund["id"]).count("refund.succeeded") == 1
    with world.gw.gateway.db.transaction() as conn:
        booked = conn.execute(text("SELECT count(*) FROM ledger_entries WHERE key = :k"),
                              {"k": f"refund:{refund['id']}:refund.succeeded"}).scalar_one()
        outcomes = conn.execute(text("SELECT outcome FROM channel_callbacks WHERE detail = 'refund succeeded'"))\
            .scalars().all()
        assert [e for e in exceptions(conn) if e["id"] == refund["id"]] == []
    assert booked == 1 and outcomes.count("applied") <= 1 and "duplicate" in outcomes
    world.faults(refund_result="SUCCESS", callback_mode="normal")
    assert books_clean(world.gw)


# (what WeChat Pay answers a profit-sharing order, the split's end, its failure code, times money moved)
SPLITS = [
    ("200 PENDING, then SUCCESS by query", {}, "succeeded", None, 1),
    ("500 SYSTEM_ERROR after acting: the query finds it", {"share": [answer(500, "SYSTEM_ERROR", True)]},
     "succeeded", None, 1),
    ("500 SYSTEM_ERROR before acting: 404 on query, resent under its number", {"share": [answer(500, "SYSTEM_ERROR")]},
     "succeeded", None, 1),
    ("429 FREQUENCY_LIMITED: resent", {"share": [answer(429, "FREQUENCY_LIMITED")]}, "succeeded", None, 1),
    ("403 NOT_ENOUGH: final", {"share": [answer(403, "NOT_ENOUGH")]}, "failed", "NOT_ENOUGH", 0),
    ("400 INVALID_REQUEST: final (no such order there)", {"share": [answer(400, "INVALID_REQUEST")]}, "failed",
     "INVALID_REQUEST", 0),
]


def test_each_split_answer_ends_as_wechat_pay_documents_it(world) -> None:
    supplier = receiver(world.client, "1900000112", name="供应商")
    for name, script, status, code, moved in SPLITS:
        payment = world.paid(splittable=True)
        world.faults(script=script)
        made = world.client.request("POST", f"/v1/payments/{payment['id']}/splits",
                                    {"merchant_split_no": f"s-{world.n}", "receiver": supplier["id"],
                                     "amount": 1000}).json()
        assert wait_for(lambda: world.client.request("GET", f"/v1/splits/{made['id']}").json()["status"] == status), name
        ended = world.client.request("GET", f"/v1/splits/{made['id']}").json()
        assert (ended["failure"] or {}).get("code") == code, (name, ended)
        assert world.sim.moved_for("share", made["out_split_no"]) == moved, name
        assert world.client.get_payment(payment["id"])["amount_split"] == (1000 if status == "succeeded" else 0)
    assert books_clean(world.gw)


def test_order_answers_a_403_declines_and_a_used_number_is_not_a_failure(world) -> None:
    """Creating an order: the 403s WeChat Pay documents as refusals (NO_AUTH, TRADE_ERROR) fail it; a
    number already used there (403 OUT_TRADE_NO_USED) and a 500 are unknown: the payment stays open."""
    for code, status in (("NO_AUTH", "failed"), ("TRADE_ERROR", "failed"), ("OUT_TRADE_NO_USED", "processing")):
        world.faults(script={"create": [answer(403, code)]})
        made = world.client.request("POST", "/v1/payments", {"merchant_order_no": f"create-{code}", "amount": 100,
                                                             "channel": "wx", "method": "native"}).json()
        assert made["status"] == status, (code, made)
    world.faults(script={"create": [answer(500, "SYSTEM_ERROR", True)]})
    made = world.client.request("POST", "/v1/payments", {"merchant_order_no": "create-500", "amount": 100,
                                                         "channel": "wx", "method": "native"}).json()
    assert made["status"] == "processing" and made["action"] is None
    # h5 needs the payer's own IP; WeChat Pay refuses a made-up one.
    h5 = world.client.request("POST", "/v1/payments", {"merchant_order_no": "h5-no-ip", "amount": 100,
                                                       "channel": "wx", "method": "h5"}).json()
    assert h5["status"] == "failed" and h5["failure"]["code"] == "payer_client_ip_required"
