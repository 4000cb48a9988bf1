"""The books over the HTTP API: what merchants see, and the check that ties them to payments."""
from __future__ import annotations

import subprocess
import sys

import pytest

from gateway.books import full_check
from gateway.client import PaymuxAPIError
from ledger.chart import fee_for
from tests.conftest import checkout, wait_for
from tests.support import REPO

BPS = 60  # conf/ledger.toml default


def balance(client) -> dict:  # noqa: ANN001
    data = client.request("GET", "/v1/balance").json()
    return {row["currency"]: row for row in data["balances"]}


def check(gw) -> list[str]:  # noqa: ANN001
    with gw.gateway.db.transaction() as conn:
        return full_check(conn)


def paid(client, order: str, amount: int, **fields) -> dict:  # noqa: ANN001, ANN003
    payment = client.create_payment(merchant_order_no=order, amount=amount, **fields)
    checkout(payment)
    return client.get_payment(payment["id"])


def test_a_mix_of_payments_refunds_and_failures_leaves_the_books_exact(gw, client) -> None:
    a = paid(client, "a", 10000)
    b = paid(client, "b", 2500)
    failed = client.create_payment(merchant_order_no="c", amount=999)
    checkout(failed, "fail")
    client.create_payment(merchant_order_no="d", amount=777)  # left processing
    closed = client.create_payment(merchant_order_no="e", amount=555)
    client.close_payment(closed["id"])
    r1 = client.create_refund(a["id"], merchant_refund_no="r1", amount=3000)
    r2 = client.create_refund(b["id"], merchant_refund_no="r2", amount=2500)
    for refund in (r1, r2):
        wait_for(lambda refund=refund: client.get_refund(refund["id"])["status"] == "succeeded")

    fee_a, fee_b = fee_for(10000, BPS), fee_for(2500, BPS)
    assert a["fee"] == fee_a and b["fee"] == fee_b
    fee_back_a = client.get_refund(r1["id"])["fee_refund"]
    assert fee_back_a == (fee_a * 3000 * 2 + 10000) // 20000          # pro rata, half up
    assert client.get_refund(r2["id"])["fee_refund"] == fee_b          # a full refund gives the whole fee back
    owed = (10000 - fee_a) - (3000 - fee_back_a) + (2500 - fee_b) - (2500 - fee_b)
    cny = balance(client)["CNY"]
    assert cny["in_transit"] + cny["available"] + cny["frozen"] == owed
    assert cny["refund_pending"] == 0
    assert check(gw) == []


def test_a_refund_the_merchant_cannot_cover_is_refused_and_writes_nothing(gateway_factory, db_url, tmp_path) -> None:
    from tests.conftest import free_port, make_settings

    # With the fee kept on refunds, a refund costs the merchant its full amount.
    chart = (REPO / "conf" / "ledger.toml").read_text().replace('refund_policy = "pro_rata"', 'refund_policy = "keep"')
    (tmp_path / "ledger.toml").write_text(chart)
    gw = gateway_factory(make_settings(db_url, free_port()).with_changes(ledger_config=str(tmp_path / "ledger.toml")))
    client = gw.client(gw.merchant())
    a = paid(client, "a", 1000)
    b = paid(client, "b", 1000)
    r1 = client.create_refund(a["id"], merchant_refund_no="r1", amount=1000)  # 1000 of the 1988 owed
    # The sandbox confirms r1 by callback; let it land before counting, so only r2 could change the counts.
    assert wait_for(lambda: client.get_refund(r1["id"])["status"] == "succeeded")
    # b's refund is within b's amount, but the merchant is now owed only 988.
    refunds_before = gw.count("refunds")
    entries_before = gw.count("ledger_entries")
    with pytest.raises(PaymuxAPIError) as err:
        client.create_refund(b["id"], merchant_refund_no="r2", amount=1000)
    assert err.value.status == 400 and err.value.error["code"] == "insufficient_balance"
    assert gw.count("refunds") == refunds_before and gw.count("ledger_entries") == entries_before
    assert client.get_payment(b["id"])["amount_refund_pending"] == 0
    assert check(gw) == []


def test_entries_are_the_merchants_own_newest_first_and_paginated(gw, client) -> None:
    for i in range(5):
        paid(client, f"o{i}", 100 + i)
    other = gw.client(gw.merchant("other"))
    paid(other, "theirs", 5000)
    first = client.request("GET", "/v1/ledger/entries", params={"limit": "2"}).json()
    assert len(first["data"]) == 2 and first["has_more"]
    ids = [e["id"] for e in first["data"]]
    rest = client.request("GET", "/v1/ledger/entries", params={"cursor": str(first["next_cursor"])}).json()
    ids += [e["id"] for e in rest["data"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 5
    for entry in first["data"] + rest["data"]:
        assert {p["account"] for p in entry["postings"]} == {"merchant_in_transit"}
        assert entry["postings"][0]["amount"] < 0  # a credit: owed to the merchant
    response = client.request("GET", "/v1/ledger/entries", params={"limit": "0"})
    assert response.status_code == 400


def test_the_ledger_cli_reports_clean_books_and_names_tampering(gw, client, tmp_path) -> None:
    paid(client, "a", 1000)
    config = tmp_path / "paymux.toml"
    config.write_text(f'[database]\nurl = "{gw.settings.database_url}"\n')
    run = lambda *args: subprocess.run([sys.executable, "-m", "gateway.cli", "--config", str(config), *args],  # noqa: E731
                                       capture_output=True, text=True, cwd=REPO, timeout=60)
    clean = run("ledger", "check")
    assert clean.returncode == 0 and "clean" in clean.stdout
    table = run("ledger", "balances", "--owner", "platform")
    assert "fee_income" in table.stdout and "merchant_in_transit" not in table.stdout
    with gw.gateway.db.transaction() as conn:  # an account balance edited behind the ledger's back
        from sqlalchemy import text

        conn.execute(text("UPDATE ledger_accounts SET balance = balance + 1 WHERE code = 'fee_income'"))
    broken = run("ledger", "check")
    assert broken.returncode == 1 and "fee_income" in broken.stdout and "postings sum to" in broken.stdout
