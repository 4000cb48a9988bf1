"""The commands that need no running gateway: what they say when something named is unknown, when
there is no terminal, and where `paymux init` keeps each config's demo merchant."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import credentials_file
from gateway.testing.server import free_port
from tests.cli.conftest import Paymux, one_line, write_config
from tests.support import REPO

PASSWORD = "correct horse battery\n"


def test_positions_alone_takes_json(workdir: Path, paymux: Paymux) -> None:
    code, out, _ = paymux("positions", "--json")
    assert code == 0 and json.loads(out) == [{"channel_account": "sandbox", "currency": "CNY", "position": 0,
                                              "held": 0}]
    code, out, _ = paymux("positions")
    assert code == 0 and "minor units" in out.splitlines()[0]


def test_merchant_list_shows_the_demo_merchant_and_never_a_secret(workdir: Path, paymux: Paymux) -> None:
    saved = json.loads((workdir / ".paymux" / "merchant.json").read_text())
    code, out, _ = paymux("merchant", "list", "--json")
    listed = json.loads(out)
    assert code == 0 and [m["merchant_id"] for m in listed] == [saved["merchant_id"]]
    assert listed[0]["name"] == "demo" and "secret" not in listed[0]
    code, out, _ = paymux("merchant")
    assert code == 0 and saved["merchant_id"] in out and saved["secret"] not in out


def test_events_list_is_json_too(workdir: Path, paymux: Paymux) -> None:
    code, out, _ = paymux("events", "list", "--json", "--merchant", "mch_nobody")
    assert code == 0 and json.loads(out) == []
    code, out, _ = paymux("events")
    assert code == 0 and out.startswith("no events")


def test_balances_of_an_unknown_merchant_say_so_and_exit_1(workdir: Path, paymux: Paymux) -> None:
    code, _, err = paymux("ledger", "balances", "--owner", "merchant:mch_unknown")
    assert code == 1 and "unknown_merchant" in one_line(err) and "mch_unknown" in err
    code, _, err = paymux("ledger", "balances", "--owner", "channel_account:nowhere")
    assert code == 1 and "nowhere" in one_line(err)
    code, _, err = paymux("ledger", "balances", "--owner", "martian")
    assert code == 2 and "platform" in one_line(err)
    demo = json.loads((workdir / ".paymux" / "merchant.json").read_text())["merchant_id"]
    code, out, _ = paymux("ledger", "balances", "--owner", f"merchant:{demo}", "--json")
    assert code == 0 and json.loads(out) == []   # known, nothing booked yet


def test_freezing_for_an_unknown_merchant_says_unknown_not_insufficient(
        workdir: Path, paymux: Paymux, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD))
    assert paymux("operator", "create", "otto", "--role", "operator", "--password-stdin")[0] == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD))
    code, _, err = paymux("ledger", "freeze", "mch_doesnotexist", "100", "--reference", "case-1", "--by", "otto",
                          "--password-stdin")
    line = one_line(err)
    assert code == 1 and "unknown_merchant" in line and "mch_doesnotexist" in line
    assert "insufficient_balance" not in line
    code, out, _ = paymux("ledger", "check")
    assert code == 0 and "clean" in out


def test_operator_create_without_a_terminal_says_so_in_one_line(
        workdir: Path, paymux: Paymux, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))   # no terminal, nothing piped
    code, _, err = paymux("operator", "create", "nina", "--role", "viewer")
    line = one_line(err)
    assert code == 2 and "--password-stdin" in line and "PAYMUX_OPERATOR_PASSWORD" in line
    assert "nina" not in paymux("operator", "list")[1]
    monkeypatch.setenv("PAYMUX_OPERATOR_PASSWORD", PASSWORD.strip())   # the variable the help names
    assert paymux("operator", "create", "nina", "--role", "viewer")[0] == 0
    assert "nina" in paymux("operator")[1]


def test_init_against_another_config_keeps_each_ones_demo_merchant(workdir: Path, paymux: Paymux) -> None:
    default = workdir / ".paymux" / "merchant.json"
    before = default.read_bytes()
    port = free_port()   # nothing listens there: the client command says which gateway it tried
    write_config(workdir / "my.toml", port)
    code, out, _ = paymux("init", "--config", "my.toml")
    mine = workdir / ".paymux" / "merchant-my.json"
    assert code == 0 and str(Path(".paymux/merchant-my.json")) in out
    assert default.read_bytes() == before
    assert json.loads(mine.read_text())["merchant_id"] != json.loads(before)["merchant_id"]
    assert credentials_file("my.toml") == Path(".paymux/merchant-my.json")
    # the client commands read the file of their config (its URL here), --config before or after
    for argv in (["get", "pay_x", "--config", "my.toml"], ["--config", "my.toml", "get", "pay_x"]):
        code, _, err = paymux(*argv)
        assert code == 3 and f"127.0.0.1:{port}" in one_line(err)


def test_a_second_config_of_the_same_name_does_not_take_over_the_first_ones_file(
        workdir: Path, paymux: Paymux) -> None:
    default = workdir / ".paymux" / "merchant.json"
    before = default.read_bytes()
    (workdir / "other").mkdir()
    write_config(workdir / "other" / "paymux.toml")
    code, _, err = paymux("--config", "other/paymux.toml", "init")
    assert code == 2 and "merchant.json" in one_line(err)
    assert default.read_bytes() == before


def test_a_merchant_id_alone_is_not_signed_with_the_demo_secret(
        workdir: Path, paymux: Paymux, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = paymux("get", "pay_x", "--merchant-id", "mch_someoneelse", "--config", "paymux.toml")
    line = one_line(err)
    assert code == 2 and "--merchant-secret" in line and "PAYMUX_MERCHANT_SECRET" in line
    monkeypatch.setenv("PAYMUX_MERCHANT_ID", "mch_someoneelse")
    monkeypatch.setenv("PAYMUX_CONFIG", "paymux.toml")
    code, _, err = paymux("pay", "--amount", "100")
    assert code == 2 and "PAYMUX_MERCHANT_SECRET" in one_line(err)


def test_without_credentials_the_client_commands_say_how_to_get_them(tmp_path: Path, paymux: Paymux,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path / "shop.toml")
    code, _, err = paymux("pay", "--amount", "1", "--config", "shop.toml")
    assert code == 2 and "paymux init" in one_line(err) and "merchant-shop.json" in err


def test_the_console_script_with_the_gateway_down_prints_one_line_and_exits_3(tmp_path: Path) -> None:
    """The real `paymux` (its entry point, its interpreter's exit): no traceback, what it tried, how to start it."""
    script = Path(sys.executable).parent / "paymux"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"]
    url = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMUX_")} | {"PYTHONPATH": str(REPO)}
    done = subprocess.run(command + ["get", "pay_x", "--url", url, "--merchant-id", "mch_x", "--merchant-secret",
                                     "sk_x"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and done.stdout == ""
    line = one_line(done.stderr)
    assert url in line and "paymux serve" in line


def test_a_database_without_the_schema_is_one_line_that_says_what_to_run(tmp_path: Path, paymux: Paymux,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path / "fresh.toml")
    code, _, err = paymux("events", "list", "--config", "fresh.toml")
    assert code == 2 and "paymux init" in one_line(err)


def test_channels_shows_the_accounts_as_operators_switched_them(workdir: Path, paymux: Paymux) -> None:
    """`paymux channels` shows what the routers use: the runtime switch over the configuration."""
    from datetime import datetime, timezone

    from sqlalchemy import create_engine, delete

    from gateway.models import ChannelAccountOverride

    code, out, _ = paymux("channels", "--json")
    [sandbox] = json.loads(out)
    assert code == 0 and sandbox["enabled"] is True and sandbox["weight"] == 1
    table = ChannelAccountOverride.__table__
    engine = create_engine(f"sqlite:///{workdir / 'paymux.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(table.insert().values(channel_account="sandbox", enabled=False, weight=7,
                                               limits={"max_amount": 500}, version=1,
                                               updated_at=datetime.now(timezone.utc)))
        code, out, _ = paymux("channels", "--json")
        [sandbox] = json.loads(out)
        assert code == 0 and (sandbox["enabled"], sandbox["weight"], sandbox["limits"]["max_amount"]) == (False, 7, 500)
    finally:
        with engine.begin() as conn:
            conn.execute(delete(table))
        engine.dispose()
