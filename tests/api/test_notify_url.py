"""notify_url cannot reach the platform's own network: loopback, private, link-local, shared, multicast,
reserved and cloud metadata addresses are refused when the URL is given (a 400, nothing written) and
again at every delivery, which connects to the address it checked and follows no redirect.
`notify_allow_private_networks` lets a development machine use a local receiver."""
from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import netguard
from gateway.models import MerchantEvent
from tests.conftest import ServerThread, checkout, free_port, make_settings, wait_for

FAST = dict(notify_schedule_seconds=(0.2, 0.2, 0.2, 30), notify_poll_seconds=0.1)
INTERNAL = [
    "http://127.0.0.1:5432/x", "http://169.254.169.254/latest/meta-data/", "http://[::1]:8080/hook",
    "http://0x7f000001/hook", "http://2130706433/hook", "http://127.1/hook", "http://017700000001/hook",
    "http://localhost:8000/hook", "https://LOCALHOST./hook", "http://api.localhost/hook", "http://10.0.0.5/hook",
    "http://172.16.3.4/hook", "http://192.168.1.1/hook", "http://100.64.0.1/hook", "http://198.18.0.7/hook",
    "http://0.0.0.0:80/hook", "http://[::]/hook", "http://[::ffff:127.0.0.1]/hook", "http://[::ffff:a9fe:a9fe]/x",
    "http://[fd00:ec2::254]/latest", "http://[fe80::1]/hook", "http://224.0.0.1/hook", "http://[ff02::1]/hook",
    "http://240.0.0.1/hook", "http://metadata.google.internal/computeMetadata/v1/", "http://hooks.shop.test/hook",
    "http://mixed.shop.test/hook",
]


class Hook:
    """A merchant's endpoint: records what reached it (and the Host it was sent for); may redirect."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.redirect_to = redirect_to
        self.received: list[tuple[bytes, str]] = []
        self.server = ServerThread(Starlette(routes=[Route("/hook", self.hook, methods=["POST"])]), free_port())

    async def hook(self, request: Request) -> Response:
        self.received.append((await request.body(), request.headers.get("host", "")))
        if self.redirect_to:
            return Response(b"", 302, headers={"Location": self.redirect_to})
        return Response(b"ok")

    def __enter__(self) -> "Hook":
        self.server.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.__exit__(*exc)


@pytest.fixture
def dns(monkeypatch) -> dict[str, list[str]]:
    """Names of our own making and what they resolve to; other names go to the real resolver."""
    names: dict[str, list[str]] = {"hooks.shop.test": ["127.0.0.1"], "mixed.shop.test": ["93.184.216.34", "10.1.2.3"],
                                   "public.shop.test": ["93.184.216.34"]}
    asked: list[str] = []
    real = netguard.resolve

    async def resolve(host: str, port: int) -> list[Any]:
        asked.append(host)
        if host in names:
            return [ipaddress.ip_address(a) for a in names[host]]
        return await real(host, port)

    monkeypatch.setattr(netguard, "resolve", resolve)
    names["__asked__"] = asked   # type: ignore[assignment]
    return names


def strict(db_url: str, **over: Any) -> Any:
    return make_settings(db_url, free_port()).with_changes(notify_allow_private_networks=False, **over)


def events_of(gw: Any) -> list[Any]:
    table = MerchantEvent.__table__
    with gw.gateway.db.transaction() as conn:
        return conn.execute(select(table).order_by(table.c.seq)).all()


def test_urls_that_reach_internal_addresses_are_refused_when_given(gateway_factory, db_url, dns) -> None:
    gw = gateway_factory(strict(db_url))
    client = gw.client(gw.merchant())
    for i, url in enumerate(INTERNAL):
        made = client.request("POST", "/v1/payments", {"merchant_order_no": f"o-{i}", "amount": 100,
                                                       "notify_url": url}, idempotency_key=f"k-{i}")
        assert made.status_code == 400, (url, made.text)
        assert (made.json()["error"]["code"], made.json()["error"]["param"]) == ("notify_url_forbidden", "notify_url")
    for url in ("http://127.0.0.1:5432/x", "http://169.254.169.254/", "http://hooks.shop.test/hook"):
        made = client.request("POST", "/v1/payouts", {"merchant_payout_no": "po-1", "amount": 100, "notify_url": url,
                                                      "bank_account": {"name": "x", "number": "6216261000000000018"}})
        assert (made.status_code, made.json()["error"]["code"]) == (400, "notify_url_forbidden"), made.text
    for table in ("payments", "attempts", "payouts", "merchant_events", "idempotency_keys", "ledger_entries"):
        assert gw.count(table) == 0, table


def test_nobody_unauthenticated_makes_paymux_look_a_name_up(gateway_factory, db_url, dns) -> None:
    gw = gateway_factory(strict(db_url))
    creds = gw.merchant()
    forged = type(creds)(creds.merchant_id, "sk_not_the_secret")
    client = gw.client(forged)
    for path, body in (("/v1/payments", {"merchant_order_no": "o", "amount": 100,
                                         "notify_url": "http://public.shop.test/hook"}),
                       ("/v1/payouts", {"merchant_payout_no": "po", "amount": 100,
                                        "notify_url": "http://public.shop.test/hook",
                                        "bank_account": {"name": "x", "number": "6216261000000000018"}})):
        made = client.request("POST", path, body)
        assert (made.status_code, made.json()["error"]["code"]) == (401, "invalid_signature"), made.text
    assert dns["__asked__"] == []
    # signed, the same name is looked up
    made = gw.client(creds).request("POST", "/v1/payments", {"merchant_order_no": "o", "amount": 100,
                                                             "notify_url": "http://public.shop.test/hook"})
    assert made.status_code == 201 and dns["__asked__"] == ["public.shop.test"]


def test_public_addresses_and_names_that_do_not_resolve_yet_are_accepted(gateway_factory, db_url, dns) -> None:
    gw = gateway_factory(strict(db_url))
    client = gw.client(gw.merchant())
    # A name that does not resolve now is accepted: the merchant's DNS may be late, and each delivery checks.
    for i, url in enumerate(("https://8.8.8.8/hook", "https://public.shop.test/hook", "https://shop.invalid/hook",
                             "https://[2001:4860:4860::8888]/hook")):
        made = client.request("POST", "/v1/payments", {"merchant_order_no": f"ok-{i}", "amount": 100,
                                                       "notify_url": url})
        assert made.status_code == 201, (url, made.text)


def test_private_networks_may_be_allowed_for_development_but_metadata_never(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()))   # the tests' (and the tour's) setting: on
    client = gw.client(gw.merchant())
    assert gw.settings.notify_allow_private_networks
    made = client.request("POST", "/v1/payments", {"merchant_order_no": "dev", "amount": 100,
                                                   "notify_url": "http://127.0.0.1:5432/x"})
    assert made.status_code == 201, made.text
    for i, url in enumerate(("http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/",
                             "http://metadata.google.internal/", "http://[::ffff:169.254.169.254]/")):
        made = client.request("POST", "/v1/payments", {"merchant_order_no": f"md-{i}", "amount": 100,
                                                       "notify_url": url})
        assert (made.status_code, made.json()["error"]["code"]) == (400, "notify_url_forbidden"), url


def test_a_name_that_resolves_privately_at_delivery_is_refused_there(gateway_factory, db_url, dns) -> None:
    gw = gateway_factory(strict(db_url, **FAST))
    creds = gw.merchant()
    client = gw.client(creds)
    with Hook() as hook:
        dns["rebound.shop.test"] = ["93.184.216.34"]           # public when the merchant gives it …
        payment = client.create_payment(merchant_order_no="rebind", amount=100,
                                        notify_url=f"http://rebound.shop.test:{hook.server.port}/hook")
        dns["rebound.shop.test"] = ["127.0.0.1"]               # … this machine when paymux delivers
        checkout(payment)
        assert wait_for(lambda: [e.attempts for e in events_of(gw)] and events_of(gw)[0].attempts >= 2)
        [event] = events_of(gw)
        assert event.last_error == "refused: the URL's host resolves to a loopback address"
        assert hook.received == []
        # The merchant sees the same as for an endpoint that never answers: still pending, retried.
        [seen] = client.request("GET", "/v1/events").json()["data"]
        assert seen["delivery"]["status"] == "pending" and seen["delivery"]["attempts"] >= 2


def test_a_delivery_goes_to_the_address_that_was_checked(gateway_factory, db_url, dns) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()).with_changes(**FAST))
    creds = gw.merchant()
    client = gw.client(creds)
    with Hook() as hook:
        # Only paymux's own lookup knows this name (.invalid never resolves): httpx did not look it up again.
        dns["hooks.paymux.invalid"] = ["127.0.0.1"]
        url = f"http://hooks.paymux.invalid:{hook.server.port}/hook"
        checkout(client.create_payment(merchant_order_no="pinned", amount=100, notify_url=url))
        assert wait_for(lambda: hook.received)
        assert hook.received[0][1] == f"hooks.paymux.invalid:{hook.server.port}"
        assert wait_for(lambda: events_of(gw)[0].status == "delivered")
        assert dns["__asked__"].count("hooks.paymux.invalid") >= 2   # when given, and when delivered


def test_a_redirect_from_the_receiver_is_not_followed(gateway_factory, db_url) -> None:
    gw = gateway_factory(make_settings(db_url, free_port()).with_changes(**FAST))
    client = gw.client(gw.merchant())
    with Hook() as elsewhere, Hook(redirect_to=f"{elsewhere.server.url}/hook") as hook:
        checkout(client.create_payment(merchant_order_no="redirect", amount=100, notify_url=f"{hook.server.url}/hook"))
        assert wait_for(lambda: len(hook.received) >= 2)
        assert elsewhere.received == []
        [event] = events_of(gw)
        assert event.status == "pending" and event.last_error == "HTTP 302"


@pytest.mark.parametrize("address, refused", [
    ("127.0.0.1", "a loopback address"), ("::1", "a loopback address"), ("10.9.8.7", "a private address"),
    ("169.254.169.254", "a cloud metadata address"), ("fd00:ec2::254", "a cloud metadata address"),
    ("100.100.100.200", "a cloud metadata address"), ("::ffff:10.0.0.1", "a private address"),
    ("2002:7f00:1::", "a loopback address"), ("64:ff9b::a00:1", "a private address"),
    ("100.64.1.1", "a shared (CGNAT) address"), ("198.18.0.1", "a private address"),
    ("0.0.0.0", "an unspecified address"), ("::", "an unspecified address"), ("239.1.2.3", "a multicast address"),
    ("fe80::1", "a link-local address"), ("2001:db8::1", "a private address"), ("240.0.0.1", "a private address"),
    ("8.8.8.8", None), ("93.184.216.34", None), ("2001:4860:4860::8888", None), ("64:ff9b::808:808", None),
])
def test_every_spelling_of_an_internal_address_is_refused(address: str, refused: str | None) -> None:
    assert netguard.refusal(ipaddress.ip_address(address)) == refused
    assert netguard.refusal(ipaddress.ip_address(address), allow_private=True) == (
        refused if refused == "a cloud metadata address" else None)


def test_the_cli_refuses_a_merchant_notify_url_on_the_platforms_network(tmp_path, monkeypatch, capsys) -> None:
    from gateway import cli

    monkeypatch.chdir(tmp_path)
    for name in ("PAYMUX_SECRET_KEY", "PAYMUX_DATABASE_URL", "PAYMUX_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "paymux.toml"
    config.write_text('secret_key = "file:.paymux/secret.key"\n[database]\nurl = "sqlite:///paymux.db"\n')
    assert cli.main(["--config", str(config), "init"]) == 0
    assert cli.main(["--config", str(config), "merchant", "create", "shop",
                     "--notify-url", "http://169.254.169.254/latest/meta-data/"]) == 2
    assert "--notify-url is refused: the URL's host is a cloud metadata address" in capsys.readouterr().err
    assert cli.main(["--config", str(config), "merchant", "create", "shop",
                     "--notify-url", "https://8.8.8.8/hook", "--json"]) == 0


def test_the_setting_is_off_unless_the_config_turns_it_on_as_the_embedded_one_does() -> None:
    from gateway.config import DEFAULT_CONFIG, load_settings, settings_from_mapping
    from gateway.errors import ConfigError

    assert settings_from_mapping({}, {}).notify_allow_private_networks is False
    assert settings_from_mapping({"notify_allow_private_networks": True}, {}).notify_allow_private_networks is True
    with pytest.raises(ConfigError, match="notify_allow_private_networks must be true or false"):
        settings_from_mapping({"notify_allow_private_networks": "yes"}, {})
    assert load_settings(DEFAULT_CONFIG, env={}).notify_allow_private_networks is True   # `make run` and the tour
