"""Who is signed in to the console, on SQLite and on PostgreSQL: tries at a password counted before
it is checked, however many arrive at once and at whichever gateway; sessions that end when their
operator signs out, is disabled or gets a new password; an approval bound to the proposal the
approver saw. (The CLI's side of it is in tests/test_reconcile.py.)"""
from __future__ import annotations

import re
import threading
from collections import Counter

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import free_port, make_settings
from tests.support.console import PASSWORD, Browser, a_difference_and_two_operators, add_operator
from tests.support.operator import Operator

LIMIT = 5           # tries at one name's password in 15 minutes: the default sign_in_max_tries


def audit_count(gw, action: str) -> int:  # noqa: ANN001
    with gw.gateway.db.transaction() as conn:
        return conn.execute(text("SELECT count(*) FROM audit_log WHERE action = :a"), {"a": action}).scalar_one()


@pytest.mark.parametrize("limit", [LIMIT, 3])
def test_simultaneous_sign_ins_check_no_more_passwords_than_the_limit(gateway_factory, db_url, limit) -> None:
    """30 sign-ins for one name at once (29 wrong, 1 right), spread over two gateways on one database
    (as two processes would be): at most the configured number of passwords are checked; the rest
    are refused unchecked."""
    first = gateway_factory(make_settings(db_url, free_port()).with_changes(sign_in_max_tries=limit))
    second = gateway_factory(make_settings(db_url, free_port()).with_changes(sign_in_max_tries=limit))
    add_operator(first, "otto", "operator")
    add_operator(first, "vera", "viewer")
    tries = [("otto", f"guess number {i}") for i in range(29)] + [("otto", PASSWORD)]
    browsers = [Browser((first, second)[i % 2].url) for i in range(len(tries))]
    forms = [{"csrf": b.csrf(), "name": name, "password": password, "next": "/console/"}
             for b, (name, password) in zip(browsers, tries)]
    start, answers = threading.Barrier(len(tries)), [0] * len(tries)

    def try_one(i: int) -> None:
        start.wait()
        answers[i] = browsers[i].http.post("/console/login", data=forms[i]).status_code

    threads = [threading.Thread(target=try_one, args=(i,)) for i in range(len(tries))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counted = Counter(answers)
    assert set(counted) <= {401, 303, 429}, counted
    # Wrong passwords checked (401) never pass the limit; the right one, if it was checked before the
    # limit was reached (303), gives its slot back. Every other try is refused unchecked (429).
    assert counted[401] <= limit and counted[303] <= 1, counted
    assert counted[429] == len(tries) - counted[401] - counted[303] >= len(tries) - limit - 1, counted
    assert audit_count(first, "console.sign_in_failed") == counted[401]
    assert Browser(second.url).sign_in("vera").status_code == 303  # another name is not locked out


def test_sign_ins_that_succeed_use_up_no_tries(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()))
    add_operator(gw, "otto", "operator")
    for _ in range(LIMIT + 2):
        assert Browser(gw.url).sign_in("otto").status_code == 303
    for _ in range(LIMIT - 1):
        assert Browser(gw.url).sign_in("otto", "guess-guess-guess").status_code == 401
    assert Browser(gw.url).sign_in("otto").status_code == 303           # the last slot, given back
    assert Browser(gw.url).sign_in("otto", "guess-guess-guess").status_code == 401
    assert Browser(gw.url).sign_in("otto").status_code == 429           # LIMIT failures: locked out


def test_signing_out_ends_the_session_even_for_a_copied_cookie(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()))
    add_operator(gw, "otto", "operator")
    laptop, phone = Browser(gw.url), Browser(gw.url)
    laptop.sign_in("otto")
    phone.sign_in("otto")
    cookie = laptop.http.cookies["paymux_console"]
    copied = httpx.Client(base_url=gw.url, cookies={"paymux_console": cookie})
    assert copied.get("/console/").status_code == 200              # a copy of the cookie works while signed in
    assert laptop.post("/console/logout", {}).status_code == 303
    for client in (copied, laptop.http):
        gone = client.get("/console/payments")
        assert gone.status_code == 303 and gone.headers["location"].startswith("/console/login"), gone
    assert phone.http.get("/console/").status_code == 200          # only that session ended
    assert audit_count(gw, "console.sign_out") == 1


def test_a_new_password_or_disabling_ends_every_session_of_the_operator(gateway_factory, db_url, tmp_path) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()))
    add_operator(gw, "otto", "operator")
    op = Operator(gw.settings, tmp_path)
    laptop, phone = Browser(gw.url), Browser(gw.url)
    laptop.sign_in("otto")
    phone.sign_in("otto")
    done = op.run("operator", "password", "otto", "--password-stdin", stdin="a brand new secret\n")
    assert "every session of theirs has ended" in done.stdout
    assert laptop.http.get("/console/").status_code == 303 and phone.http.get("/console/").status_code == 303
    assert Browser(gw.url).sign_in("otto").status_code == 401                       # the old password
    assert Browser(gw.url).sign_in("otto", "a brand new secret").status_code == 303
    # Disabled and enabled again: the sessions from before do not come back.
    laptop.sign_in("otto", "a brand new secret")
    assert laptop.http.get("/console/").status_code == 200
    op.run("operator", "disable", "otto")
    op.run("operator", "enable", "otto")
    assert laptop.http.get("/console/").status_code == 303


def test_an_operator_changes_their_own_password_and_is_signed_out_elsewhere(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()))
    add_operator(gw, "otto", "operator")
    laptop, phone = Browser(gw.url), Browser(gw.url)
    laptop.sign_in("otto")
    phone.sign_in("otto")
    wrong = laptop.post("/console/password", {"current": "not my password", "new": "fresh password 1",
                                              "again": "fresh password 1"}, "/console/password")
    assert wrong.status_code == 403 and "current password is wrong" in wrong.text
    changed = laptop.post("/console/password", {"current": PASSWORD, "new": "fresh password 1",
                                                "again": "fresh password 1"}, "/console/password")
    assert (changed.status_code, changed.headers["location"]) == (303, "/console/password?done=changed")
    assert laptop.http.get("/console/").status_code == 200         # this browser stays signed in
    assert phone.http.get("/console/").status_code == 303          # the other session ended
    assert Browser(gw.url).sign_in("otto").status_code == 401
    assert Browser(gw.url).sign_in("otto", "fresh password 1").status_code == 303
    assert audit_count(gw, "operator.password") == 1


APPROVE_FORM = r'<form[^>]*action="/console/recon/items/{item}/approve"[^>]*>(.*?)</form>'
FIELD = re.compile(r'<(?:input|button)[^>]*name="([^"]+)"[^>]*value="([^"]*)"')


def approve_form(browser: Browser, page: str, item: int) -> dict[str, str]:
    """The fields of the Approve form as the approver's browser has it on the page it loaded."""
    form = re.search(APPROVE_FORM.format(item=item), browser.http.get(page).text, re.S)
    assert form, "no Approve button"
    return dict(FIELD.findall(form.group(1)))


def test_an_approval_books_only_the_proposal_the_approver_saw(gateway_factory, db_url, tmp_path) -> None:
    day, item, otto, anna, run_page = a_difference_and_two_operators(gateway_factory, db_url, tmp_path)
    gw = day.gw
    propose = f"/console/recon/items/{item['id']}/propose"
    assert otto.post(propose, {"action": "dismiss", "reason": "nothing to book"}, run_page).status_code == 303
    seen = approve_form(anna, run_page, item["id"])                # anna reads: a dismissal
    # Meanwhile otto changes the proposal to an adjustment of the 10.00.
    assert otto.post(propose, {"action": "adjust", "reason": "the channel kept 10.00"}, run_page).status_code == 303
    stale = anna.http.post(f"/console/recon/items/{item['id']}/approve", data=seen)
    assert stale.status_code == 409 and "proposal_changed" in stale.text, stale.text
    assert day.op.items()[0]["status"] == "open"
    with gw.gateway.db.transaction() as conn:
        assert conn.execute(text("SELECT count(*) FROM ledger_entries WHERE event_type LIKE 'recon.adjust%'")) \
            .scalar_one() == 0
    # Having read the new proposal, she approves that one: it is booked, under both names.
    approved = anna.http.post(f"/console/recon/items/{item['id']}/approve", data=approve_form(anna, run_page,
                                                                                              item["id"]))
    assert approved.status_code == 303
    [done] = day.op.items("--all")
    assert (done["status"], done["resolution"], done["resolved_by"]) == ("resolved", "adjust", "otto + anna")
    with gw.gateway.db.transaction() as conn:
        row = conn.execute(text("SELECT a.operator, a.operator_id FROM audit_log a JOIN operators o "
                                "ON o.id = a.operator_id WHERE a.action = 'recon.approve'")).one()
    assert row.operator == "anna"


def test_sign_in_windows_that_have_passed_are_forgotten(gateway_factory, db_url) -> None:
    """Tries at names nobody signs in as would otherwise stay for good: maintenance forgets passed windows."""
    import asyncio
    import time

    gw = gateway_factory(make_settings(db_url, free_port()).with_changes(sign_in_window_seconds=1))
    for i in range(3):
        assert Browser(gw.url).sign_in(f"nobody-{i}", "guess").status_code == 401
    assert gw.count("sign_in_guards") == 3
    time.sleep(1.1)        # the window is a second long
    asyncio.run(gw.gateway.maintenance())
    assert gw.count("sign_in_guards") == 0
