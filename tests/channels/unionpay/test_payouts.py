"""UnionPay payouts (代付, txnType 12) and same-day cancels (31) against the simulator over real HTTP,
the statement with payouts on it reconciled, and a payout that is never paid twice: not when the
channel's answer times out and the gateway is killed mid-call and restarted, not when UnionPay
answers "in progress" or "no such order" (34), not when its request never left (then it goes once,
under a new number); failed only when the settled statements prove it absent."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from gateway.client import Client
from gateway.testing.server import start_logged
from plugins.unionpay import wire
from tests.conftest import ServerThread, free_port, wait_for
from tests.support import REPO
from tests.support.operator import Operator, books_clean
from tests.support.unionpay import CARD, ShiftedClock, UnionPayMerchant, fund, get, reconcile_days, up_settings


def test_payouts_cancels_and_the_statement_with_payouts_on_it(gateway_factory, db_url, tmp_path) -> None:
    merchant = UnionPayMerchant()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with ServerThread(merchant.sim.app, port):
        settings = up_settings(db_url, url, merchant, query_schedule_seconds=(3600,))
        gw = gateway_factory(settings)
        creds = gw.merchant()
        client = gw.client(creds)
        # A full refund on the day of the payment is a same-day cancel (31); a partial one a refund (04).
        whole = client.create_payment(merchant_order_no="up-1", amount=5000, channel="up")
        part = client.create_payment(merchant_order_no="up-2", amount=8000, channel="up")
        for payment in (whole, part):
            merchant.pay(url, payment)
            assert wait_for(lambda p=payment: client.get_payment(p["id"])["status"] == "succeeded")
        cancel = client.create_refund(whole["id"], merchant_refund_no="c-1", amount=5000)
        refund = client.create_refund(part["id"], merchant_refund_no="r-1", amount=3000)
        for r in (cancel, refund):
            assert wait_for(lambda r=r: client.get_refund(r["id"])["status"] == "succeeded")
        kinds = {o.order_id: o.txn_type for o in merchant.sim.orders.values()}
        assert kinds[_out_refund_no(gw, cancel["id"])] == "31"
        assert kinds[_out_refund_no(gw, refund["id"])] == "04"

        fund(settings, creds.merchant_id, available=50000, position=40000)
        made = client.request("POST", "/v1/payouts", {"merchant_payout_no": "po-1", "amount": 20000,
                                                      "bank_account": CARD})
        assert made.status_code == 201, made.text
        payout = made.json()
        assert payout["channel"] == "up" and payout["status"] in ("processing", "succeeded")
        assert wait_for(lambda: client.request("GET", f"/v1/payouts/{payout['id']}").json()["status"] == "succeeded")
        sent = merchant.sim.order(payout["out_payout_no"])
        assert (sent.txn_type, sent.biz_type, sent.amount) == ("12", "000401", 20000)
        [request] = [f for f in merchant.sim.received if f["txnType"] == "12"]
        assert (request["accType"], request["currencyCode"]) == ("01", "156")
        assert merchant.sim.paid_count == {payout["out_payout_no"]: 1}
        # A card UnionPay cannot pay: accepted, then failed (61) and notified; the money comes back.
        declined = client.request("POST", "/v1/payouts", {"merchant_payout_no": "po-2", "amount": 100,
                                                          "bank_account": {**CARD, "number": "6216261000000000000"}})
        assert wait_for(lambda: get(client, declined.json(), sync=False)["status"] == "failed")
        assert merchant.sim.order(declined.json()["out_payout_no"]).code == "61"
        balance = client.request("GET", "/v1/balance").json()["balances"][0]
        assert (balance["available"], balance["payout_pending"]) == (30000, 0)
        # The day's file carries the payout too, matched against it; nothing is left over.
        report = Operator(settings, tmp_path).reconcile("up", wire.settlement_day(datetime.now(UTC)).date())
        assert report["status"] == "completed", report
        assert report["counts"]["matched"] == 5 and report["open"] == 0, report
        assert report["summary"]["statement"]["payout_count"] == 1
        assert books_clean(gw)


def _out_refund_no(gw, refund_id: str) -> str:  # noqa: ANN001
    from gateway.models import Refund

    with gw.gateway.db.transaction() as conn:
        return conn.execute(Refund.__table__.select().where(Refund.__table__.c.id == refund_id)).first().out_refund_no


def test_a_payout_is_paid_once_across_a_timeout_a_crash_and_a_retry(db_url, tmp_path) -> None:
    merchant = UnionPayMerchant()
    port = free_port()
    sim_url = f"http://127.0.0.1:{port}"
    with ServerThread(merchant.sim.app, port):
        settings = up_settings(db_url, sim_url, merchant)
        op = Operator(settings, tmp_path)
        # The janitor first asks 2 s after a payout began; the gateway gives up on an answer after 1 s.
        slow = op.config.read_text().replace("log_json = true", "log_json = true\nchannel_timeout_seconds = 1.0\n"
                                             "janitor_poll_seconds = 0.2").replace(
            "query_schedule_seconds = [3600]", "query_schedule_seconds = [2, 0.5, 0.5]")
        op.config.write_text(slow)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        cli = [sys.executable, "-m", "gateway.cli", "--config", str(op.config)]
        gateway_port = int(settings.public_url.rsplit(":", 1)[1])

        def serve() -> subprocess.Popen:
            return start_logged(cli + ["serve", "--port", str(gateway_port)], tmp_path / "server.log", env, tmp_path,
                                f"{settings.public_url}/healthz")

        creds = json.loads(op.run("merchant", "create", "shop", "--json").stdout)
        fund(settings, creds["merchant_id"], available=50000, position=50000)
        # UnionPay takes the payout and pays it, but its answer comes after 3 s and it tells nobody.
        httpx.post(f"{sim_url}/sim/faults", json={"payout_answer_delay_ms": 3000, "drop_notifications": True})
        server = serve()
        client = Client(settings.public_url, creds["merchant_id"], creds["secret"])
        body = {"merchant_payout_no": "po-crash", "amount": 12000, "bank_account": CARD}
        outcome: list = []
        thread = threading.Thread(target=lambda: outcome.append(_try(client, body)))
        thread.start()
        assert wait_for(lambda: merchant.sim.paid_count != {}, timeout=10)    # UnionPay has paid …
        server.send_signal(signal.SIGKILL)                                     # … and the gateway dies mid-call
        server.wait()
        thread.join()
        assert outcome == ["connection lost"]
        # Restarted, the janitor asks UnionPay (nothing sends it elsewhere), and the merchant's retry
        # of the same request is the same payout.
        server = serve()
        try:
            again = client.request("POST", "/v1/payouts", body)
            assert again.status_code == 200, again.text
            payout_id = again.json()["id"]
            assert wait_for(lambda: client.request("GET", f"/v1/payouts/{payout_id}").json()["status"] == "succeeded",
                            timeout=30)
            number = again.json()["out_payout_no"]
            assert merchant.sim.paid_count == {number: 1}
            balance = client.request("GET", "/v1/balance").json()["balances"][0]
            assert (balance["available"], balance["payout_pending"]) == (50000 - 12000, 0)
            assert op.run("ledger", "check").returncode == 0
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=15)


def _try(client: Client, body: dict) -> str:
    try:
        return f"answered {client.request('POST', '/v1/payouts', body).status_code}"
    except httpx.HTTPError:
        return "connection lost"


HOLD = ("03", "04", "05", "01", "12", "60")


def test_a_payout_unionpay_has_not_finished_or_never_heard_of_stays_pending_and_is_never_sent_again(
        gateway_factory, db_url) -> None:
    """Form10_6_3_Query: origRespCode 03, 04, 05, 01, 12, 60 and respCode 34 mean "ask again"; and the
    request's own answers 03, 04, 05, 01, 12, 60 are no failure either (Form10_6_2_DF)."""
    merchant = UnionPayMerchant()
    port = free_port()
    sim_url = f"http://127.0.0.1:{port}"
    with ServerThread(merchant.sim.app, port):
        settings = up_settings(db_url, sim_url, merchant, query_schedule_seconds=(3600,))
        gw = gateway_factory(settings)
        creds = gw.merchant()
        client = gw.client(creds)
        fund(settings, creds.merchant_id, available=100000, position=100000)
        sim = merchant.sim
        held = {}
        for code in HOLD:                                   # UnionPay took it and has not finished: origRespCode
            sim.faults.payout_hold = code
            made = client.request("POST", "/v1/payouts", {"merchant_payout_no": f"hold-{code}", "amount": 100,
                                                          "bank_account": CARD}).json()
            held[code] = made
        sim.faults.payout_hold = ""
        sim.faults.server_errors = 1                        # this one is lost on its way: UnionPay answers 34
        lost = client.request("POST", "/v1/payouts", {"merchant_payout_no": "lost", "amount": 100,
                                                      "bank_account": CARD}).json()
        answered = {}
        for code in HOLD:                                   # the request's answer says "query later"; it is paid
            sim.faults.payout_answer = code
            answered[code] = client.request("POST", "/v1/payouts", {"merchant_payout_no": f"answer-{code}",
                                                                    "amount": 100, "bank_account": CARD}).json()
        sim.faults.payout_answer = ""
        for _ in range(3):                                  # asked again and again: nothing changes, nothing is sent
            for payout in (*held.values(), lost):
                assert get(client, payout)["status"] == "processing", payout
        assert sim.received[-1]["txnType"] == "00"
        for code, payout in held.items():
            assert sim.order(payout["out_payout_no"]).code == code
            assert sim.payout_requests[payout["out_payout_no"]] == 1
        assert sim.payout_requests[lost["out_payout_no"]] == 0 and sim.order(lost["out_payout_no"]) is None
        assert all(get(client, p)["out_payout_no"] == p["out_payout_no"] for p in (*held.values(), lost))
        for payout in answered.values():
            assert wait_for(lambda p=payout: get(client, p)["status"] == "succeeded")
        assert dict(sim.paid_count) == {p["out_payout_no"]: 1 for p in answered.values()}
        balance = client.request("GET", "/v1/balance").json()["balances"][0]
        assert balance["payout_pending"] == 100 * (len(HOLD) + 1)
        assert books_clean(gw)


def test_a_payout_whose_request_never_left_goes_once_under_a_new_number_with_the_current_time(
        gateway_factory, db_url) -> None:
    merchant = UnionPayMerchant()
    port = free_port()
    settings = up_settings(db_url, f"http://127.0.0.1:{port}", merchant, query_schedule_seconds=(3600,))
    gw = gateway_factory(settings)
    creds = gw.merchant()
    client = gw.client(creds)
    fund(settings, creds.merchant_id, available=50000, position=50000)
    # UnionPay cannot be reached at all (no connection): not a byte of the payout left.
    made = client.request("POST", "/v1/payouts", {"merchant_payout_no": "po-1", "amount": 20000,
                                                  "bank_account": CARD}).json()
    assert made["status"] == "processing"
    first = made["out_payout_no"]
    with ServerThread(merchant.sim.app, port):
        assert wait_for(lambda: get(client, made)["status"] == "succeeded")
        payout = get(client, made, sync=False)
        second = payout["out_payout_no"]
        assert second != first and int(second[:12], 16) > int(first[:12], 16)
        assert [(r["out_payout_no"], r["because"]) for r in payout["routing"]["renumbered"]] == [(first, "never_sent")]
        [sent] = [f for f in merchant.sim.received if f["txnType"] == "12"]
        sent_at = datetime.strptime(sent["txnTime"], "%Y%m%d%H%M%S").replace(tzinfo=wire_beijing())
        assert sent["orderId"] == second and abs(datetime.now(UTC) - sent_at) < timedelta(minutes=1)
        assert dict(merchant.sim.paid_count) == {second: 1} and merchant.sim.payout_requests[first] == 0
        assert books_clean(gw)


def wire_beijing() -> Any:
    from plugins.unionpay.wire import BEIJING

    return BEIJING


def test_a_payout_the_settled_statements_prove_absent_fails_and_releases_its_money(gateway_factory, db_url,
                                                                                   tmp_path) -> None:
    clock = ShiftedClock()
    merchant = UnionPayMerchant(clock)
    port = free_port()
    sim_url = f"http://127.0.0.1:{port}"
    with ServerThread(merchant.sim.app, port):
        settings = up_settings(db_url, sim_url, merchant, query_schedule_seconds=(3600,),
                               statement_dir=str(tmp_path / "statements"))
        gw = gateway_factory(settings)
        creds = gw.merchant()
        client = gw.client(creds)
        fund(settings, creds.merchant_id, available=50000, position=50000)
        sim = merchant.sim
        sim.faults.server_errors = 2               # the encryption certificate query, then the payout: lost
        lost = client.request("POST", "/v1/payouts", {"merchant_payout_no": "lost", "amount": 12000,
                                                      "bank_account": CARD}).json()
        sim.faults.payout_hold = "05"              # this one UnionPay has, unfinished, and lists on no statement
        slow = client.request("POST", "/v1/payouts", {"merchant_payout_no": "slow", "amount": 3000,
                                                      "bank_account": CARD}).json()
        assert get(client, lost)["status"] == "processing" and get(client, slow)["status"] == "processing"
        day = datetime.now(wire_beijing()).date()

        def after(report: dict) -> None:
            if report["business_date"] == day.isoformat():    # the payout's own day: the next days may list it yet
                assert report["status"] == "completed" and report["counts"]["pending_carryover"] == 2, report
                assert get(client, lost, sync=False)["status"] == "processing"

        # Four days on (the carry-over window is three): the files of the days after have it neither.
        first, later = reconcile_days(settings, clock, [(timedelta(), day), (timedelta(days=4), day + timedelta(days=4))],
                                      between=after)
        assert later["status"] == "completed", later
        failed = get(client, lost, sync=False)
        assert failed["status"] == "failed" and failed["failure"]["code"] == "absent_from_statement", failed
        assert get(client, slow, sync=False)["status"] == "processing"        # UnionPay has it: still asked
        assert sim.payout_requests[lost["out_payout_no"]] == 0 and not sim.paid_count
        balance = client.request("GET", "/v1/balance").json()["balances"][0]
        assert (balance["available"], balance["payout_pending"]) == (50000 - 3000, 3000)
        assert books_clean(gw)
