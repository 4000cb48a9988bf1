"""What settlement books is what funds reconciliation expects: the channel's net of a reconciled day,
settled (here a day ahead) by the Settler itself, is expected on its settle date and matched there;
money that comes a day after it was expected turns the open difference into `late` by rule."""
from __future__ import annotations

from datetime import date

from sqlalchemy import update

from gateway.compose import Backend
from gateway.funds.imports import import_bank_file
from gateway.plugins import discover_channel_types, make_plugin_manager
from gateway.reconciliation.settlement import Settler
from gateway.reconciliation.store import runs, start_run
from gateway.reports import open_items
from tests.funds.bankfiles import Movement, camt053
from tests.funds.test_bank_import import DEC1, NOV30, noon, settings_for, write


def test_a_day_the_settler_booked_is_matched_on_its_settle_date(db_url, tmp_path) -> None:
    with Backend(settings_for(db_url, tmp_path, "mt940")) as backend:
        settler = Settler(backend.settings, discover_channel_types(make_plugin_manager()), backend.booker)
        with backend.transaction() as conn:
            # wx's Nov 30, reconciled: 1000.00 paid, 100.00 refunded, 6.00 of fees
            start_run(conn, "rr_wx_nov30", "wx", NOV30, "0" * 64, "-", "CNY", noon(NOV30))
            conn.execute(update(runs).where(runs.c.id == "rr_wx_nov30").values(
                status="completed", payment_amount=100000, refund_amount=10000, fee_amount=600))
            booked = settler.settle(conn, DEC1, noon(NOV30)).booked    # settled ahead, on Nov 30
        assert [(b["kind"], b["owner"], b["amount"]) for b in booked] == [("channel", "wx", 89400)]
        moves = [Movement(DEC1, 89400, "WXPAY1900000109 结算 20261130", "B1")]
        report = import_bank_file(backend.db, backend.settings, "RESERVE", write(tmp_path, "mt940", moves),
                                  noon(DEC1))
        assert report["counts"] == {"matched": 1, "late": 0, "amount_differs": 0, "expected_not_received": 0,
                                    "received_not_expected": 0}


def test_money_that_comes_a_day_late_turns_its_open_difference_into_late_by_rule(db_url, tmp_path) -> None:
    dec2 = date(2026, 12, 2)
    with Backend(settings_for(db_url, tmp_path, "camt053")) as backend:
        with backend.transaction() as conn:
            backend.booker.book(conn, "settlement.channel", "settle:channel:ali:2026-11-30", merchant_id="",
                                channel_account="ali", currency="CNY", variables={"amount": 5000}, now=noon(DEC1))
        first = import_bank_file(backend.db, backend.settings, "RESERVE", write(tmp_path, "camt053", []), noon(DEC1),
                                 statement_date=DEC1)
        assert first["counts"]["expected_not_received"] == 1
        path = tmp_path / "dec2.camt053"
        path.write_bytes(camt053([Movement(dec2, 5000, "ALIPAY2088 20261130", "B9")], dec2))
        second = import_bank_file(backend.db, backend.settings, "RESERVE", path, noon(dec2))
        with backend.transaction() as conn:
            every = {(i["class"], i["status"], i["resolution"]) for i in open_items(conn, include_closed=True)}
    assert second["counts"]["late"] == 1 and second["counts"]["expected_not_received"] == 0
    assert every == {("expected_not_received", "resolved", "rematched"), ("late", "open", None)}
