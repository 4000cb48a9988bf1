"""Payouts (代付) through the sandbox over real HTTP: frozen at request, booked on success, released
on failure, routed by position, found by the janitor, and never paid twice: sent once, sent afresh
(a new number) only when the request provably never left, failed only by a final answer or by the
settled statements (the lifecycle rule every channel's payouts follow; UnionPay's in
test_unionpay_payouts.py)."""
from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.books import full_check
from gateway.config import AccountLimits, ChannelAccountConfig, CircuitConfig
from gateway.models import Payout
from tests.conftest import SANDBOX_SECRET, wait_for
from tests.support.payouts import BANK, balance, book, funded, payout, position, sandbox, settings


def test_a_payout_is_frozen_then_paid_once_and_booked(gateway_factory, db_url) -> None:
    gw = gateway_factory(settings(db_url, payout_settle_ms=3000))   # long enough to see it frozen, even under load
    creds, client = funded(gw)
    before = balance(client)
    made = payout(client, notify_url="https://shop.example/hook")
    assert made.status_code == 201, made.text
    p = made.json()
    assert p["status"] == "processing" and p["channel"] == "sandbox" and p["out_payout_no"]
    assert p["bank_account"] == {"name": "张*", "number": "6216***********0018", "bank_code": "ICBC"}
    with gw.gateway.db.transaction() as conn:   # the number is kept sealed, and the request only by keyed digest
        stored = " ".join(str(v) for v in conn.execute(Payout.__table__.select()).first())
    assert BANK["number"] not in stored and BANK["number"][4:-4] not in stored
    assert balance(client)["available"] == before["available"] - 30000      # frozen at once
    assert balance(client)["payout_pending"] == 30000
    assert position(gw) == (20000, 30000)                                   # the position is held
    assert wait_for(lambda: client.request("GET", f"/v1/payouts/{p['id']}").json()["status"] == "succeeded")
    after = balance(client)
    assert (after["available"], after["payout_pending"]) == (before["available"] - 30000, 0)
    assert position(gw) == (20000, 0)
    assert sandbox(gw).paid_count == {p["out_payout_no"]: 1}
    events = [e["type"] for e in client.request("GET", "/v1/events").json()["data"]]
    assert events[0] == "payout.succeeded"
    # The same request again is the same payout; the same number for something else is refused.
    again = payout(client, notify_url="https://shop.example/hook")
    assert (again.status_code, again.json()["id"], again.json()["status"]) == (200, p["id"], "succeeded")
    other = payout(client, amount=100)
    assert other.status_code == 409 and other.json()["error"]["code"] == "duplicate_payout"
    found = client.request("GET", "/v1/payouts?merchant_payout_no=po-1").json()["data"]
    assert [f["id"] for f in found] == [p["id"]]
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []


def test_a_declined_payout_releases_the_money_and_the_position(gateway_factory, db_url) -> None:
    gw = gateway_factory(settings(db_url))
    creds, client = funded(gw)
    before = balance(client)
    made = payout(client, "po-bad", bank_account={**BANK, "number": "6216261000000000000"})
    assert made.status_code == 201
    assert made.json()["status"] == "failed" and made.json()["failure"]["code"] == "ACCOUNT_INVALID"
    assert balance(client) == before and position(gw) == (50000, 0)
    events = [e["type"] for e in client.request("GET", "/v1/events").json()["data"]]
    assert events[0] == "payout.failed"
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []


def test_an_account_switched_off_at_runtime_pays_nothing_out(gateway_factory, db_url) -> None:
    """Payouts follow the operators' runtime switch as payments do, without a payment routed between."""
    from datetime import datetime, timezone

    from gateway.models import ChannelAccountOverride

    gw = gateway_factory(settings(db_url))
    creds, client = funded(gw)           # routed a payment: this process has read the switches once
    gw.gateway.payouts.router.overrides.refresh_seconds = 0     # read again at once, not within seconds
    with gw.gateway.db.transaction() as conn:
        conn.execute(ChannelAccountOverride.__table__.insert().values(
            channel_account="sandbox", enabled=False, version=1, updated_at=datetime.now(timezone.utc)))
    before = balance(client)
    refused = payout(client, "po-off", channel="sandbox")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "channel_disabled"
    anywhere = payout(client, "po-any")
    assert anywhere.status_code == 400 and anywhere.json()["error"]["code"] == "no_channel_available"
    assert sum(sandbox(gw).paid_count.values()) == 0 and balance(client) == before and position(gw) == (50000, 0)


def test_payouts_are_refused_with_nothing_written(gateway_factory, db_url) -> None:
    gw = gateway_factory(settings(db_url))
    creds, client = funded(gw, available=1000, position=0)
    cases = [
        (payout(client, amount=1001), 400, "insufficient_balance"),     # more than available
        (payout(client, amount=500), 503, "channel_unavailable"),       # no position anywhere
        (payout(client, amount=-5), 400, "amount_too_small"),
        (payout(client, bank_account={**BANK, "number": "12ab"}), 400, "parameter_invalid"),
        (payout(client, bank_account={"name": "x"}), 400, "parameter_missing"),
        (payout(client, amount=500, channel="nowhere"), 400, "unknown_channel"),
        (client.request("POST", "/v1/payouts", b"{not json"), 400, "invalid_json"),
    ]
    for response, status, code in cases:
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text
    book(gw, "position.topup", "position:sandbox:t", 100000)
    assert payout(client, amount=1001).json()["error"]["code"] == "insufficient_balance"
    assert gw.count("payouts") == 0
    assert client.request("GET", "/v1/payouts/po_missing").status_code == 404


def test_payouts_go_where_the_position_is(gateway_factory, db_url) -> None:
    accounts = tuple(ChannelAccountConfig(name, "mock", True, {"secret": SANDBOX_SECRET}, priority, 1,
                                          AccountLimits(max_amount=max_amount), CircuitConfig())
                     for name, priority, max_amount in (("first", 1, None), ("second", 2, None), ("small", 0, 100)))
    gw = gateway_factory(settings(db_url, accounts=accounts))
    creds, client = funded(gw, position=10000, account="first")
    book(gw, "position.topup", "position:second:t", 50000, account="second")
    book(gw, "position.topup", "position:small:t", 50000, account="small")
    made = payout(client, amount=30000).json()
    assert made["channel"] == "second"          # first has too little position; small caps the amount
    assert made["routing"]["skipped"] == {"first": "position_insufficient", "small": "above_max_amount"}
    assert payout(client, "po-2", amount=5000).json()["channel"] == "first"


def test_a_payout_that_timed_out_is_found_paid_and_never_sent_elsewhere(gateway_factory, db_url) -> None:
    accounts = tuple(ChannelAccountConfig(name, "mock", True, {"secret": SANDBOX_SECRET, "callback_mode": "drop",
                                                                 "payout_latency_ms": latency}, priority, 1,
                                          AccountLimits(), CircuitConfig())
                     for name, priority, latency in (("slow", 1, 1500), ("spare", 2, 0)))
    gw = gateway_factory(settings(db_url, accounts=accounts, timeout=0.5).with_changes(
        query_schedule_seconds=(1.5, 0.5, 0.5)))   # the janitor first asks after the create gave up
    creds, client = funded(gw, account="slow")
    book(gw, "position.topup", "position:spare:t", 50000, account="spare")
    made = payout(client, amount=30000)
    assert made.status_code == 201 and made.json()["status"] == "processing"     # the answer never came
    assert made.json()["channel"] == "slow"
    assert wait_for(lambda: client.request("GET", f"/v1/payouts/{made.json()['id']}").json()["status"]
                    == "succeeded", timeout=20)
    number = made.json()["out_payout_no"]
    assert sandbox(gw, "slow").paid_count == {number: 1} and sandbox(gw, "spare").payouts == {}
    # Sending it again, as after a crash, is the same payout at the channel.
    with gw.gateway.db.transaction() as conn:
        row = conn.execute(Payout.__table__.select()).first()
    asyncio.run(_send_again(gw, row))
    assert sandbox(gw, "slow").paid_count == {number: 1}
    with gw.gateway.db.transaction() as conn:
        assert full_check(conn) == []


async def _send_again(gw, row) -> None:  # noqa: ANN001
    """The payout sent once more through the channel plugin, on a client of this test's own."""
    from gateway.channel import ChannelContext
    from gateway.payouts import payout_request
    from plugins.mock.channel import MockChannel

    account = gw.gateway.host.account(row.channel_account)
    async with httpx.AsyncClient() as http:
        channel = MockChannel(ChannelContext(account.id, account.channel.ctx.settings, http, gw.gateway.clock,
                                             gw.gateway.log, gw.url))
        resent = await channel.payout(payout_request(row, gw.gateway.box))
        assert resent.channel_payout_id == row.channel_payout_id


def test_a_payout_that_never_reached_the_channel_goes_once_under_a_new_number(gateway_factory, db_url,
                                                                             monkeypatch) -> None:
    gw = gateway_factory(settings(db_url, callback_mode="drop"))
    creds, client = funded(gw)
    channel = gw.gateway.host.account("sandbox").channel
    real = type(channel).payout
    calls = []

    async def lost_once(self, request):  # noqa: ANN001, ANN202
        calls.append(request.out_payout_no)
        if len(calls) == 1:   # no connection could be made: not a byte of the request left
            raise httpx.ConnectError("connection refused")
        return await real(self, request)

    monkeypatch.setattr(type(channel), "payout", lost_once)
    made = payout(client).json()
    assert made["status"] == "processing" and sandbox(gw).payouts == {}
    assert wait_for(lambda: client.request("GET", f"/v1/payouts/{made['id']}").json()["status"] == "succeeded",
                    timeout=20)
    now = client.request("GET", f"/v1/payouts/{made['id']}").json()
    assert len(calls) == 2 and calls[0] == made["out_payout_no"] and calls[1] == now["out_payout_no"] != calls[0]
    assert now["routing"]["renumbered"][0]["out_payout_no"] == calls[0]
    assert sandbox(gw).paid_count == {now["out_payout_no"]: 1}


def test_a_payout_the_sandbox_has_no_record_of_is_asked_about_never_resent_and_failed_only_by_the_statements(
        db_url, monkeypatch, tmp_path) -> None:
    """The lifecycle rule, for the sandbox: a request that may have left is never sent again, whatever
    the channel answers; the settled statements of its days (and the channel's "no record") fail it."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from tests.conftest import Running, start_gateway
    from tests.support.unionpay import ShiftedClock, reconcile_days

    clock = ShiftedClock()    # the sandbox signs its answers with the time: it lives on the same clock
    config = settings(db_url, callback_mode="drop").with_changes(statement_dir=str(tmp_path / "st"))
    app, server = start_gateway(config, clock=clock)
    with server:
        gw = Running(config.public_url, config, app)
        creds, client = funded(gw)
        channel = gw.gateway.host.account("sandbox").channel
        real = type(channel).payout
        calls = []

        async def lost_on_the_way(self, request):  # noqa: ANN001, ANN202
            calls.append(request.out_payout_no)
            if len(calls) == 1:   # the answer never came: the request may have reached the sandbox, or not
                raise httpx.ReadTimeout("no answer")
            return await real(self, request)

        monkeypatch.setattr(type(channel), "payout", lost_on_the_way)
        made = payout(client).json()
        for _ in range(3):   # PAYOUT_NOT_EXIST: no record (yet), asked again, never sent again
            assert client.request("GET", f"/v1/payouts/{made['id']}?sync=true").json()["status"] == "processing"
        assert calls == [made["out_payout_no"]] and sandbox(gw).payouts == {}
        day = datetime.now(ZoneInfo("Asia/Shanghai")).date()
        statement = tmp_path / "sandbox.statement"
        statement.write_text(sandbox(gw).statement(day.isoformat()))
        later_day = tmp_path / "later.statement"   # four days on: a file that has the payout no more than the first
        later_day.write_text(statement.read_text().replace(day.isoformat(), (day + timedelta(days=4)).isoformat(), 1))
        first, later = reconcile_days(config, clock, [(timedelta(), day), (timedelta(days=4), day + timedelta(days=4))],
                                      account="sandbox", files=[statement, later_day])
        clock.offset = timedelta()   # back to today, for the merchant's signed requests
        assert first["counts"]["pending_carryover"] == 1 and later["status"] == "completed", later["message"]
        failed = client.request("GET", f"/v1/payouts/{made['id']}").json()
        assert failed["status"] == "failed" and failed["failure"]["code"] == "absent_from_statement"
        assert calls == [made["out_payout_no"]] and sandbox(gw).paid_count == {}
        assert balance(client)["payout_pending"] == 0 and position(gw) == (50000, 0)
        with gw.gateway.db.transaction() as conn:
            assert full_check(conn) == []


@pytest.mark.parametrize("concurrency", [8])
def test_concurrent_identical_requests_make_one_payout(gateway_factory, db_url, concurrency) -> None:
    gw = gateway_factory(settings(db_url))
    creds, client = funded(gw)

    async def burst() -> list[httpx.Response]:
        from gateway.client import AsyncClient

        async_client = AsyncClient(gw.url, creds.merchant_id, creds.secret)
        try:
            return await asyncio.gather(*[async_client.request("POST", "/v1/payouts", {
                "merchant_payout_no": "same", "amount": 1000, "bank_account": BANK}) for _ in range(concurrency)])
        finally:
            await async_client.aclose()

    answers = asyncio.run(burst())
    assert {a.status_code for a in answers} <= {200, 201} and len({a.json()["id"] for a in answers}) == 1
    assert gw.count("payouts") == 1
    assert wait_for(lambda: balance(client)["payout_pending"] == 0)
    assert balance(client)["available"] == 100000 - 1000      # frozen and paid once


def _returning_gateway(db_url, tmp_path, **changes):  # noqa: ANN001, ANN003, ANN202
    """A gateway on a clock the test moves, whose sandbox returns every paid payout three days later
    (its payout_return_days fault); payouts cost the merchant a fee of 200."""
    from tests.conftest import Running, start_gateway
    from tests.support import REPO
    from tests.support.unionpay import ShiftedClock

    chart = tmp_path / "ledger.toml"
    chart.write_text((REPO / "conf" / "ledger.toml").read_text().replace("payout_fee = 0", "payout_fee = 200", 1))
    clock = ShiftedClock()
    config = settings(db_url, payout_return_days=3, **changes.pop("sandbox", {})).with_changes(
        statement_dir=str(tmp_path / "st"), ledger_config=str(chart), **changes)
    app, server = start_gateway(config, clock=clock)
    return Running(config.public_url, config, app), server, clock


def _payout_row(gw, payout_id: str):  # noqa: ANN001, ANN202
    with gw.gateway.db.transaction() as conn:
        return conn.execute(Payout.__table__.select().where(Payout.__table__.c.id == payout_id)).one()


def _statement(gw, tmp_path, day) -> object:  # noqa: ANN001
    path = tmp_path / f"sandbox-{day.isoformat()}.statement"
    path.write_text(sandbox(gw).statement(day.isoformat()))
    return path


class ReturningSandbox:
    """The sandbox returns every paid payout three days later; its question answers RETURNED."""

    account, found_by, code = "sandbox", "query", "ACCOUNT_CLOSED"

    def __init__(self, db_url, tmp_path) -> None:  # noqa: ANN001
        self.tmp_path = tmp_path
        self.gw, self.server, self.clock = _returning_gateway(db_url, tmp_path)

    def __enter__(self) -> "ReturningSandbox":
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    def funded(self):  # noqa: ANN201
        return funded(self.gw)

    def payout(self, client) -> dict:  # noqa: ANN001
        return payout(client, notify_url="https://shop.example/hook").json()

    def asked(self, number: str) -> int:
        return 0

    def tell_again(self, number: str) -> httpx.Response:
        from plugins.mock import wire

        body = wire.encode({"id": "evt_again", "event": "payout", **sandbox(self.gw).payouts[number]})
        return httpx.post(f"{self.gw.url}/v1/notify/sandbox", content=body,
                          headers=wire.signed_headers(SANDBOX_SECRET, body, self.clock.timestamp()))

    def files(self, *days) -> list | None:  # noqa: ANN002
        return [_statement(self.gw, self.tmp_path, day) for day in days]

    def day_of(self, moment):  # noqa: ANN001, ANN201
        """The statement day a moment is on: the business day (Asia/Shanghai)."""
        from zoneinfo import ZoneInfo

        return moment.astimezone(ZoneInfo("Asia/Shanghai")).date()

    def paid_count(self) -> dict:
        return sandbox(self.gw).paid_count


class ReturningUnionPay(ReturningSandbox):
    """UnionPay's simulator returns every 代付 paid three days later (its payout_return_days fault). Its
    question then answers a failure, which contradicts the success and is not applied: the ZM file of
    the day it came back is what returns it (docs/channels.md)."""

    account, found_by, code = "up", "statement", "returned_on_statement"

    def __init__(self, db_url, tmp_path) -> None:  # noqa: ANN001
        from tests.conftest import Running, ServerThread, free_port, start_gateway
        from tests.support import REPO
        from tests.support.unionpay import ShiftedClock, UnionPayMerchant, up_settings

        self.tmp_path = tmp_path
        self.clock = ShiftedClock()
        self.merchant = UnionPayMerchant(clock=self.clock)
        self.merchant.sim.faults.payout_return_days = 3
        port = free_port()
        self.sim_server = ServerThread(self.merchant.sim.app, port)
        chart = tmp_path / "ledger.toml"
        chart.write_text((REPO / "conf" / "ledger.toml").read_text().replace("payout_fee = 0", "payout_fee = 200", 1))
        config = up_settings(db_url, f"http://127.0.0.1:{port}", self.merchant, statement_dir=str(tmp_path / "st"),
                             ledger_config=str(chart), janitor_poll_seconds=0.1, query_schedule_seconds=(0.3,))
        app, self.server = start_gateway(config, clock=self.clock)
        self.gw = Running(config.public_url, config, app)

    def __enter__(self) -> "ReturningUnionPay":
        self.sim_server.__enter__()
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.sim_server.__exit__(*exc)

    def funded(self):  # noqa: ANN201
        from tests.support.unionpay import fund

        creds = self.gw.merchant()
        fund(self.gw.settings, creds.merchant_id, available=100000, position=50000)
        return creds, self.gw.client(creds)

    def payout(self, client) -> dict:  # noqa: ANN001
        from tests.support.unionpay import CARD

        return payout(client, notify_url="https://shop.example/hook", bank_account=CARD).json()

    def asked(self, number: str) -> int:
        return sum(1 for f in list(self.merchant.sim.received) if f.get("txnType") == "00" and f["orderId"] == number)

    def tell_again(self, number: str) -> httpx.Response:
        """UnionPay's notification of the 代付 as it stands (after its return: a failure, 63)."""
        from urllib.parse import quote

        sim = self.merchant.sim
        fields = sim.signed(sim.view(sim.order(number)))
        body = "&".join(f"{k}={quote(v, safe='')}" for k, v in fields.items()).encode()
        return httpx.post(f"{self.gw.url}/v1/notify/up", content=body,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})

    def files(self, *days) -> list | None:  # noqa: ANN002
        return None          # downloaded from the simulator's file service, as in production

    def day_of(self, moment):  # noqa: ANN001, ANN201
        """UnionPay's day turns at 23:00 Beijing: what is paid after it is on the next day's file."""
        from plugins.unionpay.wire import settlement_day

        return settlement_day(moment).date()

    def paid_count(self) -> dict:
        return dict(self.merchant.sim.paid_count)


@pytest.mark.parametrize("channel", [ReturningSandbox, ReturningUnionPay], ids=["sandbox", "unionpay"])
def test_a_payout_returned_three_days_later_is_returned_once_however_often_it_is_told(channel, db_url,
                                                                                        tmp_path) -> None:
    """Three days after its success the receiving bank sends the payout back. The sandbox's answer to the
    janitor's question says so; UnionPay's says the 代付 failed, which is not a return by itself: the
    statement of the day it came back returns it. Then it is told again, by a callback, by the
    statements of the day it was paid and of the day it came back, by the rule itself: the return is
    applied, booked and announced once, the position and the merchant's balance right."""
    from datetime import timedelta

    from tests.support.unionpay import reconcile_days

    with channel(db_url, tmp_path) as world:
        gw, clock = world.gw, world.clock
        creds, client = world.funded()
        made = world.payout(client)
        assert wait_for(lambda: _payout_row(gw, made["id"]).status == "succeeded")
        assert balance(client)["available"] == 100000 - 30200 and position(gw, world.account) == (20000, 0)
        paid_day = world.day_of(clock.now())   # by the channel's day: UnionPay's turns at 23:00 Beijing
        number = made["out_payout_no"]
        asked = world.asked(number)
        clock.offset = timedelta(days=3, minutes=1)    # the janitor keeps asking: the bank sent it back
        returned_day = world.day_of(clock.now())
        if world.found_by == "query":
            assert wait_for(lambda: _payout_row(gw, made["id"]).status == "returned", timeout=20)
        else:   # asked, answered "failed": a contradiction the statement decides; the callback neither
            assert wait_for(lambda: world.asked(number) > asked, timeout=20)
            assert world.tell_again(number).status_code == 200
            assert _payout_row(gw, made["id"]).status == "succeeded"
        # Told again: the channel's callback, the statements of both days, the rule itself.
        again = world.tell_again(number)
        assert again.status_code == 200
        first, second = reconcile_days(gw.settings, clock, [(timedelta(), paid_day), (clock.offset, returned_day)],
                                       account=world.account, files=world.files(paid_day, returned_day))
        assert world.tell_again(number).status_code == 200
        assert asyncio.run(gw.gateway.payouts.return_found(world.account, number, "a test")) is False
        clock.offset = timedelta()
        assert first["status"] == second["status"] == "completed", (first, second)
        # the day it was paid: its success line matches the payout (returned here by then, or not yet)
        assert first["counts"]["matched"] >= 1 and first["counts"]["status_mismatch"] == 0, first
        if world.found_by == "query":    # the day it came back: its return line matches the return
            assert second["counts"]["matched"] >= 1 and second["counts"]["status_mismatch"] == 0, second
        else:                            # ... or returns it, by rule payout_returned_by_statement
            assert second["counts"]["status_mismatch"] == 1 and second["auto_resolved"] == 1, second
        shown = client.request("GET", f"/v1/payouts/{made['id']}").json()
        assert shown["status"] == "returned" and shown["returned_at"] and shown["failure"]["code"] == world.code
        # The amount and the fee back with the merchant, the position restored, one event, one entry.
        assert balance(client)["available"] == 100000 and position(gw, world.account) == (50000, 0)
        events = [e["type"] for e in client.request("GET", "/v1/events").json()["data"]]
        assert events.count("payout.returned") == 1 and events.count("payout.succeeded") == 1
        with gw.gateway.db.transaction() as conn:
            assert gw.gateway.ledger.entry(conn, f"payout:{made['id']}:payout.returned") is not None
        with gw.gateway.db.transaction() as conn:
            assert full_check(conn) == []
        assert world.paid_count() == {number: 1}


def test_a_return_found_only_on_the_statement_goes_to_frozen_and_keeps_the_fee_by_setting(db_url, tmp_path) -> None:
    """No question after success (a watch of 0 days), no callback: the statement of the day it came
    back finds the return (rule payout_returned_by_statement); the settings freeze the amount for
    review and keep the fee."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from tests.support.unionpay import reconcile_days

    gw, server, clock = _returning_gateway(db_url, tmp_path, payout_return_watch_days=0, payout_return_to="frozen",
                                           payout_return_fee="keep", sandbox={"callback_mode": "drop"})
    with server:
        creds, client = funded(gw)
        made = payout(client).json()
        assert wait_for(lambda: _payout_row(gw, made["id"]).status == "succeeded")
        clock.offset = timedelta(days=3, minutes=1)
        returned_day = clock.now().astimezone(ZoneInfo("Asia/Shanghai")).date()
        file = _statement(gw, tmp_path, returned_day)
        assert _payout_row(gw, made["id"]).status == "succeeded"     # nobody asked, nobody told
        [report] = reconcile_days(gw.settings, clock, [(clock.offset, returned_day)], account="sandbox", files=[file])
        clock.offset = timedelta()
        assert report["counts"]["status_mismatch"] == 1 and report["auto_resolved"] == 1, report
        assert _payout_row(gw, made["id"]).status == "returned"
        now = balance(client)
        assert (now["available"], now["frozen"]) == (100000 - 30200, 30000) and position(gw) == (50000, 0)
        with gw.gateway.db.transaction() as conn:
            assert full_check(conn) == []


def test_return_settings_that_make_no_sense_stop_start_up_with_their_name() -> None:
    from gateway.channel import SettingsError
    from gateway.config import settings_from_mapping
    from gateway.errors import ConfigError
    from plugins.mock.channel import MockChannel

    good = settings_from_mapping({"payout_return_watch_days": 3, "payout_return_to": "frozen",
                                  "payout_return_fee": "keep", "payout_return_query_seconds": 60}, {})
    assert (good.payout_return_watch_days, good.payout_return_to, good.payout_return_fee) == (3, "frozen", "keep")
    for key, value in (("payout_return_watch_days", -1), ("payout_return_watch_days", 1.5),
                       ("payout_return_query_seconds", 0), ("payout_return_to", "elsewhere"),
                       ("payout_return_fee", "half")):
        with pytest.raises(ConfigError, match=key):
            settings_from_mapping({key: value}, {})
    for days in (-1, 31, "3", True):
        with pytest.raises(SettingsError, match="payout_return_days"):
            MockChannel.parse_settings({"secret": SANDBOX_SECRET, "payout_return_days": days})
    assert MockChannel.parse_settings({"secret": SANDBOX_SECRET, "payout_return_days": 3}).payout_return_days == 3
