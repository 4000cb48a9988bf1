"""The console's reconciliation page shows the reserve accounts (expected, received, in transit), and a
bank difference is resolved there by two operators like a channel's: booked against the reserve bank."""
from __future__ import annotations

from sqlalchemy import select

from gateway.funds.imports import import_bank_file
from gateway.reconciliation.store import proposals
from gateway.reports import open_items
from ledger.booking import Booker
from tests.conftest import free_port
from tests.console.test_identity import approve_form
from tests.funds.test_bank_import import DEC1, book_movements, noon, settings_for, write, bank_moves
from tests.support.console import Browser, add_operator


def test_the_console_shows_the_reserve_account_and_two_operators_resolve_a_bank_difference(
        gateway_factory, db_url, tmp_path) -> None:
    gw = gateway_factory(settings_for(db_url, tmp_path, "mt940", public_url=f"http://127.0.0.1:{free_port()}"))
    gateway = gw.gateway
    book_movements(gateway.db, Booker(gateway.ledger))
    report = import_bank_file(gateway.db, gw.settings, "RESERVE", write(tmp_path, "mt940", bank_moves()),
                              noon(DEC1))
    add_operator(gw, "otto", "operator")
    add_operator(gw, "anna", "approver")
    otto, anna = Browser(gw.url), Browser(gw.url)
    otto.sign_in("otto")
    anna.sign_in("anna")
    page = otto.http.get("/console/recon").text
    assert "Reserve bank accounts" in page and "RESERVE" in page and "received_not_expected" not in page

    run_page = f"/console/recon/runs/{report['run_id']}"
    with gateway.db.transaction() as conn:
        item = next(i["id"] for i in open_items(conn) if i["class"] == "amount_differs")   # the bank got 10 less
    assert f'action="/console/recon/items/{item}/propose"' in otto.http.get(run_page).text
    assert otto.post(f"/console/recon/items/{item}/propose", {"action": "adjust", "reason": "bank says so"},
                     run_page).status_code == 303
    approved = anna.http.post(f"/console/recon/items/{item}/approve", data=approve_form(anna, run_page, item))
    assert approved.status_code == 303
    with gateway.db.transaction() as conn:
        key = conn.execute(select(proposals.c.entry_key).where(proposals.c.item_id == item)).scalar_one()
        entry = gateway.ledger.entry(conn, key)
    assert key == f"recon-item:{item}:bank.adjust_loss" and entry is not None
    assert {(line.account.code, line.amount) for line in entry.lines} == {("reserve_bank", -10), ("suspense", 10)}
