"""GET /v1/statements/{date} (JSON pages) and {date}.csv (streamed page by page): every line of the
merchant's day with its references, balances that tie to the ledger, and the errors a merchant can act on."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx

from gateway.api import statements as api
from gateway.clock import Clock
from gateway.statements import produce
from ledger.check import check_ledger
from ledger.core import AccountRef
from tests.conftest import checkout
from tests.support.operator import sync


def test_a_statement_pages_and_streams_every_line_and_its_balances_tie_to_the_ledger(gw, monkeypatch) -> None:
    creds = gw.merchant()
    client = gw.client(creds)
    for n, amount in enumerate((1000, 2500, 4000)):
        payment = client.create_payment(merchant_order_no=f"order-{n}", amount=amount)
        checkout(payment)
        sync(client, payment)
    other = gw.client(gw.merchant("other"))
    day = gw.gateway.ledger.day.date_of(Clock().now())
    assert other.request("GET", f"/v1/statements/{day}").json()["error"]["code"] == "statement_not_ready"
    with gw.gateway.db.transaction() as conn:
        produce(conn, day, Clock().now())
        produce(conn, day, Clock().now())                   # the day run again: the same statement, once
        ledger = {code: gw.gateway.ledger.balance(conn, AccountRef(code, creds.merchant_id, "CNY"))
                  for code in ("merchant_in_transit", "merchant_available")}

    first = client.request("GET", f"/v1/statements/{day}?limit=2").json()
    assert first["lines_total"] == 3 and first["lines"]["has_more"]
    rest = client.request("GET", f"/v1/statements/{day}?limit=2&cursor={first['lines']['next_cursor']}").json()
    lines = first["lines"]["data"] + rest["lines"]["data"]
    assert not rest["lines"]["has_more"] and [line["merchant_reference"] for line in lines] == [
        "order-0", "order-1", "order-2"]
    assert all(line["channel_reference"].startswith("sbx") and line["kind"] == "payment" for line in lines)
    closing = {b["balance_kind"]: b for b in first["balances"]}
    assert closing["merchant_in_transit"]["closing"] == ledger["merchant_in_transit"] > 0
    assert closing["merchant_in_transit"]["opening"] == 0
    assert closing["merchant_in_transit"]["closing"] == sum(line["amount"] for line in lines)

    # The CSV is read a page at a time: with pages of one line, no read returns more than one.
    reads: list[int] = []

    def counted(conn, row, after, limit):  # noqa: ANN001, ANN202
        page = api_lines(conn, row, after, limit)
        reads.append(len(page))
        return page
    api_lines = api.lines
    monkeypatch.setattr(api, "lines", counted)
    monkeypatch.setattr(api, "PAGE", 1)
    response = client.request("GET", f"/v1/statements/{day}.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["merchant_reference"] for r in rows if r["line"] != "balance"] == ["order-0", "order-1", "order-2"]
    assert max(reads) == 1 and len(reads) == 4                  # 3 lines, then the empty page that ends it
    assert any(r["line"] == "balance" and r["balance_kind"] == "merchant_in_transit"
               and int(r["amount"]) == ledger["merchant_in_transit"] for r in rows)

    # Errors: not signed, a date that is not one, a day not produced.
    assert httpx.get(f"{gw.url}/v1/statements/{day}").status_code == 401
    bad = client.request("GET", "/v1/statements/2026-13-45")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_date"
    later = client.request("GET", f"/v1/statements/{day + timedelta(days=1)}.csv")
    assert later.status_code == 404 and later.json()["error"]["code"] == "statement_not_ready"


def test_a_payout_is_on_the_statement_with_both_references_and_every_balance_kind_ties(gateway_factory, db_url) -> None:
    from tests.conftest import wait_for
    from tests.support.payouts import funded, payout, settings

    gw = gateway_factory(settings(db_url))
    creds, client = funded(gw)
    sent = payout(client, "po-7", 30000).json()
    assert wait_for(lambda: client.request("GET", f"/v1/payouts/{sent['id']}").json()["status"] == "succeeded")
    now = Clock().now()
    day = gw.gateway.ledger.day.date_of(now)
    with gw.gateway.db.transaction() as conn:
        produce(conn, day, now)
    statement = client.request("GET", f"/v1/statements/{day}?limit=100").json()
    lines = statement["lines"]["data"]
    paid_out = [line for line in lines if line["kind"] == "payout"]
    assert paid_out and {line["merchant_reference"] for line in paid_out} == {"po-7"}
    assert all(line["channel_reference"] for line in paid_out if line["event_type"] == "payout.succeeded")
    assert {line["kind"] for line in lines} >= {"payment", "settlement", "payout"}
    with gw.gateway.db.transaction() as conn:
        for b in statement["balances"]:
            ledger = gw.gateway.ledger.balance(conn, AccountRef(b["balance_kind"], creds.merchant_id, b["currency"]))
            assert b["closing"] == ledger, b
            assert b["closing"] - b["opening"] == sum(line["amount"] for line in lines
                                                      if line["balance_kind"] == b["balance_kind"])
        assert check_ledger(conn) == []   # `paymux ledger check`'s invariants
