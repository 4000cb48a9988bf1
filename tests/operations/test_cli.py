"""The `paymux` command as an operator uses it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

PAYMUX = [sys.executable, "-m", "gateway.cli"]


def run(tmp_path: Path, *args: str, check: bool = True, input: str | None = None,
        **env: str) -> subprocess.CompletedProcess:
    config = tmp_path / "paymux.toml"
    if not config.exists():
        config.write_text(f'secret_key = "cli-test-key-0123456789"\n[database]\nurl = "sqlite:///{tmp_path}/p.db"\n'
                          '[[channel_accounts]]\nid = "sandbox"\nplugin = "mock"\n'
                          '[channel_accounts.settings]\nsecret = "cli-sandbox-secret"\n')
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "PAYMUX_CONFIG": str(config), **env}
    return subprocess.run(PAYMUX + list(args), capture_output=True, text=True, env=full_env, cwd=tmp_path,
                          check=check, timeout=60, input=input)


def test_merchant_create_json_prints_exactly_id_and_secret(tmp_path: Path) -> None:
    run(tmp_path, "db", "upgrade")
    out = json.loads(run(tmp_path, "merchant", "create", "Acme", "--json").stdout)
    assert set(out) == {"merchant_id", "secret"}
    assert out["merchant_id"].startswith("mch_") and len(out["secret"]) > 30


def test_serve_refuses_an_outdated_schema(tmp_path: Path) -> None:
    result = run(tmp_path, "serve", "--port", "1", check=False)
    assert result.returncode == 2
    assert "paymux db upgrade" in result.stderr


def test_init_is_idempotent_and_keeps_the_demo_merchant(tmp_path: Path) -> None:
    config = tmp_path / "paymux.toml"
    config.write_text(f'secret_key = "file:{tmp_path}/.paymux/secret.key"\n[database]\nurl = "sqlite:///{tmp_path}/p.db"\n')
    first = run(tmp_path, "init").stdout
    assert "created secret key file" in first
    again = run(tmp_path, "init").stdout
    saved = json.loads((tmp_path / ".paymux" / "merchant.json").read_text())
    assert saved["merchant_id"] in first and saved["merchant_id"] in again
    assert "created secret key file" not in again
    assert oct((tmp_path / ".paymux" / "secret.key").stat().st_mode & 0o777) == "0o600"


def test_plugins_lists_the_sandbox_and_the_accounts(tmp_path: Path) -> None:
    out = run(tmp_path, "plugins").stdout
    assert "mock" in out and "sandbox" in out and "enabled" in out


def test_a_config_error_is_one_clear_line_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "paymux.toml").write_text('[[channel_accounts]]\nid = "x"\nplugin = "mock"\n'
                                          '[channel_accounts.settings]\nsecret = "env:NOT_SET_ANYWHERE"\n')
    result = run(tmp_path, "plugins", check=False)
    assert result.returncode == 2
    assert "NOT_SET_ANYWHERE" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["pay", "--amount", "1"], ["get", "pay_x"]])
def test_client_commands_without_credentials_say_how_to_get_them(tmp_path: Path, args: list[str]) -> None:
    result = run(tmp_path, *args, check=False, PAYMUX_MERCHANT_ID="", PAYMUX_MERCHANT_SECRET="")
    assert result.returncode == 2 and "paymux init" in result.stderr


def test_freeze_refuses_what_is_not_available_and_says_why(tmp_path: Path) -> None:
    run(tmp_path, "db", "upgrade")
    run(tmp_path, "operator", "create", "otto", "--role", "operator", "--password-stdin",
        input="correct horse battery\n")
    mch = json.loads(run(tmp_path, "merchant", "create", "Acme", "--json").stdout)["merchant_id"]
    result = run(tmp_path, "ledger", "freeze", mch, "100", "--reference", "case-1", "--by", "otto",
                 "--password-stdin", check=False, input="correct horse battery\n")
    assert result.returncode == 1 and "insufficient_balance" in result.stderr
    # moving a merchant's money needs an operator who signs in, and releasing it an approver
    assert run(tmp_path, "ledger", "freeze", "mch_x", "100", "--reference", "case-1", check=False).returncode == 2
    unfreeze = run(tmp_path, "ledger", "unfreeze", mch, "100", "--reference", "case-1", "--by", "otto",
                   "--password-stdin", check=False, input="correct horse battery\n")
    assert unfreeze.returncode == 1 and "not_allowed" in unfreeze.stderr
    assert "clean" in run(tmp_path, "ledger", "check").stdout


def test_exceptions_and_redeliver_speak_plainly(tmp_path: Path) -> None:
    run(tmp_path, "db", "upgrade")
    assert "no exceptions" in run(tmp_path, "exceptions").stdout
    assert run(tmp_path, "exceptions", "--json").stdout.strip() == "[]"
    run(tmp_path, "operator", "create", "otto", "--role", "operator", "--password-stdin",
        input="correct horse battery\n")
    missing = run(tmp_path, "events", "redeliver", "evt_nope", "--by", "otto", "--password-stdin", check=False,
                  input="correct horse battery\n")
    assert missing.returncode == 1 and "no event evt_nope" in missing.stderr


def test_once_an_approver_exists_who_may_sign_in_is_an_approvers_decision(tmp_path: Path) -> None:
    """Nobody makes themselves a second identity to approve their own proposal: after the first
    approver, creating, re-passwording, disabling or enabling an operator needs an approver signed in."""
    run(tmp_path, "db", "upgrade")
    pw = "correct horse battery\n"
    run(tmp_path, "operator", "create", "dave", "--role", "operator", "--password-stdin", input=pw)   # the first ones
    run(tmp_path, "operator", "create", "anna", "--role", "approver", "--password-stdin", input=pw)
    alone = run(tmp_path, "operator", "create", "dave.approver", "--role", "approver", "--password-stdin",
                input=pw, check=False)
    assert alone.returncode == 2 and "--by" in alone.stderr
    as_dave = run(tmp_path, "operator", "create", "dave.approver", "--role", "approver", "--password-stdin",
                  "--by", "dave", input=pw + pw, check=False)
    assert as_dave.returncode == 1 and "not_allowed" in as_dave.stderr         # dave is no approver
    for args in (("password", "anna"), ("disable", "anna")):
        assert run(tmp_path, "operator", *args, "--password-stdin", input=pw + pw, check=False).returncode == 2
    made = run(tmp_path, "operator", "create", "vera", "--role", "viewer", "--password-stdin", "--by", "anna",
               input=pw + pw)
    assert "created" in made.stdout
    assert "dave.approver" not in run(tmp_path, "operator", "list").stdout
    import sqlite3

    with sqlite3.connect(tmp_path / "p.db") as db:
        audited = db.execute("SELECT operator, action, target FROM audit_log WHERE action LIKE 'operator.%' "
                             "ORDER BY id").fetchall()
    assert audited == [("(server)", "operator.create", "operator:dave"), ("(server)", "operator.create", "operator:anna"),
                       ("anna", "operator.create", "operator:vera")]


def test_every_command_in_the_table_names_a_function_that_exists() -> None:
    import argparse
    import importlib

    from gateway.cli import build_parser

    def commands(parser: argparse.ArgumentParser) -> set[str]:
        found = {parser.get_default("fn")} - {None}
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    found |= commands(sub)
        return found

    named = commands(build_parser())
    assert len(named) == 39   # with bank import, fees quote, report margin, reconcile-splits, calendar and close-day
    for name in named:
        module, _, function = name.partition(":")
        assert callable(getattr(importlib.import_module(f"gateway.cli.{module}"), function)), name
