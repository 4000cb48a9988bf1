"""The operator's side of a test: paymux commands run against the test gateway's database, the sandbox's settings, the books' checks."""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from gateway import cli
from gateway.books import full_check
from gateway.config import AccountLimits, ChannelAccountConfig, CircuitConfig, Settings
from tests.conftest import SANDBOX_SECRET, SECRET_KEY, checkout, free_port
from tests.support import REPO

CHINA = ZoneInfo("Asia/Shanghai")


PASSWORD = "correct horse battery"


def today() -> date:
    return datetime.now(CHINA).date()


class Operator:
    """Runs paymux commands against the test gateway's database and channel accounts."""

    def __init__(self, settings: Settings, tmp: Path, extra: str = "") -> None:
        self.tmp = tmp
        self.sqlite = settings.database_url.startswith("sqlite")
        self.config = tmp / "paymux.toml"
        lines = [f'public_url = "{settings.public_url}"', f'secret_key = "{SECRET_KEY}"',
                 f'statement_dir = "{tmp / "statements"}"', "log_json = true",
                 "query_schedule_seconds = [3600]", f'[database]\nurl = "{settings.database_url}"']
        for a in settings.channel_accounts:
            lines.append(f'[[channel_accounts]]\nid = "{a.id}"\nplugin = "{a.plugin}"\nenabled = {str(a.enabled).lower()}')
            if a.fee_bps is not None:
                lines.append(f"fee_bps = {a.fee_bps}")
            lines.append("[channel_accounts.settings]")
            lines += [f"{k} = {_toml(v)}" for k, v in a.settings.items()]
        self.config.write_text("\n".join(lines) + "\n" + extra + "\n")

    def run(self, *args: str, ok: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
        """`paymux --config … ARGS` with its own working folder, standard input and output — in this
        process: a fresh interpreter per command cost about a second each (the entry point itself is
        run as a process by tests/test_cli.py). Except a reconciliation on SQLite: its bulk read
        (connectorx) brings a second SQLite library, whose closing a file drops this process's locks
        on it, the test gateway's included — as in production, it runs in a process of its own."""
        if args[0] == "reconcile" and self.sqlite:
            done = subprocess.run([sys.executable, "-m", "gateway.cli", "--config", str(self.config), *args],
                                  capture_output=True, text=True, cwd=self.tmp,
                                  env={"PYTHONPATH": str(REPO), "PATH": ""}, input=stdin)
            if ok:
                assert done.returncode == 0, done.stdout + done.stderr
            return done
        argv = ["--config", str(self.config), *args]
        out, err, saved_logging, saved_stdin, cwd = io.StringIO(), io.StringIO(), structlog.get_config(), sys.stdin, \
            os.getcwd()
        os.chdir(self.tmp)
        sys.stdin = io.StringIO(stdin or "")
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = cli.main(argv)
                except SystemExit as exc:   # argparse's refusals
                    code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        finally:
            os.chdir(cwd)
            sys.stdin = saved_stdin
            structlog.configure(**saved_logging)   # a command configures logging for itself
        done = subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())
        if ok:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    def add_operator(self, name: str, role: str) -> None:
        """The first approver answers for every operator made after them."""
        if getattr(self, "approver", None):
            self.run("operator", "create", name, "--role", role, "--password-stdin", "--by", self.approver,
                     stdin=PASSWORD + "\n" + PASSWORD + "\n")
        else:
            self.run("operator", "create", name, "--role", role, "--password-stdin", stdin=PASSWORD + "\n")
        if role == "approver" and not getattr(self, "approver", None):
            self.approver = name

    def signed_in(self, name: str, *args: str, password: str = PASSWORD, ok: bool = True) -> subprocess.CompletedProcess:
        """A command an operator answers for, run as `name`, who signs in with `password`."""
        return self.run(*args, "--by", name, "--password-stdin", ok=ok, stdin=password + "\n")

    def proposal(self, item_id: int) -> str:
        """The number of an open item's proposal, as `recon list` shows it."""
        return str({i["id"]: i for i in self.items()}[item_id]["proposal"]["id"])

    def reconcile(self, account: str, day: date, file: Path | None = None) -> dict[str, Any]:
        args = ["reconcile", "--account", account, "--date", day.isoformat(), "--json"]
        done = self.run(*args, *(["--file", str(file)] if file else []), ok=False)
        assert done.stdout.strip(), done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    def items(self, *extra: str) -> list[dict[str, Any]]:
        return json.loads(self.run("recon", "list", "--json", *extra).stdout)


def _toml(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def sandbox_settings(db_url: str, **over: Any) -> Settings:
    account = ChannelAccountConfig("sandbox", "mock", True, {"secret": SANDBOX_SECRET, "callback_mode": "drop"},
                                   100, 1, AccountLimits(), CircuitConfig(), fee_bps=60)
    return Settings(public_url=f"http://127.0.0.1:{free_port()}", database_url=db_url, secret_key=SECRET_KEY,
                    channel_accounts=(account,), query_schedule_seconds=(3600,), **over)


def edit_sandbox(content: str, *, drop: set[str] = frozenset(), amount: dict[str, int] | None = None,
                 fee: dict[str, int] | None = None, repeat: set[str] = frozenset(),
                 extra: list[list[str]] = ()) -> str:
    """Change a sandbox statement the way a channel's file differs from our books, totals kept true."""
    head, header, *rows, _total = content.strip("\n").split("\n")
    out = []
    for line in rows:
        cells = line.split(",")
        trade = cells[2]
        if trade in drop:
            continue
        if trade in (amount or {}) and cells[4] == "payment":
            cells[6] = str(amount[trade])
        if trade in (fee or {}) and cells[4] == "payment":
            cells[7] = str(fee[trade])
        out.append(cells)
        if trade in repeat and cells[4] == "payment":
            out.append(list(cells))
    out += [list(e) for e in extra]
    pay = [c for c in out if c[4] == "payment"]
    ref = [c for c in out if c[4] == "refund"]
    total = (f"# total rows={len(out)} payments={len(pay)} payment_amount={sum(int(c[6]) for c in pay)} "
             f"refunds={len(ref)} refund_amount={sum(int(c[6]) for c in ref)}")
    return "\n".join([head, header, *(",".join(c) for c in out), total]) + "\n"


@dataclass
class PaidDay:
    gw: Any
    client: Any
    op: Operator
    payments: list[dict]
    statement: Path          # the sandbox's statement of today, as downloaded


def paid_day(gateway_factory: Any, db_url: str, tmp_path: Path, *amounts: int) -> PaidDay:
    """A sandbox gateway with one payment per amount, paid at the sandbox and known here (its callback
    dropped, found by query), and the sandbox's statement of the day downloaded."""
    gw = gateway_factory(sandbox_settings(db_url))
    client = gw.client(gw.merchant())
    op = Operator(gw.settings, tmp_path)
    made = []
    for i, amount in enumerate(amounts):
        payment = client.create_payment(merchant_order_no=f"o{i}", amount=amount)
        checkout(payment)
        sync(client, payment)
        made.append(payment)
    statement = tmp_path / "full.statement"
    op.run("statement", "download", "--account", "sandbox", "--date", today().isoformat(), "--out", str(statement))
    return PaidDay(gw, client, op, made, statement)


def books_clean(gw: Any) -> bool:
    with gw.gateway.db.transaction() as conn:
        return full_check(conn) == []


def sync(client: Any, payment: dict) -> None:
    assert client.get_payment(payment["id"], sync=True)["status"] == "succeeded"


def balances(op: Operator, owner: str) -> dict[str, int]:
    out = op.run("ledger", "balances", "--owner", owner).stdout.splitlines()[1:]
    return {line.split()[1]: int(line.split()[-1].replace(",", "")) for line in out}
