"""Circuits shared through the database: two gateways (two health boards and routers, as two processes
have) on one database, on a clock the test moves. A circuit one opens, the other sees open after its
next flush; after the cool-down exactly one of them takes the half-open probe; its answer closes the
circuit for both."""
from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Iterator

import httpx
import pytest

from gateway.clock import Clock
from gateway.config import AccountLimits, ChannelAccountConfig, CircuitConfig, Settings
from gateway.db import Database
from gateway.health import CLOSED, HALF_OPEN, OPEN, HealthBoard
from gateway.logs import get_logger
from gateway.plugins import PluginHost
from gateway.routing import Router
from ledger.days import BusinessDay
from tests.conftest import SANDBOX_SECRET, SECRET_KEY

CIRCUIT = CircuitConfig(error_rate=0.5, min_calls=2, window_seconds=60, cooldown_seconds=30)


class Clocks:
    """One moved time for both boards: monotonic seconds and the wall clock they stand for."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.start = datetime.now(UTC)

    def monotonic(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return self.start + timedelta(seconds=self.t - 1000.0)


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    db = Database(db_url)
    yield db
    db.dispose()


def boards(clocks: Clocks) -> tuple[HealthBoard, HealthBoard]:
    return tuple(HealthBoard({"a": CIRCUIT}, get_logger(), monotonic=clocks.monotonic, wall=clocks.wall)
                 for _ in range(2))  # type: ignore[return-value]


def flush(db: Database, *each: HealthBoard) -> None:
    for board in each:
        with db.transaction() as conn:
            board.flush(conn)


def test_a_circuit_opened_in_one_process_is_open_in_the_other_and_one_probe_closes_it_for_both(database) -> None:
    clocks = Clocks()
    first, second = boards(clocks)
    for _ in range(2):
        first.record("a", "create", ok=False, timeout=False, seconds=0.01)
    assert first.state("a") == OPEN and second.state("a") == CLOSED
    flush(database, first, second)
    assert second.state("a") == OPEN and not second.available("a")

    clocks.t += 31                                  # cooled down in both
    assert first.wants_probe("a") and second.wants_probe("a")
    with database.transaction() as conn:
        taken = [second.claim_probe(conn, "a")]
    with database.transaction() as conn:
        taken.append(first.claim_probe(conn, "a"))
    assert taken == [True, False]                   # one process probes, the other waits for it
    assert second.available("a") and not first.available("a") and not first.wants_probe("a")

    second.begin("a")
    second.record("a", "create", ok=True, timeout=False, seconds=0.01)
    assert second.state("a") == CLOSED
    flush(database, second, first)
    assert first.state("a") == CLOSED and first.available("a")


def test_a_probe_that_never_answers_is_taken_again_after_a_cool_down_by_one_process(database) -> None:
    clocks = Clocks()
    first, second = boards(clocks)
    for _ in range(2):
        first.record("a", "create", ok=False, timeout=False, seconds=0.01)
    flush(database, first, second)
    clocks.t += 31
    with database.transaction() as conn:
        assert first.claim_probe(conn, "a")
    first.begin("a")                                # ... and the process dies before the answer
    flush(database, second)
    assert second.state("a") == HALF_OPEN and not second.available("a")
    clocks.t += 31
    with database.transaction() as conn:
        assert second.claim_probe(conn, "a")
    with database.transaction() as conn:
        assert not first.claim_probe(conn, "a")


def test_two_routers_on_one_database_let_exactly_one_payment_probe_a_half_open_account(database, db_url) -> None:
    clocks = Clocks()
    settings = Settings(public_url="http://127.0.0.1:1", database_url=db_url, secret_key=SECRET_KEY,
                        channel_accounts=tuple(ChannelAccountConfig(name, "mock", True, {"secret": SANDBOX_SECRET},
                                                                    priority, 1, AccountLimits(), CIRCUIT)
                                               for name, priority in (("a", 1), ("spare", 2))))
    http = httpx.AsyncClient()
    host = PluginHost(settings, http, Clock(), get_logger())
    first, second = boards(clocks)
    routers = [Router(host, board, {}, BusinessDay.of("Asia/Shanghai", 0)) for board in (first, second)]
    for _ in range(2):
        second.record("a", "create", ok=False, timeout=False, seconds=0.01)
    flush(database, second, first)

    def first_choices() -> list[str]:
        return [asyncio.run(router.plan(database.tx, clocks.wall(), "m", 100, "CNY", None, None)).routes[0].account.id
                for router in routers]

    assert first_choices() == ["spare", "spare"]    # open in both, though only one saw the errors
    clocks.t += 31
    assert sorted(first_choices()) == ["a", "spare"]
    asyncio.run(http.aclose())
