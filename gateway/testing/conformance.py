"""The conformance suite a channel plugin passes: the built-in plugins pass it, and so should yours.

    # tests/test_conformance.py in your plugin's package
    from gateway.testing.conformance import ChannelConformance, ChannelHarness

    class MyHarness(ChannelHarness):
        plugin = "mychannel"
        methods = ("qr",)
        def settings(self): ...                  # the account settings, pointing at your simulator
        def pay(self, payment, notify_url): ...  # what the payer does (your simulator's control)
        def callback(self, payment, *, forge=False, stale=False): ...   # a success callback to send

    class TestMyChannel(ChannelConformance):
        harness = MyHarness

Each test starts a real gateway (SQLite in a temporary directory, uvicorn on loopback) with one
channel account, "conf", served by your plugin, and talks to it over HTTP with a signed client.

Which checks run is decided by the capabilities your plugin declares (`Channel.capabilities`): a
check whose capability is not declared is "not asked". A check the capabilities call for whose hook
the harness leaves at its default (None / False: no `drop_callbacks`, no `unreachable_settings`, no
`callback`) is "not covered", by name: skipped, and failed under `pytest --kit-strict`. The pytest
plugin gateway/testing/kit.py (installed with paymux's `[kit]` extra) ends the run with the report of both.
"""
from __future__ import annotations

import asyncio
import functools
import os
import shutil
import tempfile
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar, Iterator

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette

from gateway import db
from gateway.app import create_app
from gateway.books import full_check
from gateway.channel import STATEMENT_COLUMNS, Capability, Channel, ChannelContext, Outcome
from gateway.client import Client, PaymuxAPIError
from gateway.clock import Clock
from gateway.config import ChannelAccountConfig, Settings
from gateway.logs import get_logger
from gateway.merchants import create_merchant
from gateway.models import Payout
from gateway.payouts import payout_request
from gateway.plugins import discover_channel_types, make_plugin_manager
from gateway.reconciliation.match import totals_disagree
from gateway.service import Gateway as Services
from gateway.testing.kit import MARKER, not_asked, not_covered, partly_covered, partly_not_asked
from gateway.testing.server import ServerThread, free_port, wait_for

ACCOUNT = "conf"
_TEMPLATE: dict[str, Path] = {}


class ChannelHarness:
    """What the suite needs from a plugin author. Override what your channel can do."""

    plugin: ClassVar[str]
    methods: ClassVar[tuple[str, ...]]
    metadata: ClassVar[dict[str, dict[str, str]]] = {}   # per method, e.g. {"jsapi": {"payer_openid": "o…"}}
    callbacks: ClassVar[bool] = True                     # the channel announces payments by callback
    # False: the channel's callbacks carry no time to be stale by (UnionPay ACP), so none is asked for;
    # True, and callback(stale=True) returning None is "not covered".
    stale_callbacks: ClassVar[bool] = True
    # Payouts (Capability.PAYOUT): a bank account your simulator pays, and one it declines.
    payout_account: ClassVar[dict[str, str]] = {"name": "张三", "number": "6216261000000000018"}
    # Splits (Capability.SPLIT): a receiver your simulator accepts (binding: the account at your channel).
    receiver: ClassVar[dict[str, Any]] = {"type": "merchant", "name": "Conformance Receiver", "account": "1900000110"}

    def start(self) -> None:
        """Start your simulator, if any."""

    def stop(self) -> None:
        """Stop it."""

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def unreachable_settings(self) -> dict[str, Any] | None:
        """Settings whose channel endpoint answers nothing (a closed port); None if creating and
        querying never call out."""
        return None

    def pay(self, payment: dict[str, Any], notify_url: str) -> None:
        """Do what the payer does for this payment: open the page, scan the code, confirm. (notify_url
        is where the gateway takes this account's callbacks, for channels without a simulator.)"""
        raise NotImplementedError

    def show(self, payment: dict[str, Any]) -> None:
        """The payer sees the order without paying it (opens the link, scans the code): at a channel
        where an order exists only from then on (Alipay's precreate), only then can a close prove it."""

    def drop_callbacks(self, drop: bool) -> bool:
        """Make the channel stop (or resume) sending callbacks; False if the simulator cannot."""
        return False

    def callback(self, payment: dict[str, Any], *, forge: bool = False,
                 stale: bool = False) -> tuple[bytes, dict[str, str]] | None:
        """A body and headers announcing this payment's success: genuine, or signed with a key the
        gateway must not trust (forge), or too old to accept (stale). None for what cannot be built."""
        return None

    def statement_day(self, at: datetime) -> date | None:
        """The day whose statement lists what happened at this moment, if your channel's day turns at
        another hour than the gateway's (UnionPay's turns at 23:00 Beijing); None for the books' day."""
        return None

    def tamper(self, body: bytes) -> bytes:
        """The same callback with its bytes changed after signing."""
        return body.replace(b"1", b"2", 1) if b"1" in body else body + b" "


class Gateway:
    def __init__(self, url: str, app: Starlette, client: Client) -> None:
        self.url, self.app, self.client = url, app, client

    @property
    def notify_url(self) -> str:
        return f"{self.url}/v1/notify/{ACCOUNT}"

    def notify(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return httpx.post(self.notify_url, content=body, headers=headers, timeout=30)

    def books_clean(self) -> list[str]:
        with self.app.state.gateway.db.transaction() as conn:
            return full_check(conn)

    def entries(self) -> int:
        with self.app.state.gateway.db.transaction() as conn:
            return conn.execute(text("SELECT count(*) FROM ledger_entries")).scalar_one()


def _database(tmp: Path) -> str:
    if "path" not in _TEMPLATE:
        template = Path(tempfile.mkdtemp()) / "template.db"
        db.upgrade(f"sqlite:///{template}")
        _TEMPLATE["path"] = template
    shutil.copy(_TEMPLATE["path"], tmp / "paymux.db")
    return f"sqlite:///{tmp / 'paymux.db'}"


@functools.cache
def channel_type(plugin: str) -> type[Channel]:
    """The channel type the installed plugin named `plugin` registers."""
    types = discover_channel_types(make_plugin_manager())
    if plugin not in types:
        raise LookupError(f"no installed paymux plugin registers a channel named {plugin!r} "
                          f"(installed: {', '.join(sorted(types))}); is its package installed?")
    return types[plugin]


def declared(plugin: str) -> frozenset[Capability]:
    """The capabilities the installed plugin named `plugin` declares."""
    return channel_type(plugin).capabilities


class ChannelConformance:
    harness: ClassVar[type[ChannelHarness]]
    pytestmark = [getattr(pytest.mark, MARKER)]

    # What each check needs the plugin to declare; without it the check is not asked.
    ASKS: ClassVar[dict[str, tuple[Capability, ...]]] = {
        "test_each_method_creates_pays_and_refunds": (Capability.PAY,),
        "test_amounts_are_exact_at_the_edges": (Capability.PAY,),
        "test_a_payment_whose_callback_is_lost_is_found_by_query": (Capability.PAY, Capability.NOTIFY,
                                                                    Capability.QUERY),
        "test_an_unpaid_payment_closes": (Capability.PAY, Capability.CLOSE),
        "test_forged_tampered_and_stale_callbacks_change_nothing": (Capability.PAY, Capability.NOTIFY),
        "test_a_duplicate_callback_is_applied_once": (Capability.PAY, Capability.NOTIFY),
        # a channel that is queried is one the gateway calls out to: it can be unreachable
        "test_an_unreachable_channel_is_unknown_never_failed": (Capability.PAY, Capability.QUERY),
        "test_a_payout_is_paid_once_however_often_it_is_sent": (Capability.PAYOUT,),
        "test_a_split_passes_part_of_a_payment_to_a_receiver": (Capability.PAY, Capability.SPLIT),
        "test_the_statement_lists_the_day_as_normalized_lines": (Capability.PAY, Capability.STATEMENT),
    }

    @pytest.fixture(autouse=True)
    def _asked(self, request: pytest.FixtureRequest) -> None:
        """Before any gateway starts: skip the check, as not asked, unless the plugin declares what it needs."""
        have = declared(self.harness.plugin)
        missing = [c.value for c in self.ASKS.get(request.node.originalname, ()) if c not in have]
        if missing:
            not_asked(request.node.originalname, f"the plugin does not declare {', '.join(missing)}")

    def _declares(self, capability: Capability) -> bool:
        return capability in declared(self.harness.plugin)

    @staticmethod
    def _check() -> str:
        return os.environ.get("PYTEST_CURRENT_TEST", "?").split("::")[-1].split(" ")[0].split("[")[0]

    @pytest.fixture
    def channel(self) -> Iterator[ChannelHarness]:
        harness = self.harness()
        harness.start()
        yield harness
        harness.stop()

    def _start(self, tmp_path: Path, settings: dict[str, Any]) -> Iterator[Gateway]:
        port = free_port()
        config = Settings(public_url=f"http://127.0.0.1:{port}", database_url=_database(tmp_path),
                          secret_key="conformance-secret-key-0123456789",
                          channel_accounts=(ChannelAccountConfig(ACCOUNT, self.harness.plugin, True, settings),),
                          channel_timeout_seconds=2.0)
        app = create_app(config)
        with ServerThread(app, port):
            gw = app.state.gateway
            with gw.db.transaction() as conn:
                creds = create_merchant(conn, gw.box, Clock(), "conformance")
            client = Client(config.public_url, creds.merchant_id, creds.secret)
            yield Gateway(config.public_url, app, client)
            client.close()

    @pytest.fixture
    def gateway(self, channel: ChannelHarness, tmp_path: Path) -> Iterator[Gateway]:
        yield from self._start(tmp_path, channel.settings())

    def _create(self, gateway: Gateway, method: str, amount: int = 1000, order: str | None = None) -> dict:
        return gateway.client.create_payment(
            merchant_order_no=order or f"conf-{method}-{time.monotonic_ns()}", amount=amount, subject="conformance",
            channel=ACCOUNT, method=method, metadata=self.harness.metadata.get(method, {}))

    def _settle(self, gateway: Gateway, payment: dict) -> dict:
        """The payment once it is no longer processing (asking the channel if it sends no callbacks)."""
        def settled() -> dict | None:
            current = gateway.client.get_payment(payment["id"], sync=not self.harness.callbacks)
            return None if current["status"] == "processing" else current

        return wait_for(settled)

    # ---- round trips ----

    def test_each_method_creates_pays_and_refunds(self, channel: ChannelHarness, gateway: Gateway,
                                                  request: pytest.FixtureRequest) -> None:
        """Each method: created, paid, succeeded; then 400 of it refunded, if the plugin declares refund."""
        refunds = self._declares(Capability.REFUND)
        if not refunds:
            partly_not_asked(request.node, "its refund", "the plugin does not declare refund")
        untried = [m for m in channel_type(channel.plugin).methods if m not in channel.methods]
        if untried:
            partly_covered(request.node, f"method(s) {', '.join(untried)}",
                           "the plugin offers them, the harness's `methods` does not list them")
        for method in channel.methods:
            payment = self._create(gateway, method)
            assert payment["status"] == "processing", payment
            assert payment["action"] and payment["action"].get("type"), "create must tell the merchant what to show"
            channel.pay(payment, gateway.notify_url)
            paid = self._settle(gateway, payment)
            assert paid["status"] == "succeeded", paid
            if not refunds:
                continue
            refund = gateway.client.create_refund(payment["id"], merchant_refund_no=f"r-{payment['id']}", amount=400)
            assert wait_for(lambda r=refund: gateway.client.get_refund(r["id"])["status"] == "succeeded")
            assert gateway.client.get_payment(payment["id"])["amount_refunded"] == 400
        assert gateway.books_clean() == []

    @pytest.mark.parametrize("amount", [1, 10**10])
    def test_amounts_are_exact_at_the_edges(self, channel: ChannelHarness, gateway: Gateway, amount: int) -> None:
        payment = self._create(gateway, channel.methods[0], amount=amount)
        channel.pay(payment, gateway.notify_url)
        paid = self._settle(gateway, payment)
        assert (paid["status"], paid["amount"]) == ("succeeded", amount)
        assert gateway.books_clean() == []

    def test_a_payment_whose_callback_is_lost_is_found_by_query(self, channel: ChannelHarness,
                                                               gateway: Gateway) -> None:
        if not channel.drop_callbacks(True):
            not_covered(self._check(), "the harness's drop_callbacks() cannot make the channel stop sending "
                                       "callbacks (it returned False)")
        payment = self._create(gateway, channel.methods[0])
        channel.pay(payment, gateway.notify_url)
        assert gateway.client.get_payment(payment["id"])["status"] == "processing"
        assert gateway.client.get_payment(payment["id"], sync=True)["status"] == "succeeded"

    def test_an_unpaid_payment_closes(self, channel: ChannelHarness, gateway: Gateway) -> None:
        payment = self._create(gateway, channel.methods[0])
        channel.show(payment)
        assert gateway.client.close_payment(payment["id"])["status"] == "closed"

    # ---- callbacks ----

    def _callback_or_skip(self, channel: ChannelHarness, payment: dict, **kind: bool) -> tuple[bytes, dict]:
        built = channel.callback(payment, **kind)
        if built is None:
            not_covered(self._check(), f"the harness's callback({', '.join(f'{k}=True' for k in kind)}) builds no "
                                       f"{' '.join(kind) or 'genuine'} callback (it returned None)")
        return built

    def test_forged_tampered_and_stale_callbacks_change_nothing(self, channel: ChannelHarness,
                                                                gateway: Gateway,
                                                                request: pytest.FixtureRequest) -> None:
        payment = self._create(gateway, channel.methods[0])
        body, headers = self._callback_or_skip(channel, payment)
        attempts = [self._callback_or_skip(channel, payment, forge=True), (channel.tamper(body), headers)]
        stale = channel.callback(payment, stale=True) if channel.stale_callbacks else None
        if stale is not None:
            attempts.append(stale)
        elif not channel.stale_callbacks:
            partly_not_asked(request.node, "its stale callback", "the harness says the channel's callbacks carry "
                                                                 "no time (stale_callbacks = False)")
        else:
            partly_covered(request.node, "its stale callback",
                           "the harness's callback(stale=True) returned None (its channel's callbacks carry no time?)")
        for bad_body, bad_headers in attempts:
            response = gateway.notify(bad_body, bad_headers)
            assert response.content != b"success" and response.status_code not in (204,), response.text
        assert gateway.client.get_payment(payment["id"])["status"] == "processing"
        assert gateway.entries() == 0
        genuine_ack = gateway.notify(body, headers)
        assert genuine_ack.status_code < 300
        assert gateway.client.get_payment(payment["id"])["status"] == "succeeded"

    def test_a_duplicate_callback_is_applied_once(self, channel: ChannelHarness, gateway: Gateway) -> None:
        payment = self._create(gateway, channel.methods[0])
        body, headers = self._callback_or_skip(channel, payment)
        first, second = gateway.notify(body, headers), gateway.notify(body, headers)
        assert first.status_code < 300 and second.status_code < 300
        assert first.content == second.content  # the same acknowledgement: the channel stops retrying
        assert gateway.client.get_payment(payment["id"])["status"] == "succeeded"
        assert gateway.entries() == 1 and gateway.books_clean() == []

    # ---- an unreachable channel ----

    def test_an_unreachable_channel_is_unknown_never_failed(self, channel: ChannelHarness, tmp_path: Path) -> None:
        settings = channel.unreachable_settings()
        if settings is None:
            not_covered(self._check(), "the harness's unreachable_settings() gives no settings pointing at a "
                                       "closed port (it returned None)")
        for gateway in self._start(tmp_path, settings):
            payment = self._create(gateway, channel.methods[0])
            assert payment["status"] == "processing"
            assert gateway.client.get_payment(payment["id"], sync=True)["status"] == "processing"
            try:
                gateway.client.close_payment(payment["id"])
            except PaymuxAPIError as exc:
                assert exc.status in (409, 502) or exc.error.get("code") == "capability_not_supported", exc
            assert gateway.client.get_payment(payment["id"])["status"] == "processing"

    # ---- the daily statement ----

    # ---- marketplace ----

    def _fund(self, gateway: Gateway, amount: int) -> None:
        """The merchant's settled sales and the account's position, booked with the ledger's own templates."""
        gw = gateway.app.state.gateway
        merchant_id = gateway.client.merchant_id
        with gw.db.transaction() as conn:
            for event, ref, variables in (
                    ("payment.succeeded", f"funding:{merchant_id}", {"amount": amount, "fee": 0, "discount": 0}),
                    ("settlement.merchant", f"funding:{merchant_id}", {"amount": amount}),
                    ("position.topup", f"position:{ACCOUNT}:conformance", {"amount": amount})):
                gw.payments.booker.book(conn, event, ref, merchant_id=merchant_id, channel_account=ACCOUNT,
                                        currency="CNY", variables=variables, now=gw.clock.now())

    def test_a_payout_is_paid_once_however_often_it_is_sent(self, channel: ChannelHarness, gateway: Gateway) -> None:
        """POST /v1/payouts ends succeeded (asking the channel if it sends no callbacks), the position
        and the merchant's balance move once. The core sends a payout once; should its request still
        reach the channel twice, that is the same payout there (never FAILED for it, never paid twice).
        A number the channel never heard of is `unheard`, and no failure: only a final answer is."""
        running = gateway.app.state.gateway
        account = running.host.account(ACCOUNT)
        self._fund(gateway, 50000)
        made = gateway.client.request("POST", "/v1/payouts", {"merchant_payout_no": "conf-po", "amount": 12345,
                                                               "bank_account": channel.payout_account})
        assert made.status_code == 201, made.text
        assert wait_for(lambda: gateway.client.request("GET", f"/v1/payouts/{made.json()['id']}?sync=true")
                        .json()["status"] == "succeeded"), "the payout never succeeded"
        with running.db.transaction() as conn:
            row = conn.execute(Payout.__table__.select()).first()

        async def again() -> tuple:
            async with httpx.AsyncClient(timeout=5) as http:
                plugin = type(account.channel)(ChannelContext(ACCOUNT, account.channel.ctx.settings, http,
                                                              running.clock, running.log, gateway.url))
                resent = await plugin.payout(payout_request(row, running.box))
                return resent, await plugin.query_payout(row.out_payout_no), await plugin.query_payout(
                    row.out_payout_no[:-4] + "0000")

        resent, queried, unknown = asyncio.run(again())
        assert resent.outcome is not Outcome.FAILED and queried.outcome is Outcome.SUCCEEDED
        assert unknown.unheard, "query_payout of a number the channel never heard of must say unheard"
        assert unknown.outcome in (Outcome.PENDING, Outcome.UNKNOWN), "no record is not a failure"
        balance = gateway.client.request("GET", "/v1/balance").json()["balances"][0]
        assert (balance["available"], balance["payout_pending"]) == (50000 - 12345 - row.fee, 0)
        assert gateway.books_clean() == []

    def test_a_split_passes_part_of_a_payment_to_a_receiver(self, channel: ChannelHarness, gateway: Gateway) -> None:
        receiver = gateway.client.request("POST", "/v1/receivers", channel.receiver)
        assert receiver.status_code == 201, receiver.text
        method = channel.methods[0]
        payment = gateway.client.create_payment(
            merchant_order_no=f"conf-split-{time.monotonic_ns()}", amount=10000, subject="conformance",
            channel=ACCOUNT, method=method, metadata=self.harness.metadata.get(method, {}), splittable=True)
        channel.pay(payment, gateway.notify_url)
        assert self._settle(gateway, payment)["status"] == "succeeded"
        made = gateway.client.request("POST", f"/v1/payments/{payment['id']}/splits", {
            "merchant_split_no": f"s-{payment['id']}", "receiver": receiver.json()["id"], "amount": 2500})
        assert made.status_code == 201, made.text
        assert wait_for(lambda: gateway.client.request("GET", f"/v1/splits/{made.json()['id']}?sync=true")
                        .json()["status"] == "succeeded"), "the split never succeeded"
        assert gateway.client.get_payment(payment["id"])["amount_split"] == 2500
        assert gateway.books_clean() == []

    def test_the_statement_lists_the_day_as_normalized_lines(self, channel: ChannelHarness, gateway: Gateway,
                                                              request: pytest.FixtureRequest) -> None:
        """download_statement then parse_statement: today's payment and refund (if the plugin declares
        refund), in the normalized columns, agreeing with the totals the channel declares;
        read_statement of the same file the same."""
        running = gateway.app.state.gateway
        account = running.host.account(ACCOUNT)
        payment = self._create(gateway, channel.methods[0], amount=1234)
        channel.pay(payment, gateway.notify_url)
        assert self._settle(gateway, payment)["status"] == "succeeded"
        refunds = self._declares(Capability.REFUND)
        if refunds:
            refund = gateway.client.create_refund(payment["id"], merchant_refund_no=f"r-{payment['id']}", amount=234)
            assert wait_for(lambda: gateway.client.get_refund(refund["id"], sync=True)["status"] == "succeeded")
        else:
            partly_not_asked(request.node, "its refund line", "the plugin does not declare refund")
        moment = datetime.now().astimezone()
        day = channel.statement_day(moment) or running.ledger.business_date(moment)

        async def download() -> bytes:
            services = Services.build(running.settings, get_logger())
            try:
                return await services.download_statement(ACCOUNT, day)
            finally:
                await services.aclose()

        content = asyncio.run(download())
        parsed = account.channel.parse_statement(content)
        lines = parsed.lines
        assert list(lines.columns) == list(STATEMENT_COLUMNS), "parse_statement must return the normalized columns"
        with tempfile.TemporaryDirectory() as folder:   # reconciliation hands read_statement the kept file
            kept = Path(folder) / "statement"
            kept.write_bytes(content)
            from_file = account.channel.read_statement(kept)
        assert from_file.lines.equals(lines) and from_file.totals == parsed.totals, \
            "read_statement(path) must read the file as parse_statement reads its bytes"
        rows = lines.to_dicts()
        paid = [r for r in rows if r["kind"] == "payment" and r["out_trade_no"] == payment["out_trade_no"]]
        back = [r for r in rows if r["kind"] == "refund" and r["out_trade_no"] == payment["out_trade_no"]]
        assert [(r["amount"], r["status"]) for r in paid] == [(1234, "succeeded")], rows
        assert [(r["amount"], r["status"]) for r in back] == ([(234, "succeeded")] if refunds else []), rows
        assert not refunds or back[0]["out_refund_no"], "a refund line names our out_refund_no"
        assert totals_disagree(dict(parsed.totals) if parsed.totals else None, lines) is None
