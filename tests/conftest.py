"""Fixtures: a migrated database (SQLite always, PostgreSQL when PAYMUX_TEST_DATABASE_URL is set),
a real gateway served by uvicorn on loopback, and merchants with signed clients."""
from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gateway import db as dbmod
from gateway.client import Client
from gateway.clock import Clock
from gateway.config import ChannelAccountConfig, Settings
from gateway.merchants import MerchantCredentials, create_merchant
from gateway.models import SQLModel
from gateway.secretbox import SecretBox
from gateway.testing.server import ServerThread, free_port, wait_for  # noqa: F401  (used by the tests)

PG_URL = os.environ.get("PAYMUX_TEST_DATABASE_URL")
SANDBOX_SECRET = "sandbox-test-secret"
SECRET_KEY = "test-secret-key-0123456789abcdef"
NO_PG = "PostgreSQL tests need PAYMUX_TEST_DATABASE_URL (CI sets it; see .ci/run)"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "paymux.db"
    dbmod.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    if not PG_URL:
        pytest.skip(NO_PG)
    server = make_url(dbmod.normalize_url(PG_URL))
    name = "paymux_test_" + secrets.token_hex(4)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    dbmod.upgrade(url)
    yield url
    engine = create_engine(url)
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_pg(url: str) -> None:
    engine = create_engine(url)
    tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """Each test using this runs on SQLite and again on PostgreSQL."""
    if request.param == "sqlite":
        target = tmp_path / "paymux.db"
        shutil.copy(sqlite_template, target)
        return f"sqlite:///{target}"
    url = request.getfixturevalue("pg_database")
    _truncate_pg(url)
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    target = tmp_path / "paymux.db"
    shutil.copy(sqlite_template, target)
    return f"sqlite:///{target}"


def make_settings(db_url: str, port: int, **sandbox: Any) -> Settings:
    accounts = (
        ChannelAccountConfig("sandbox", "mock", True, {"secret": SANDBOX_SECRET, **sandbox}),
        ChannelAccountConfig("sandbox-off", "mock", False, {"secret": SANDBOX_SECRET}),
    )
    return Settings(public_url=f"http://127.0.0.1:{port}", database_url=db_url, secret_key=SECRET_KEY,
                    channel_accounts=accounts, notify_allow_private_networks=True)


@dataclass
class Running:
    url: str
    settings: Settings
    app: Any

    @property
    def gateway(self) -> Any:
        return self.app.state.gateway

    def merchant(self, name: str = "shop") -> MerchantCredentials:
        box = SecretBox(self.settings.secret_key)
        with self.gateway.db.transaction() as conn:
            return create_merchant(conn, box, Clock(), name)

    def client(self, creds: MerchantCredentials) -> Client:
        return Client(self.url, creds.merchant_id, creds.secret)

    def count(self, table: str) -> int:
        with self.gateway.db.transaction() as conn:
            return conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()

    def balances(self) -> dict[tuple[str, str], int]:
        """Every ledger account's balance as its owner reads it, by (code, owner id)."""
        with self.gateway.db.transaction() as conn:
            return {(b.account.code, b.account.owner_id): b.normal for b in self.gateway.ledger.balances(conn)}


def start_gateway(settings: Settings, **kwargs: Any):  # noqa: ANN201
    from gateway.app import create_app

    app = create_app(settings, **kwargs)
    port = int(settings.public_url.rsplit(":", 1)[1])
    return app, ServerThread(app, port)


@pytest.fixture
def gateway_factory(db_url: str) -> Iterator[Any]:
    """Start a gateway with sandbox settings of the test's choosing."""
    started: list[ServerThread] = []

    def start(settings: Settings | None = None, **sandbox: Any) -> Running:
        settings = settings or make_settings(db_url, free_port(), **sandbox)
        app, server = start_gateway(settings)
        started.append(server.__enter__())
        return Running(settings.public_url, settings, app)

    yield start
    for server in started:
        server.__exit__(None, None, None)


@pytest.fixture
def gw(gateway_factory: Any) -> Running:
    return gateway_factory()


@pytest.fixture
def merchant(gw: Running) -> MerchantCredentials:
    return gw.merchant()


@pytest.fixture
def client(gw: Running, merchant: MerchantCredentials) -> Iterator[Client]:
    c = gw.client(merchant)
    yield c
    c.close()


def checkout(payment: dict[str, Any], outcome: str = "success") -> dict[str, Any]:
    """What a person clicking Pay (or Fail) on the sandbox checkout page does."""
    import httpx

    url = payment["action"].get("url") or payment["action"].get("code")
    response = httpx.post(url, data={"outcome": outcome}, headers={"Accept": "application/json"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="session", autouse=True)
def _json_logs() -> None:
    from gateway.logs import configure_logging

    configure_logging(json_lines=True)
