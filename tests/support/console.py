"""The console in tests: an operator, a browser session, a difference two operators resolve."""
from __future__ import annotations

import re

import httpx

from gateway.clock import Clock
from gateway.console.identity import create_operator

PASSWORD = "correct horse battery"


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def add_operator(gw, name: str, role: str) -> None:  # noqa: ANN001
    with gw.gateway.db.transaction() as conn:
        create_operator(conn, name, role, PASSWORD, Clock().now())


class Browser:
    """What a browser does: keeps cookies, reads the CSRF token off each form page."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, follow_redirects=False)

    def csrf(self, path: str = "/console/login") -> str:
        return CSRF.search(self.http.get(path).text).group(1)

    def sign_in(self, name: str, password: str = PASSWORD, next_: str = "/console/") -> httpx.Response:
        return self.http.post("/console/login", data={"csrf": self.csrf(), "name": name, "password": password,
                                                      "next": next_})

    def post(self, path: str, data: dict, form_page: str = "/console/") -> httpx.Response:
        return self.http.post(path, data={"csrf": self.csrf(form_page), **data})


def a_difference_and_two_operators(gateway_factory, db_url, tmp_path):  # noqa: ANN001, ANN201
    """A reconciled day with one open difference (an amount the statement says is 10.00 less), and
    otto (operator) and anna (approver) signed in: (day, item, otto, anna, the run's page)."""
    from tests.support.operator import edit_sandbox, paid_day, today

    day = paid_day(gateway_factory, db_url, tmp_path, 5000)
    wrong = tmp_path / "wrong.statement"
    wrong.write_text(edit_sandbox(day.statement.read_text(), amount={day.payments[0]["out_trade_no"]: 4000}))
    run = day.op.reconcile("sandbox", today(), wrong)
    [item] = day.op.items()
    add_operator(day.gw, "otto", "operator")
    add_operator(day.gw, "anna", "approver")
    otto, anna = Browser(day.gw.url), Browser(day.gw.url)
    otto.sign_in("otto")
    anna.sign_in("anna")
    return day, item, otto, anna, f"/console/recon/runs/{run['run_id']}"
