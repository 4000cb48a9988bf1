"""Daily limits are exact under concurrency: creates racing on one account, in two gateways on one
database, never take more than its daily_count; the rest go to the next account, and nothing is
written for a create that found no room."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import text

from gateway.config import AccountLimits, ChannelAccountConfig, Settings
from tests.conftest import SANDBOX_SECRET, SECRET_KEY, free_port


def settings(db_url: str, *accounts: ChannelAccountConfig) -> Settings:
    return Settings(public_url=f"http://127.0.0.1:{free_port()}", database_url=db_url, secret_key=SECRET_KEY,
                    channel_accounts=accounts)


def sandbox(account_id: str, priority: int, **limits: Any) -> ChannelAccountConfig:
    return ChannelAccountConfig(account_id, "mock", True, {"secret": SANDBOX_SECRET}, priority, 1,
                                AccountLimits(**limits))


def test_twenty_concurrent_creates_over_two_gateways_take_exactly_the_daily_count(gateway_factory, db_url) -> None:
    accounts = (sandbox("capped", 1, daily_count=5), sandbox("spare", 2))
    first, second = gateway_factory(settings(db_url, *accounts)), gateway_factory(settings(db_url, *accounts))
    creds = first.merchant()
    clients = [first.client(creds), second.client(creds)]

    def pay(n: int) -> dict:
        return clients[n % 2].create_payment(merchant_order_no=f"d-{n}", amount=100)

    with ThreadPoolExecutor(20) as pool:
        paid = list(pool.map(pay, range(20)))

    assert sorted(p["channel"] for p in paid).count("capped") == 5
    assert {p["channel"] for p in paid} == {"capped", "spare"}
    with first.gateway.db.transaction() as conn:
        routed = dict(conn.execute(text("SELECT channel_account, count(*) FROM attempts GROUP BY channel_account")).all())
        day = conn.execute(text("SELECT attempts FROM channel_days WHERE channel_account = 'capped'")).scalar_one()
    assert routed == {"capped": 5, "spare": 15} and day == 5   # a refused create left no row behind
    for client in clients:
        client.close()


def test_when_no_account_has_room_the_create_is_refused_and_writes_nothing(gateway_factory, db_url) -> None:
    accounts = (sandbox("capped", 1, daily_count=3),)
    first, second = gateway_factory(settings(db_url, *accounts)), gateway_factory(settings(db_url, *accounts))
    creds = first.merchant()
    clients = [first.client(creds), second.client(creds)]

    def pay(n: int) -> int:
        return clients[n % 2].request("POST", "/v1/payments", {"merchant_order_no": f"d-{n}", "amount": 100}).status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(pay, range(10)))

    assert sorted(statuses) == [201] * 3 + [503] * 7
    assert first.count("payments") == 3 and first.count("attempts") == 3
    for client in clients:
        client.close()
