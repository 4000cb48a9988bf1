"""The commands against one running gateway (`paymux serve`, the real command, one per module): what
serve says when it starts and what it keeps quiet about, `--field` printing structure as JSON, the
events list, and where a statement file goes."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from gateway.cli import main
from gateway.testing.server import free_port
from tests.cli.conftest import Paymux, clean_environment, write_config
from tests.conftest import checkout
from tests.support import REPO


@dataclass
class Live:
    where: Path
    url: str
    out: Path
    err: Path

    def wait_for(self, what: str, condition) -> None:   # noqa: ANN001
        """Until the condition holds (the gateway's own background work), or fail naming what."""
        deadline = time.monotonic() + 60
        while not condition():
            assert time.monotonic() < deadline, f"gave up waiting for {what}"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    where = tmp_path_factory.mktemp("cli-live")
    port = free_port()
    with pytest.MonkeyPatch.context() as mp:
        clean_environment(mp)
        mp.chdir(where)
        write_config(where / "paymux.toml", port)
        assert main(["init", "--config", "paymux.toml"]) == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMUX_")} | {"PYTHONPATH": str(REPO)}
    out, err = where / "serve.out", where / "serve.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        server = subprocess.Popen([sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), "--config",
                                   "paymux.toml"], cwd=where, env=env, stdout=stdout, stderr=stderr)
    running = Live(where, f"http://127.0.0.1:{port}", out, err)

    def up() -> bool:
        assert server.poll() is None, err.read_text()
        try:
            return httpx.get(f"{running.url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        running.wait_for("the gateway to answer", up)
        yield running
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def here(live: Live, monkeypatch: pytest.MonkeyPatch) -> Live:
    monkeypatch.chdir(live.where)
    return live


def test_serve_says_in_one_line_where_it_listens_and_where_the_console_is(here: Live) -> None:
    lines = here.out.read_text().splitlines()
    assert len(lines) == 1, lines
    assert f"serving on {here.url}" in lines[0] and f"console at {here.url}/console/" in lines[0]


def test_field_prints_structure_as_json_and_a_value_as_it_is(here: Live, paymux: Paymux) -> None:
    code, out, _ = paymux("pay", "--amount", "100", "--config", "paymux.toml")
    payment = json.loads(out)
    assert code == 0 and payment["amount"] == 100
    code, out, _ = paymux("get", payment["id"], "--field", "action", "--config", "paymux.toml")
    assert code == 0 and json.loads(out) == payment["action"] and isinstance(payment["action"], dict)
    assert paymux("get", payment["id"], "--field", "amount", "--config", "paymux.toml")[1] == "100\n"
    assert paymux("get", payment["id"], "--field", "id", "--config", "paymux.toml")[1] == f"{payment['id']}\n"


def test_events_list_shows_what_a_payment_announced(here: Live, paymux: Paymux) -> None:
    code, out, _ = paymux("pay", "--amount", "250", "--config", "paymux.toml")
    payment = json.loads(out)
    checkout(payment)
    code, out, _ = paymux("events", "list", "--json", "--type", "payment.succeeded", "--config", "paymux.toml")
    demo = json.loads((here.where / ".paymux" / "merchant.json").read_text())["merchant_id"]
    listed = [e for e in json.loads(out) if e["resource_id"] == payment["id"]]
    assert code == 0 and len(listed) == 1 and listed[0]["merchant_id"] == demo
    code, out, _ = paymux("events", "--config", "paymux.toml")
    assert code == 0 and payment["id"] in out


def test_the_janitors_routine_questions_are_not_logged_at_info(here: Live, paymux: Paymux) -> None:
    payment = json.loads(paymux("pay", "--amount", "300", "--config", "paymux.toml")[1])

    def asked() -> bool:
        with sqlite3.connect(here.where / "paymux.db") as db:
            queries = db.execute("SELECT max(queries) FROM attempts WHERE payment_id = ?", (payment["id"],)).fetchone()
        return (queries[0] or 0) >= 1

    here.wait_for("the janitor to ask about the payment", asked)
    logged = [json.loads(line) for line in here.err.read_text().splitlines() if line.startswith("{")]
    assert any(e["event"] == "payment.created" and e.get("payment_id") == payment["id"] for e in logged)
    queries = [e for e in logged if e["event"] == "channel.call" and e.get("operation", "").startswith("query")]
    assert queries == []


def test_statement_download_writes_under_dot_paymux_not_into_the_checkout(here: Live, paymux: Paymux) -> None:
    checkout(json.loads(paymux("pay", "--amount", "400", "--config", "paymux.toml")[1]))   # a day with a line
    day = datetime.now(timezone(timedelta(hours=8))).date().isoformat()   # the sandbox's business day (UTC+8)
    code, out, err = paymux("statement", "download", "--account", "sandbox", "--date", day, "--config", "paymux.toml")
    assert code == 0, err
    written = Path(".paymux") / "statements" / f"sandbox-{day}.statement"
    assert str(written) in out and written.is_file()
    assert list(here.where.glob("*.statement")) == []
