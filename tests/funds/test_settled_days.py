"""What settlement books is what funds reconciliation expects: the channel's net of a reconciled day,
settled (here a day ahead) by the Settler itself, is expected on its settle date and matched there."""
from __future__ import annotations

from sqlalchemy import update

from gateway.compose import Backend
from gateway.funds.imports import import_bank_file
from gateway.plugins import discover_channel_types, make_plugin_manager
from gateway.reconciliation.settlement import Settler
from gateway.reconciliation.store import runs, start_run
from tests.funds.bankfiles import Movement
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
