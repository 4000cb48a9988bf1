"""Reconciliation end to end with `paymux reconcile`, as an operator runs it: the sandbox's real
statement, edited to carry one difference of every class, against a gateway on loopback; the late
success only reconciliation finds; maker-checker; idempotent and superseding runs; broken files."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update

from gateway.config import ChannelAccountConfig, Settings
from gateway.models import Attempt, Payment
from tests.conftest import SANDBOX_SECRET, SECRET_KEY, checkout, free_port, wait_for
from tests.support.operator import (PASSWORD, Operator, balances, books_clean, edit_sandbox, paid_day, sandbox_settings,
                                    sync, today)


def test_every_class_is_found_resolved_by_rule_or_by_two_people(gateway_factory, db_url, tmp_path) -> None:
    gw = gateway_factory(sandbox_settings(db_url))
    client = gw.client(gw.merchant())
    op = Operator(gw.settings, tmp_path)
    made = {name: client.create_payment(merchant_order_no=name, amount=amount) for name, amount in (
        ("match", 10000), ("amount", 2000), ("fee", 3000), ("late", 4000), ("twice", 5000), ("carry", 6000))}
    for payment in made.values():
        checkout(payment)                                   # paid at the sandbox; its callback is dropped
    for name in ("match", "amount", "fee", "twice", "carry"):
        sync(client, made[name])                            # ...and found by query, except "late"
    refund = client.create_refund(made["match"]["id"], merchant_refund_no="r1", amount=2500)
    assert wait_for(lambda: client.get_refund(refund["id"], sync=True)["status"] == "succeeded")
    trade = {name: p["out_trade_no"] for name, p in made.items()}

    original = tmp_path / "sandbox.statement"
    op.run("statement", "download", "--account", "sandbox", "--date", today().isoformat(), "--out", str(original))
    edited = tmp_path / "edited.statement"
    edited.write_text(edit_sandbox(
        original.read_text(), drop={trade["carry"]}, amount={trade["amount"]: 2100}, fee={trade["fee"]: 99000},
        repeat={trade["twice"]},
        extra=[["2026-01-01 00:00:00", "sbxUNKNOWN", "T-NOT-OURS", "", "payment", "SUCCESS", "777", "4662"]]))

    report = op.reconcile("sandbox", today(), edited)
    assert report["status"] == "completed", report
    assert report["counts"] == {"matched": 3, "missing_local": 1, "missing_channel": 0, "pending_carryover": 1,
                                "status_mismatch": 1, "amount_mismatch": 1, "fee_mismatch": 1, "duplicate": 1}
    assert report["statement_rows"] == 8 and report["auto_resolved"] == 1 and report["open"] == 5
    # The late success reconciliation found is a success like any other: state, ledger entry, event.
    late = client.get_payment(made["late"]["id"])
    assert late["status"] == "succeeded"
    assert "payment.succeeded" in {e["type"] for e in client.request("GET", "/v1/events").json()["data"]
                                   if e["data"]["object"]["id"] == late["id"]}
    listed = op.items()
    items = {i["class"]: i for i in listed}
    assert len(listed) == 5 and set(items) == {"missing_local", "pending_carryover", "amount_mismatch",
                                               "fee_mismatch", "duplicate"}
    assert items["amount_mismatch"]["difference"] == 100 and items["missing_local"]["difference"] == 777
    assert items["fee_mismatch"]["channel_fee_millis"] == 99000 and items["fee_mismatch"]["expected_fee_millis"] == 18000

    # The same file again is the same run; nothing is counted or booked twice.
    assert op.reconcile("sandbox", today(), edited)["run_id"] == report["run_id"]

    # Maker-checker: alice proposes, alice cannot approve, bob can; the money goes through suspense.
    op.add_operator("alice", "approver")
    op.add_operator("bob", "approver")
    missing = items["missing_local"]["id"]
    op.signed_in("alice", "recon", "resolve", str(missing), "--action", "adjust", "--reason", "channel took 7.77")
    proposal = op.proposal(missing)
    refused = op.signed_in("alice", "recon", "approve", str(missing), "--proposal", proposal, ok=False)
    assert refused.returncode == 1 and "same_person" in refused.stderr
    op.signed_in("bob", "recon", "approve", str(missing), "--proposal", proposal)
    carry = items["pending_carryover"]["id"]
    nothing = op.signed_in("alice", "recon", "resolve", str(items["fee_mismatch"]["id"]), "--action", "adjust",
                           "--reason", "x", ok=False)
    assert "nothing_to_adjust" in nothing.stderr
    op.signed_in("alice", "recon", "resolve", str(carry), "--action", "dismiss", "--reason", "will check tomorrow")
    balances = {line.split()[1]: line.split()[-1] for line in
                op.run("ledger", "balances", "--owner", "platform").stdout.splitlines()[1:]}
    assert balances["suspense"] == "-777", balances     # the 7.77 nobody owns yet waits in suspense (a credit)
    still_open = {i["id"]: i for i in op.items()}
    assert missing not in still_open and still_open[carry]["proposal"]["action"] == "dismiss"
    assert books_clean(gw)
    assert op.run("ledger", "check").returncode == 0


def test_cli_proposals_and_approvals_sign_operators_in_and_compare_them_by_id(gateway_factory, db_url,
                                                                              tmp_path) -> None:
    day = paid_day(gateway_factory, db_url, tmp_path, 5000)
    gw, op = day.gw, day.op
    wrong = tmp_path / "wrong.statement"
    wrong.write_text(edit_sandbox(day.statement.read_text(), amount={day.payments[0]["out_trade_no"]: 4000}))
    op.reconcile("sandbox", today(), wrong)
    [item] = op.items()
    target = str(item["id"])
    for name, role in (("alice", "operator"), ("carol", "approver"), ("bob", "approver"), ("vera", "viewer")):
        op.add_operator(name, role)
    op.signed_in("alice", "recon", "resolve", target, "--action", "adjust", "--reason", "the channel kept 10.00")
    first = op.proposal(item["id"])
    # A name is not a person: alice cannot approve as "alice2", nor as anyone without their password.
    for name, password in (("alice2", PASSWORD), ("bob", "not bob's password")):
        refused = op.signed_in(name, "recon", "approve", target, "--proposal", first, password=password, ok=False)
        assert refused.returncode == 1 and "wrong_password" in refused.stderr, refused.stderr
    # Each needs the role the console demands for the same action.
    viewer = op.signed_in("vera", "recon", "resolve", target, "--action", "dismiss", "--reason", "x", ok=False)
    assert "not_allowed" in viewer.stderr
    assert "not_allowed" in op.signed_in("alice", "recon", "approve", target, "--proposal", first, ok=False).stderr
    # carol replaces the proposal: an approval of the one bob read is refused, and nothing is booked.
    op.signed_in("carol", "recon", "resolve", target, "--action", "dismiss", "--reason", "the bank has it all")
    second = op.proposal(item["id"])
    stale = op.signed_in("bob", "recon", "approve", target, "--proposal", first, ok=False)
    assert stale.returncode == 1 and f"proposal_changed: item {target}'s proposal is now #{second}" in stale.stderr
    own = op.signed_in("carol", "recon", "approve", target, "--proposal", second, ok=False)
    assert own.returncode == 1 and "same_person" in own.stderr
    assert op.items()[0]["status"] == "open"
    op.signed_in("bob", "recon", "approve", target, "--proposal", second)
    [done] = op.items("--all")
    assert (done["resolution"], done["resolved_by"]) == ("dismiss", "carol + bob")
    with gw.gateway.db.transaction() as conn:
        audited = conn.execute(text("SELECT a.action, o.name FROM audit_log a JOIN operators o ON o.id = a.operator_id "
                                    "WHERE a.source = 'cli' AND a.action LIKE 'recon.%' ORDER BY a.id")).all()
        assert conn.execute(text("SELECT count(*) FROM ledger_entries WHERE event_type LIKE 'recon.adjust%'")) \
            .scalar_one() == 0
    assert [tuple(r) for r in audited] == [("recon.propose", "alice"), ("recon.propose", "carol"),
                                           ("recon.approve", "bob")]


def test_the_cli_is_no_way_round_the_consoles_sign_in_lockout(gateway_factory, db_url, tmp_path) -> None:
    from tests.support.console import Browser

    day = paid_day(gateway_factory, db_url, tmp_path, 5000)
    wrong = tmp_path / "wrong.statement"
    wrong.write_text(edit_sandbox(day.statement.read_text(), amount={day.payments[0]["out_trade_no"]: 4000}))
    day.op.reconcile("sandbox", today(), wrong)
    [item] = day.op.items()
    day.op.add_operator("alice", "operator")
    for _ in range(5):
        assert Browser(day.gw.url).sign_in("alice", "guess-guess-guess").status_code == 401
    locked = day.op.signed_in("alice", "recon", "resolve", str(item["id"]), "--action", "dismiss", "--reason", "x",
                              ok=False)
    assert locked.returncode == 1 and "locked_out" in locked.stderr
    assert day.op.items()[0].get("proposal") is None


def test_a_later_file_for_the_day_supersedes_and_a_carried_line_is_matched_later(gateway_factory, db_url,
                                                                                 tmp_path) -> None:
    day = paid_day(gateway_factory, db_url, tmp_path, 100, 101)
    gw, op, full, (_, b) = day.gw, day.op, day.statement, day.payments
    partial = tmp_path / "partial.statement"
    partial.write_text(edit_sandbox(full.read_text(), drop={b["out_trade_no"]}))
    first = op.reconcile("sandbox", today(), partial)
    assert first["counts"]["pending_carryover"] == 1 and first["open"] == 1
    second = op.reconcile("sandbox", today(), full)       # the channel sent a corrected file
    assert second["run_id"] != first["run_id"] and second["counts"]["matched"] == 2 and second["open"] == 0
    runs = {r["run_id"]: r["status"] for r in _runs(gw)}
    assert runs == {first["run_id"]: "superseded", second["run_id"]: "completed"}
    assert op.items() == []                               # the first run's open item gave way
    with gw.gateway.db.transaction() as conn:               # fees booked once for the day, not per file
        fees = conn.execute(text("SELECT sum(fees_booked) FROM recon_runs")).scalar_one()
    assert fees == second["fee_amount"] == 1 + 1            # 100 and 101 fen at 60 bps: 0.6 fen -> 1 each
    assert books_clean(gw)


def _runs(gw: Any) -> list[dict]:
    with gw.gateway.db.transaction() as conn:
        return [{"run_id": r.id, "status": r.status} for r in conn.execute(text("SELECT id, status FROM recon_runs"))]


@pytest.mark.parametrize("breakage,expected", [
    (lambda s: b"", "the file is empty"),
    (lambda s: s[: s.rfind(b"# total")], "truncated"),
    (lambda s: s.replace(b",payment,SUCCESS,", b",payment,SUCCESS,12x", 1), "line 3: amount"),
    (lambda s: s.replace(b"# total rows=", b"# total rows=9", 1), "disagree"),
    (lambda s: s.replace(b",payment,", b",pay\xff\xfement,", 1), "line 3"),          # not UTF-8
    (lambda s: s.replace(b",payment,SUCCESS,", b",payment,SUCCESS,1,2,3,", 1), "line 3"),   # cells added
])
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_broken_statement_fails_the_run_naming_the_line_and_writes_nothing(gateway_factory, db_url, tmp_path,
                                                                             breakage, expected) -> None:
    """Reading a file is the same on either database (SQLite here); that a failed run writes nothing
    is checked on PostgreSQL too, below."""
    broken_run(gateway_factory, db_url, tmp_path, breakage, expected)


def test_a_failed_run_writes_nothing_on_either_database(gateway_factory, db_url, tmp_path) -> None:
    broken_run(gateway_factory, db_url, tmp_path, lambda s: s[: s.rfind(b"# total")], "truncated")


def broken_run(gateway_factory: Any, db_url: str, tmp_path: Path, breakage: Any, expected: str) -> None:
    day = paid_day(gateway_factory, db_url, tmp_path, 100)
    gw, op, good = day.gw, day.op, day.statement
    bad = tmp_path / "bad.statement"
    bad.write_bytes(breakage(good.read_bytes()))
    report = op.reconcile("sandbox", today(), bad)
    assert report["status"] == "failed" and expected in report["message"], report
    with gw.gateway.db.transaction() as conn:
        assert conn.execute(text("SELECT count(*) FROM recon_items")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM ledger_entries WHERE event_type LIKE 'recon.%'")).scalar_one() == 0
    assert op.reconcile("sandbox", today(), good)["status"] == "completed"   # the right file still goes through


def test_a_success_no_statement_has_after_the_window_is_missing_at_the_channel(gateway_factory, db_url,
                                                                              tmp_path) -> None:
    paid = paid_day(gateway_factory, db_url, tmp_path, 100, 101)
    gw, op, full, (_, lost) = paid.gw, paid.op, paid.statement, paid.payments
    # Five days later we reconcile that day; the channel's file for it lacks one of our successes.
    then = datetime.now(UTC) - timedelta(days=5)
    with gw.gateway.db.transaction() as conn:
        conn.execute(update(Payment.__table__).values(created_at=then, paid_at=then))
        conn.execute(update(Attempt.__table__).values(created_at=then, updated_at=then))
    day = today() - timedelta(days=5)
    old = tmp_path / "old.statement"
    old.write_text(edit_sandbox(full.read_text(), drop={lost["out_trade_no"]}))
    report = op.reconcile("sandbox", day, old)
    assert report["counts"]["matched"] == 1 and report["counts"]["missing_channel"] == 1, report
    assert report["counts"]["pending_carryover"] == 0
    [item] = op.items()
    assert item["class"] == "missing_channel" and item["reference"] == lost["out_trade_no"]
    assert item["difference"] == -101              # our books say the channel holds 1.01 it does not
    op.add_operator("carol", "operator")
    op.add_operator("dave", "approver")
    done = op.signed_in("carol", "recon", "resolve", str(item["id"]), "--action", "adjust", "--reason", "never arrived")
    proposal = op.proposal(item["id"])
    assert f"recon approve {item['id']} --proposal {proposal} --by NAME" in done.stdout
    op.signed_in("dave", "recon", "approve", str(item["id"]), "--proposal", proposal)
    assert op.items() == [] and books_clean(gw)




def test_settlement_moves_money_on_each_merchants_day_and_advances_are_booked(gateway_factory, db_url,
                                                                              tmp_path) -> None:
    gw = gateway_factory(sandbox_settings(db_url))
    slow, fast = gw.merchant("t-plus-1"), gw.merchant("t-plus-0")
    op = Operator(gw.settings, tmp_path, f'[settlement]\nmerchant_days = 1\n[settlement.merchants]\n'
                                         f'{fast.merchant_id} = 0\n')
    for creds, amount in ((slow, 10000), (fast, 20000)):
        client = gw.client(creds)
        payment = client.create_payment(merchant_order_no="o", amount=amount)
        checkout(payment)
        sync(client, payment)
    day = today()
    assert op.reconcile("sandbox", day)["counts"]["matched"] == 2

    first = json.loads(op.run("settle", "--date", day.isoformat(), "--json").stdout)
    assert {(b["kind"], b["amount"]) for b in first["booked"]} == {("merchant", 20000 - 120), ("advance", 20000 - 120)}
    assert any("not reconciled" in s for s in first["skipped"])              # the channel pays T+1
    assert balances(op, f"merchant:{fast.merchant_id}")["merchant_available"] == 19880
    assert "merchant_available" not in balances(op, f"merchant:{slow.merchant_id}")   # not its day yet
    assert balances(op, "platform")["advances"] == 19880                   # the platform paid before the channel

    second = json.loads(op.run("settle", "--date", (day + timedelta(days=1)).isoformat(), "--json").stdout)
    fees = 60 + 120                                                      # the sandbox's 60 bps of each
    assert {(b["kind"], b["amount"]) for b in second["booked"]} == {
        ("channel", 30000 - fees), ("advance_repaid", 19880), ("merchant", 10000 - 60)}
    assert balances(op, f"merchant:{slow.merchant_id}")["merchant_available"] == 9940
    platform = balances(op, "platform")
    assert platform["advances"] == 0 and platform["reserve_bank"] == 30000 - fees
    assert balances(op, "channel_account:sandbox").get("channel_clearing", 0) == 0   # all paid out
    again = json.loads(op.run("settle", "--date", (day + timedelta(days=1)).isoformat(), "--json").stdout)
    assert again["booked"] == []                                         # settling twice books nothing
    report = json.loads(op.run("report", "daily", "--date", day.isoformat(), "--json").stdout)
    [channel] = report["channel_accounts"]
    assert channel["payments"] == 2 and channel["volume"] == 30000 and channel["settled"] == 30000 - fees
    assert {m["merchant_id"]: m["settled"] for m in report["merchants"]} == {slow.merchant_id: 9940,
                                                                            fast.merchant_id: 19880}
    assert op.run("report", "daily", "--date", day.isoformat()).stdout.count("sandbox") == 1
    assert op.run("ledger", "check").returncode == 0 and books_clean(gw)


def test_the_daily_report_counts_refunds_paid_back_and_the_advances_outstanding(gateway_factory, db_url,
                                                                               tmp_path) -> None:
    gw = gateway_factory(sandbox_settings(db_url))
    fast = gw.merchant("t-plus-0")
    op = Operator(gw.settings, tmp_path, f'[settlement]\nmerchant_days = 1\n[settlement.merchants]\n'
                                         f'{fast.merchant_id} = 0\n')
    client = gw.client(fast)
    payment = client.create_payment(merchant_order_no="o", amount=10000)
    checkout(payment)
    sync(client, payment)
    refund = client.create_refund(payment["id"], merchant_refund_no="r1", amount=2500)
    assert wait_for(lambda: client.get_refund(refund["id"], sync=True)["status"] == "succeeded")
    day = today()
    assert op.reconcile("sandbox", day)["counts"]["matched"] == 2
    settled = json.loads(op.run("settle", "--date", day.isoformat(), "--json").stdout)
    advanced = sum(b["amount"] for b in settled["booked"] if b["kind"] == "advance")
    report = json.loads(op.run("report", "daily", "--date", day.isoformat(), "--json").stdout)
    assert report["refunds"] == 2500                                     # what the channel paid back that day
    assert report["advances_outstanding"] == advanced == balances(op, "platform")["advances"] > 0


def test_a_day_with_open_differences_is_settled_only_when_someone_answers_for_it(gateway_factory, db_url,
                                                                                tmp_path) -> None:
    day = paid_day(gateway_factory, db_url, tmp_path, 5000)
    gw, op, full, [payment] = day.gw, day.op, day.statement, day.payments
    wrong = tmp_path / "wrong.statement"
    wrong.write_text(edit_sandbox(full.read_text(), amount={payment["out_trade_no"]: 4000}))
    assert op.reconcile("sandbox", today(), wrong)["counts"]["amount_mismatch"] == 1
    tomorrow = (today() + timedelta(days=1)).isoformat()
    refused = op.run("settle", "--date", tomorrow, ok=False)
    assert refused.returncode == 1 and "1 amount_mismatch" in refused.stderr
    assert "reserve_bank" not in balances(op, "platform")
    op.add_operator("cfo", "approver")
    named = op.signed_in("cfo", "settle", "--date", tomorrow, "--force", "--json", password="a guess at it", ok=False)
    assert named.returncode == 1 and "wrong_password" in named.stderr      # a name alone answers for nothing
    assert "reserve_bank" not in balances(op, "platform")
    forced = json.loads(op.signed_in("cfo", "settle", "--date", tomorrow, "--force", "--json").stdout)
    assert {b["kind"] for b in forced["booked"]} == {"channel", "merchant"}
    with gw.gateway.db.transaction() as conn:
        assert {r.forced_by for r in conn.execute(text("SELECT forced_by FROM settlements"))} == {"cfo"}
        assert conn.execute(text("SELECT operator FROM audit_log WHERE action = 'settle.force'")).scalar_one() == "cfo"
    assert books_clean(gw)


def test_a_statement_line_we_do_not_know_holds_the_days_settlement(gateway_factory, db_url, tmp_path) -> None:
    """The statement's net is booked into the reserve bank only when our books stand behind every line:
    an unknown success (or one listed twice) would put channel clearing below zero."""
    day = paid_day(gateway_factory, db_url, tmp_path, 5000)
    forged = tmp_path / "forged.statement"
    forged.write_text(edit_sandbox(day.statement.read_text(), extra=[
        ["2026-01-01 00:00:00", "sbxUNKNOWN", "T-NOT-OURS", "", "payment", "SUCCESS", "50000000", "0"]]))
    assert day.op.reconcile("sandbox", today(), forged)["counts"]["missing_local"] == 1
    refused = day.op.run("settle", "--date", (today() + timedelta(days=1)).isoformat(), ok=False)
    assert refused.returncode == 1 and "1 missing_local" in refused.stderr
    assert "reserve_bank" not in balances(day.op, "platform")
    assert books_clean(day.gw)
    # What was kept of the statements (bills name payers) is paymux's user's alone.
    kept = list((tmp_path / "statements").rglob("*"))
    assert any(p.suffix == ".statement" for p in kept)
    assert all(p.stat().st_mode & 0o777 == (0o700 if p.is_dir() else 0o600) for p in kept), \
        {str(p): oct(p.stat().st_mode & 0o777) for p in kept}


def test_every_account_is_reconciled_in_parallel_processes(gateway_factory, db_url, tmp_path) -> None:
    accounts = tuple(ChannelAccountConfig(name, "mock", True, {"secret": SANDBOX_SECRET, "callback_mode": "drop"},
                                          fee_bps=60) for name in ("sbx-a", "sbx-b"))
    gw = gateway_factory(Settings(public_url=f"http://127.0.0.1:{free_port()}", database_url=db_url,
                                  secret_key=SECRET_KEY, channel_accounts=accounts, query_schedule_seconds=(3600,)))
    client = gw.client(gw.merchant())
    op = Operator(gw.settings, tmp_path)
    for i, account in enumerate(("sbx-a", "sbx-b", "sbx-b")):
        payment = client.create_payment(merchant_order_no=f"p{i}", amount=100 + i, channel=account)
        checkout(payment)
        sync(client, payment)
    reports = json.loads(op.run("reconcile", "--date", today().isoformat(), "--json").stdout)
    assert {r["channel_account"]: (r["status"], r["counts"]["matched"]) for r in reports} == {
        "sbx-a": ("completed", 1), "sbx-b": ("completed", 2)}
