"""Text a database cannot hold (NUL) or a page cannot print (a lone surrogate) is a 400 naming where it was,
in every body, path and query, on both databases; ids and cursors reach 64 bits. Nothing is written and
nothing answers 500."""
from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from sqlalchemy import text

from gateway.client import signed_headers
from gateway.clock import Clock
from gateway.console.identity import create_operator
from plugins.mock import wire
from tests.conftest import SANDBOX_SECRET, checkout, free_port, make_settings, wait_for

NUL, SURROGATE = "a\u0000b", "a\ud800b"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
PASSWORD = "correct horse battery"


def send(gw, merchant, method: str, path: str, body: bytes = b"") -> httpx.Response:  # noqa: ANN001
    url = httpx.URL(f"{gw.url}{path}")
    return httpx.request(method, url, content=body,
                         headers=signed_headers(merchant.merchant_id, merchant.secret, method, url, body))


def body_with(obj: dict, odd: str) -> bytes:
    return json.dumps(obj).replace("ODD", json.dumps(odd)[1:-1]).encode()


def signed_in(gw, role: str) -> httpx.Client:  # noqa: ANN001
    """A console session of a new operator with `role`."""
    with gw.gateway.db.transaction() as conn:
        create_operator(conn, role, role, PASSWORD, Clock().now())
    browser = httpx.Client(base_url=gw.url)
    token = CSRF.search(browser.get("/console/login").text).group(1)
    assert browser.post("/console/login", data={"csrf": token, "name": role, "password": PASSWORD}).status_code == 303
    return browser


@pytest.fixture
def paid(gw, client) -> dict:  # noqa: ANN001
    payment = client.create_payment(merchant_order_no="input-paid", amount=5000, splittable=True)
    checkout(payment)
    assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
    return payment


def _bodies(payment_id: str) -> list[tuple[str, str, dict, str]]:
    """(path, table that must stay as it was, body with ODD where the odd text goes, the parameter named)."""
    return [
        ("/v1/payments", "payments", {"merchant_order_no": "o-odd", "amount": 100, "subject": "ODD"}, "subject"),
        ("/v1/payments", "payments", {"merchant_order_no": "o-odd", "amount": 100, "metadata": {"k": "ODD"}},
         "metadata.k"),
        ("/v1/payments", "payments", {"merchant_order_no": "o-odd", "amount": 100, "metadata": {"ODD": "v"}},
         "metadata"),
        ("/v1/payments", "payments", {"merchant_order_no": "o-odd", "amount": 100,
                                      "splits": [{"receiver": "rcv_x", "amount": 1, "description": "ODD"}]},
         "splits.0.description"),
        (f"/v1/payments/{payment_id}/refunds", "refunds", {"merchant_refund_no": "r-odd", "amount": 1,
                                                            "reason": "ODD"}, "reason"),
        (f"/v1/payments/{payment_id}/splits", "splits", {"merchant_split_no": "s-odd", "receiver": "rcv_x",
                                                          "amount": 1, "description": "ODD"}, "description"),
        ("/v1/receivers", "receivers", {"type": "personal", "name": "ODD", "account": "acc-1"}, "name"),
        ("/v1/receivers", "receivers", {"type": "personal", "name": "Li", "account": "acc-1",
                                        "bindings": {"sandbox": "ODD"}}, "bindings.sandbox"),
        ("/v1/payouts", "payouts", {"merchant_payout_no": "po-odd", "amount": 1, "remark": "ODD",
                                    "bank_account": {"name": "Li", "number": "6216000000000018"}}, "remark"),
        ("/v1/payouts", "payouts", {"merchant_payout_no": "po-odd", "amount": 1,
                                    "bank_account": {"name": "Li", "number": "6216000000000018",
                                                     "bank_code": "ODD"}}, "bank_account.bank_code"),
    ]


@pytest.mark.parametrize("odd", [NUL, SURROGATE], ids=["nul", "lone-surrogate"])
def test_nul_or_a_lone_surrogate_in_any_body_text_is_a_400_naming_it(gw, merchant, paid, odd) -> None:
    for path, table, template, param in _bodies(paid["id"]):
        before = gw.count(table)
        response = send(gw, merchant, "POST", path, body_with(template, odd))
        assert response.status_code == 400, (path, response.text)
        error = response.json()["error"]
        assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "invalid_string", param)
        assert gw.count(table) == before, path


def test_the_json_check_needs_the_signature_first(gw, merchant) -> None:
    body = body_with({"merchant_order_no": "o-1", "amount": 100, "subject": "ODD"}, NUL)
    url = httpx.URL(f"{gw.url}/v1/payments")
    headers = signed_headers(merchant.merchant_id, "wrong-secret", "POST", url, body)
    assert httpx.post(url, content=body, headers=headers).status_code == 401


ODD_TARGETS = [   # (path and query as sent, the parameter the error names)
    ("/v1/payments/pay_%00x", "path"),
    ("/v1/refunds/re_%00", "path"),
    ("/v1/payouts/po_%ff", "path"),
    ("/v1/receivers/rcv_%ed%a0%80", "path"),   # a surrogate, UTF-8 encoded: not UTF-8
    ("/v1/payments/pay_%c0%80", "path"),        # NUL, over-long encoded
    ("/v1/splits/spl_%00/x", "path"),
    ("/v1/payments?merchant_order_no=%00", "merchant_order_no"),
    ("/v1/payments?merchant_order_no=a%ffb", "merchant_order_no"),
    ("/v1/payouts?merchant_payout_no=%ed%a0%80", "merchant_payout_no"),
    ("/v1/events?cursor=1&%00=1", "query"),
    ("/v1/refunds/re_1?sync=%00", "sync"),
    ("/v1/notify/sandbox%00", "path"),
    ("/console/payments?q=%00", "q"),
    ("/hosted/sandbox/%00", "path"),
]


def test_nul_or_bad_utf8_in_a_path_or_query_is_a_400_before_any_route(gw, merchant) -> None:
    for path, param in ODD_TARGETS:
        response = send(gw, merchant, "GET", path)
        assert response.status_code == 400, (path, response.text)
        error = response.json()["error"]
        assert (error["code"], error["param"]) == ("invalid_string", param), path


def test_over_long_lookups_are_refused_and_unknown_ones_are_404(gw, merchant) -> None:
    response = send(gw, merchant, "GET", "/v1/payments?merchant_order_no=" + "x" * 65)
    assert response.status_code == 400 and response.json()["error"]["param"] == "merchant_order_no"
    response = send(gw, merchant, "GET", "/v1/payouts?merchant_payout_no=" + "x" * 65)
    assert response.status_code == 400 and response.json()["error"]["param"] == "merchant_payout_no"
    assert send(gw, merchant, "GET", "/v1/payments/" + "x" * 500).status_code == 404
    assert send(gw, merchant, "GET", "/v1/payments?merchant_order_no=%e4%b8%ad").status_code == 404


@pytest.mark.parametrize("path", ["/v1/events", "/v1/ledger/entries"])
def test_cursors_take_any_64_bit_id(gw, merchant, path) -> None:
    for cursor in (2**31, 2**62, 2**63 - 1):
        response = send(gw, merchant, "GET", f"{path}?cursor={cursor}")
        assert response.status_code == 200, (cursor, response.text)
        assert response.json()["data"] == []
    response = send(gw, merchant, "GET", f"{path}?cursor={2**63}")
    assert response.status_code == 400 and response.json()["error"]["param"] == "cursor"


def test_ids_past_32_bits_are_written_and_paged_through(gw, client, merchant) -> None:
    """Every id and cursor column is 64-bit: a payment, its callback, its entries and its event are
    written with ids past 2^31 and listed by cursor."""
    if gw.gateway.db.is_sqlite:
        pytest.skip("SQLite's INTEGER PRIMARY KEY is its rowid, 64-bit already")
    with gw.gateway.db.transaction() as conn:
        sequences = conn.execute(text("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")).scalars()
        for sequence in sequences:
            conn.execute(text(f"SELECT setval('{sequence}', {2**40})"))
    for n in (1, 2):
        payment = client.create_payment(merchant_order_no=f"big-ids-{n}", amount=700)
        checkout(payment)
        assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
    assert gw.count("channel_callbacks") == 2
    newest = client.request("GET", "/v1/events", params={"limit": "1"}).json()
    older = client.request("GET", "/v1/events", params={"cursor": str(newest["next_cursor"])}).json()
    assert [e["type"] for e in newest["data"] + older["data"]] == ["payment.succeeded"] * 2
    first = client.request("GET", "/v1/ledger/entries", params={"limit": "1"}).json()
    assert first["data"][0]["id"] > 2**40 and first["next_cursor"] > 2**40
    rest = client.request("GET", "/v1/ledger/entries", params={"cursor": str(first["next_cursor"])}).json()
    assert rest["data"] and all(2**40 < entry["id"] < first["next_cursor"] for entry in rest["data"])


def test_a_callback_holding_nul_or_a_lone_surrogate_is_refused_even_signed(gw) -> None:
    for body in (b'{"event":"payment","out_trade_no":"x\\u0000","trade_status":"SUCCESS","amount":1,"currency":"CNY"}',
                 b'{"event":"refund","out_trade_no":"x\\ud800","out_refund_no":"r","refund_status":"SUCCESS",'
                 b'"amount":1}',
                 b'{"event":"payment","out_trade_no":"\\u0000","amount":"\\u0000"}', b"\x00\xff",
                 # a surrogate as raw UTF-8-like bytes, no escape: json.loads reads it as a lone surrogate
                 b'{"event":"payment","out_trade_no":"x\xed\xa0\x80","trade_status":"SUCCESS","amount":1}'):
        headers = wire.signed_headers(SANDBOX_SECRET, body, int(time.time()))
        response = httpx.post(f"{gw.url}/v1/notify/sandbox", content=body, headers=headers)
        assert response.status_code == 400 and response.json()["code"] == "FAIL", response.text
    for form in ("out_trade_no=%00", "a=%ff"):   # a form is checked before routing, for any route
        response = httpx.post(f"{gw.url}/v1/notify/sandbox", content=form,
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_string"
    assert gw.count("channel_callbacks") == 0


def test_console_forms_with_nul_are_a_400_and_multipart_is_refused(gw) -> None:
    browser = httpx.Client(base_url=gw.url)
    token = CSRF.search(browser.get("/console/login").text).group(1)
    response = browser.post("/console/login", data={"csrf": token, "name": "a\x00b", "password": "x"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "name"
    response = browser.post("/console/login", data={"csrf": token, "name": "vera"}, files={"password": b"x\x00"})
    assert response.status_code == 415, response.text
    assert gw.count("audit_log") == 0


def test_a_payment_whose_stored_text_is_odd_still_has_its_console_page(gw, client) -> None:
    """Defence in depth: a lone surrogate already in a JSON column (from before the check) is shown
    escaped; the payment's story stays readable."""
    payment = client.create_payment(merchant_order_no="odd-story", amount=100, metadata={"note": "fine"})
    with gw.gateway.db.transaction() as conn:
        conn.execute(text("UPDATE payments SET metadata = :m WHERE id = :id"),
                     {"m": '{"note": "a\\ud800b", "k\\udfff": "v"}', "id": payment["id"]})
    page = signed_in(gw, "viewer").get(f"/console/payments/{payment['id']}")
    assert page.status_code == 200, page.text
    assert "a\\ud800b" in page.text and "k\\udfff" in page.text
    assert client.get_payment(payment["id"])["metadata"] == {"note": "a\ud800b", "k\udfff": "v"}


def test_a_console_item_id_past_64_bits_matches_no_route(gw) -> None:
    browser = signed_in(gw, "approver")
    token = CSRF.search(browser.get("/console/").text).group(1)
    for action in ("propose", "approve"):
        response = browser.post(f"/console/recon/items/{2**64}/{action}",
                                data={"csrf": token, "action": "dismiss", "reason": "x"})
        assert response.status_code == 404, response.text


def test_odd_bytes_where_secrets_are_compared_are_refused_not_500(gateway_factory, db_url) -> None:
    """Found trying it as an attacker would: hmac.compare_digest raises on text that is not ASCII, and
    str.isdigit() takes digits int() does not. Every such place answers 4xx, on both databases."""
    gw = gateway_factory(make_settings(db_url, free_port()).with_changes(metrics_token="scrape-secret"))
    creds = gw.merchant()
    now = str(int(time.time())).encode()
    for signature, timestamp in ((b"\xe9", now), (b"abc", "¹²³".encode())):
        header = (b'PAYMUX-HMAC-SHA256 merchant_id="' + creds.merchant_id.encode() + b'",timestamp="' + timestamp
                  + b'",nonce="abcdefgh98",signature="' + signature + b'"')
        response = httpx.get(f"{gw.url}/v1/balance", headers={"Authorization": header})
        assert response.status_code == 401, response.text
    assert httpx.get(f"{gw.url}/metrics", headers={"Authorization": b"Bearer \xe9"}).status_code == 401
    browser = httpx.Client(base_url=gw.url)
    browser.get("/console/login")
    assert browser.post("/console/login", data={"csrf": "é", "name": "x", "password": "y"}).status_code < 500
    assert httpx.get(f"{gw.url}/hosted/sandbox/checkout", params={"t": "a.é"}).status_code == 400
    forged = httpx.post(f"{gw.url}/v1/notify/sandbox", content=b"{}", headers={
        "Sandbox-Timestamp": now, "Sandbox-Nonce": b"n", "Sandbox-Signature": b"\xe9"})
    assert forged.status_code == 400
    # A body a plugin cannot read after verifying it (an integer of 5,000 digits) is refused, not a 500.
    huge = b'{"event":"payment","out_trade_no":"x","trade_status":"SUCCESS","currency":"CNY","amount":1' + \
        b"0" * 5000 + b"}"
    response = httpx.post(f"{gw.url}/v1/notify/sandbox", content=huge,
                          headers=wire.signed_headers(SANDBOX_SECRET, huge, int(time.time())))
    assert response.status_code == 400
    made = send(gw, creds, "POST", "/v1/payments", b'{"merchant_order_no":"x","amount":1' + b"0" * 5000 + b"}")
    assert made.status_code == 400 and made.json()["error"]["code"] == "invalid_json"
    # One Content-Type, or the form check and the parser behind it could read different ones.
    response = httpx.post(f"{gw.url}/console/login", content=b"name=ali%00ce",
                          headers=[("Content-Type", "application/x-www-form-urlencoded"),
                                   ("Content-Type", "application/json")])
    assert response.status_code == 400 and response.json()["error"]["code"] == "duplicate_header"
    assert signed_in(gw, "viewer").get("/console/payments", params={"date": "9999-12-31"}).status_code == 200
    assert gw.count("payments") == 0 and gw.count("channel_callbacks") == 2


def test_a_merchants_receiver_refuses_a_forged_event_signature_of_any_text() -> None:
    from gateway.client import EventSignatureError, verify_event

    with pytest.raises(EventSignatureError):
        verify_event(b"{}", f"t={int(time.time())},v1=\xe9", "secret")
    with pytest.raises(EventSignatureError):
        verify_event(b"{}", "t=¹²³,v1=ab", "secret")


def test_an_answer_holding_text_no_record_can_keep_is_no_answer() -> None:
    from gateway.channel import Discount, Outcome, PaymentResult, unstorable

    assert unstorable(PaymentResult(Outcome.SUCCEEDED, channel_transaction_id="42\x00"))
    assert unstorable(PaymentResult(Outcome.SUCCEEDED, discounts=(Discount(1, 1, name="a\ud800"),)))
    assert not unstorable(PaymentResult(Outcome.SUCCEEDED, channel_transaction_id="4200", error_message="茶"))
