"""A reconciliation started in the console reads the account's statement of splits too (issue 19): the
operator queues the day over the console's HTTP API, the worker's step runs the trade statement and,
for an account with Capability.SPLIT_STATEMENT, the statement of splits, as `paymux reconcile-splits`
and the close do. On SQLite and on PostgreSQL."""
from __future__ import annotations

import asyncio
import re

from gateway.console.recon_requests import run_one
from gateway.logs import get_logger
from gateway.service import Gateway
from tests.conftest import free_port, make_settings
from tests.payments.test_split_statements import split
from tests.support.console import Browser, add_operator
from tests.support.split_days import balance, split_row, today
from tests.support.splits import FAST, paid, receiver


def worker_step(settings) -> bool:  # noqa: ANN001
    """What one turn of `paymux worker`'s request loop does, in a gateway of its own."""
    async def run() -> bool:
        gw = Gateway.build(settings, get_logger(role="worker"))
        try:
            return await run_one(gw)
        finally:
            await gw.aclose()

    return asyncio.run(run())


def test_a_run_requested_in_the_console_reconciles_the_statement_of_splits_too(gateway_factory, db_url,
                                                                                 tmp_path) -> None:
    settings = make_settings(db_url, free_port()).with_changes(statement_dir=str(tmp_path / "st"), **FAST)
    gw = gateway_factory(settings)
    client = gw.client(gw.merchant())
    rcv = receiver(client)
    made = split(client, paid(client, "o-1", 10000), "s-1", rcv, 3000)
    assert balance(gw, "receiver_in_transit", rcv["id"]) == 3000      # owed until the channel says it paid
    add_operator(gw, "otto", "operator")
    otto = Browser(gw.url)
    otto.sign_in("otto")
    day = today(gw)
    queued = otto.post("/console/recon/requests", {"account": "sandbox", "date": day.isoformat()}, "/console/recon")
    assert queued.status_code == 303, queued.text
    assert worker_step(settings) is True
    page = otto.http.get("/console/recon").text
    row = re.search(r'<tr><td>#\d+</td><td>sandbox</td>.*?</tr>', page, re.S).group(0)
    assert 'class="tag done"' in row and "statement of splits completed (run rcr_" in row, row
    # The statement of splits was read: the channel paid the receiver itself, nothing is owed any more.
    assert split_row(gw, made["id"]).channel_paid_on == day
    assert balance(gw, "receiver_in_transit", rcv["id"]) == 0
    assert worker_step(settings) is False                             # one request, run once
