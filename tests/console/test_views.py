"""The operator console's security, over real HTTP: sessions, CSRF, roles, maker-checker, escaping,
the audit log. (The browser walk-through is tests/test_console_browser.py.)"""
from __future__ import annotations

import pytest

from gateway.clock import Clock
from gateway.console.views import routes
from tests.conftest import checkout, free_port, make_settings, wait_for
from tests.support.console import Browser, a_difference_and_two_operators, add_operator


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """The console reads through the same queries on both databases (the browser test runs on PostgreSQL)."""
    return sqlite_url






def test_every_page_needs_a_session_and_sign_in_needs_the_password(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()))
    add_operator(gw, "vera", "viewer")
    browser = Browser(gw.url)
    for route in routes():
        if route.path in ("/login",):
            continue
        path = "/console" + route.path.replace("{payment_id}", "pay_x").replace("{run_id}", "run_x") \
            .replace("{item_id:id}", "1").replace("{event_id}", "evt_x").replace("{change_id:id}", "1")
        for method in route.methods - {"HEAD"}:
            answer = browser.http.request(method, path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login?next="), path
    assert browser.http.get("/console").status_code == 307
    assert browser.sign_in("vera", "wrong password!").status_code == 401
    assert browser.sign_in("nobody").status_code == 401
    signed = browser.sign_in("vera", next_="/console/payments?q=x")
    assert (signed.status_code, signed.headers["location"]) == (303, "/console/payments?q=x")
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert browser.http.get("/console/payments").status_code == 200
    # Signing in never sends anyone off the console (no open redirect).
    other = Browser(gw.url)
    assert other.sign_in("vera", next_="https://evil.example/").headers["location"] == "/console/"
    assert other.sign_in("vera", next_="//evil.example/x").headers["location"] == "/console/"


def test_forms_need_the_csrf_token_and_roles_are_enforced_on_the_server(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()).with_changes(notify_poll_seconds=3600))
    client = gw.client(gw.merchant())
    payment = client.create_payment(merchant_order_no="c-1", amount=300, notify_url="http://127.0.0.1:9/x")
    checkout(payment)
    assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
    event_id = client.request("GET", "/v1/events").json()["data"][0]["id"]
    add_operator(gw, "vera", "viewer")
    add_operator(gw, "otto", "operator")
    viewer, operator = Browser(gw.url), Browser(gw.url)
    viewer.sign_in("vera")
    operator.sign_in("otto")
    path = f"/console/events/{event_id}/redeliver"
    # No token, a wrong token, or another session's token: refused, nothing done.
    assert operator.http.post(path, data={}).status_code == 403
    assert operator.http.post(path, data={"csrf": "forged"}).status_code == 403
    assert operator.http.post(path, data={"csrf": viewer.csrf("/console/")}).status_code == 403
    assert viewer.post(path, {}).status_code == 403                     # a viewer cannot act
    assert "Redeliver" not in viewer.http.get("/console/events").text
    done = operator.post(path, {})
    assert (done.status_code, done.headers["location"]) == (303, f"/console/events?done=queued+{event_id}")
    audit = operator.http.get("/console/audit").text
    assert "event.redeliver" in audit and event_id in audit and "otto" in audit
    assert audit.count("event.redeliver") == 1


def test_merchant_supplied_text_is_escaped_everywhere(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()))
    creds = gw.merchant('<b onmouseover="alert(1)">shop</b>')
    client = gw.client(creds)
    payment = client.create_payment(merchant_order_no="xss-1", amount=500, subject="<script>alert('subject')</script>",
                                    metadata={"note": "<img src=x onerror=alert(2)>"})
    checkout(payment)
    assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
    add_operator(gw, "vera", "viewer")
    browser = Browser(gw.url)
    browser.sign_in("vera")
    for path in ("/console/payments", f"/console/payments/{payment['id']}", "/console/merchants", "/console/events",
                 "/console/", "/console/channels", "/console/refunds", "/console/recon", "/console/exceptions"):
        page = browser.http.get(path)
        assert page.status_code == 200, path
        assert "<script>alert" not in page.text and "<img src=x" not in page.text and "<b onmouseover" not in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
    story = browser.http.get(f"/console/payments/{payment['id']}").text
    assert "&lt;script&gt;alert(&#39;subject&#39;)&lt;/script&gt;" in story and "&lt;img src=x" in story
    assert "payment.succeeded" in story and "channel_clearing" in story    # its entry and its event are there
    search = browser.http.get("/console/payments", params={"q": "xss-1"}).text
    assert payment["id"] in search


def test_a_disabled_operator_is_signed_out_at_once(gateway_factory, db_url) -> None:
    from gateway.console.identity import set_disabled

    gw = gateway_factory(make_settings(db_url, free_port()))
    add_operator(gw, "otto", "operator")
    browser = Browser(gw.url)
    browser.sign_in("otto")
    assert browser.http.get("/console/").status_code == 200
    with gw.gateway.db.transaction() as conn:
        set_disabled(conn, "otto", True, Clock().now())
    assert browser.http.get("/console/").status_code == 303
    assert browser.sign_in("otto").status_code == 401




def test_an_approver_cannot_approve_their_own_proposal_nor_an_operator_approve(gateway_factory, db_url,
                                                                              tmp_path) -> None:
    day, item, otto, anna, run_page = a_difference_and_two_operators(gateway_factory, db_url, tmp_path)
    gw = day.gw
    proposed = anna.post(f"/console/recon/items/{item['id']}/propose", {"action": "adjust", "reason": "bank says so"},
                         run_page)
    assert proposed.status_code == 303
    proposal = {"proposal": str(day.op.items()[0]["proposal"]["id"])}
    own = anna.post(f"/console/recon/items/{item['id']}/approve", proposal, run_page)
    assert own.status_code == 409 and "same_person" in own.text
    assert otto.post(f"/console/recon/items/{item['id']}/approve", proposal, run_page).status_code == 403
    assert day.op.items()[0]["status"] == "open"                     # nothing was booked
    audit = anna.http.get("/console/audit").text
    assert "recon.propose" in audit and "recon.approve" not in audit and "console.sign_in" in audit
    assert Browser(gw.url).sign_in("anna", "not her password").status_code == 401
    assert "console.sign_in_failed" in anna.http.get("/console/audit").text


def test_repeated_failed_sign_ins_lock_the_name_out(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()))
    add_operator(gw, "otto", "operator")
    browser = Browser(gw.url)
    for _ in range(5):
        assert browser.sign_in("otto", "guess-guess-guess").status_code == 401
    locked = browser.sign_in("otto")                       # even with the right password, for now
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
    assert Browser(gw.url).sign_in("someone-else").status_code == 401


def test_payments_are_found_by_each_of_their_numbers_status_and_day(gateway_factory, db_url) -> None:
    from datetime import timedelta

    from tests.support.operator import today

    gw = gateway_factory(make_settings(db_url, free_port()))
    client = gw.client(gw.merchant())
    paid = client.create_payment(merchant_order_no="find-me", amount=800)
    checkout(paid)
    assert wait_for(lambda: client.get_payment(paid["id"])["status"] == "succeeded")
    other = client.create_payment(merchant_order_no="not-me", amount=900)
    add_operator(gw, "vera", "viewer")
    browser = Browser(gw.url)
    browser.sign_in("vera")
    paid = client.get_payment(paid["id"])

    def found(**params: str) -> set[str]:
        text = browser.http.get("/console/payments", params=params).text
        return {pid for pid in (paid["id"], other["id"]) if f"/console/payments/{pid}" in text}

    for q in (paid["id"], "find-me", paid["channel_transaction_id"], paid["out_trade_no"]):
        assert found(q=q) == {paid["id"]}, q
    assert found(status="processing") == {other["id"]}
    assert found(date=today().isoformat()) == {paid["id"], other["id"]}
    assert found(date=(today() - timedelta(days=1)).isoformat()) == set()
    assert found(q="nothing-like-it") == set()


def test_a_payments_channel_exchanges_are_kept_with_secrets_redacted(gateway_factory, db_url) -> None:
    from gateway.exchanges import redacted_body

    gw = gateway_factory(make_settings(db_url, free_port(), callback_mode="drop").with_changes(
        health_flush_seconds=0.2))
    client = gw.client(gw.merchant())
    payment = client.create_payment(merchant_order_no="ex-1", amount=600)
    checkout(payment)
    assert client.get_payment(payment["id"], sync=True)["status"] == "succeeded"     # a query to the channel
    add_operator(gw, "vera", "viewer")
    browser = Browser(gw.url)
    browser.sign_in("vera")
    assert wait_for(lambda: "/api/query" in browser.http.get(f"/console/payments/{payment['id']}").text)
    story = browser.http.get(f"/console/payments/{payment['id']}").text
    assert payment["out_trade_no"] in story and "SUCCESS" in story                  # what was sent and answered
    # Signatures, keys and card numbers never reach the page (an Alipay-style form, a UnionPay answer).
    shown = redacted_body(b"app_id=2021&sign=SECRETSIG&biz_content=%7B%7D&sign_type=RSA2") + redacted_body(
        b'{"accNo": "6216261000000000018", "certId": "123", "signature": "abc", "txnAmt": "100"}')
    assert "SECRETSIG" not in shown and "6216261000000000018" not in shown and "abc" not in shown
    assert '"txnAmt": "100"' in shown and '"app_id": "2021"' in shown


def test_the_overview_counts_up_to_the_books_day_not_the_utc_date(db_url) -> None:
    """At 17:00 UTC it is already the next day in Beijing, the books' day: a fee booked then is on the
    overview's last day. (Counted up to the UTC date, it was missing from 16:00 to 24:00 UTC.)"""
    from datetime import UTC, datetime, time, timedelta

    from ledger.core import AccountRef, Posting
    from tests.conftest import Running, start_gateway
    from tests.support.unionpay import ShiftedClock

    clock = ShiftedClock()
    real = datetime.now(UTC)
    clock.offset = datetime.combine(real.date() + timedelta(days=1), time(17, 0), UTC) - real
    settings = make_settings(db_url, free_port())
    app, server = start_gateway(settings, clock=clock)
    with server:
        gw = Running(settings.public_url, settings, app)
        now = gw.gateway.clock.now()
        assert gw.gateway.ledger.day.date_of(now) == now.date() + timedelta(days=1)
        with gw.gateway.db.transaction() as conn:
            gw.gateway.ledger.post(conn, "test:fee-after-16-utc", "payment.succeeded", [
                Posting.debit(AccountRef("channel_clearing", "sandbox", "CNY"), 4321),
                Posting.credit(AccountRef("fee_income", "", "CNY"), 4321)], now=now)
        add_operator(gw, "vera", "viewer")
        browser = Browser(gw.url)
        browser.sign_in("vera")
        assert "CNY 43.21" in browser.http.get("/console/").text
