"""Payouts that leave through the bank: a channel account whose position is the reserve account itself
(`payout_accounts`, bank-direct payouts) pays each payout on its own bank line, carrying its
out_payout_no, and a returned payout comes back on another. Each is expected by funds reconciliation:
matched when its line is there with its amount, a difference when not; the top-up of such an account
moves no money at the bank and is not expected."""
from __future__ import annotations

from dataclasses import replace

from gateway.funds.imports import import_bank_file
from gateway.reports import open_items
from tests.conftest import wait_for
from tests.funds.bankfiles import Movement, camt053
from tests.support.payouts import funded, payout, settings


def test_bank_direct_payouts_and_a_return_are_expected_on_the_reserve_accounts_lines(gateway_factory, db_url,
                                                                                      tmp_path) -> None:
    base = settings(db_url)
    reserve = {"id": "RESERVE", "channel_accounts": {}, "payout_accounts": ["sandbox"]}
    gw = gateway_factory(replace(base, statement_dir=str(tmp_path / "kept"),
                                 extra={**base.extra, "reserve_accounts": [reserve]}))
    creds, client = funded(gw)                   # (its position was topped up: an internal transfer here)
    made = [payout(client, number, amount).json() for number, amount in (("po-1", 30000), ("po-2", 12000),
                                                                         ("po-3", 5000))]
    assert wait_for(lambda: all(client.request("GET", f"/v1/payouts/{p['id']}").json()["status"] == "succeeded"
                                for p in made))
    po1, po2, po3 = made
    with gw.gateway.db.transaction() as conn:     # po-3 is sent back by the receiving bank (退票)
        gw.gateway.payments.booker.book(conn, "payout.returned", f"payout:{po3['id']}", merchant_id=creds.merchant_id,
                                        channel_account="sandbox", currency="CNY", now=gw.gateway.clock.now(),
                                        variables={"amount": 5000, "fee_back": 0, "to_available": 5000,
                                                   "to_frozen": 0})
    today = gw.gateway.ledger.day.date_of(gw.gateway.clock.now())
    lines = [Movement(today, -30000, f"代付 {po1['out_payout_no']}", "B1"),        # as booked
             Movement(today, -12500, f"代付 {po2['out_payout_no']}", "B2"),        # the bank took more
             Movement(today, -5000, f"代付 {po3['out_payout_no']}", "B3"),         # paid ...
             Movement(today, 5000, f"退票 {po3['out_payout_no']}", "B4")]          # ... and returned
    path = tmp_path / "bank.xml"
    path.write_bytes(camt053(lines, today))
    report = import_bank_file(gw.gateway.db, gw.settings, "RESERVE", path, gw.gateway.clock.now())
    assert report["counts"] == {"matched": 3, "late": 0, "amount_differs": 1, "expected_not_received": 0,
                                "received_not_expected": 0}
    with gw.gateway.db.transaction() as conn:
        found = [(i["class"], i["reference"], i["difference"]) for i in open_items(conn)]
    assert found == [("amount_differs", f"payout:{po2['id']}", -500)]

    # The next day's file does not show po-2 at all (the bank's first file was wrong, and is replaced).
    path = tmp_path / "bank-fixed.xml"
    path.write_bytes(camt053([lines[0], lines[2], lines[3]], today))
    report = import_bank_file(gw.gateway.db, gw.settings, "RESERVE", path, gw.gateway.clock.now())
    assert report["counts"]["expected_not_received"] == 1 and report["counts"]["matched"] == 3
    with gw.gateway.db.transaction() as conn:
        found = [(i["class"], i["reference"]) for i in open_items(conn)]
    assert found == [("expected_not_received", f"payout:{po2['id']}")]
