"""The daily close by the real thing: `paymux worker` as a process of its own, its clock moved by the test
(PAYMUX_CLOCK_OFFSET_FILE, the testing aid of gateway/clock.py) over two business days, killed with
SIGKILL while a close step runs, and another process that finishes the day once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from gateway.clock import OFFSET_FILE_VARIABLE
from ledger.check import check_ledger
from tests.close.test_close import DAY1, _days, _steps, payer
from tests.conftest import Running, start_gateway, wait_for
from tests.support import REPO
from tests.support.operator import Operator, sandbox_settings
from tests.support.payouts import sandbox
from tests.support.unionpay import ShiftedClock

CLOSE = """
[calendar]
CNY = "china"
[close]
lookback_days = 1
retry_seconds = [1200]
lease_seconds = 60
poll_seconds = 0.1
[close.accounts.sandbox]
publish_at = "09:00"
deadline = "10:00"
"""


class SharedTime:
    """The test's clock (the gateway's and the sandbox's, in this process) and the worker processes', one offset."""

    def __init__(self, file: Path) -> None:
        self.file, self.clock = file, ShiftedClock()

    def set(self, offset: timedelta) -> None:
        self.clock.offset = offset
        staged = self.file.with_suffix(".new")
        staged.write_text(str(offset.total_seconds()))
        os.replace(staged, self.file)           # whole, never half-written

    def advance(self, by: timedelta) -> None:
        self.set(self.clock.offset + by)


def start_worker(op: Operator, time: SharedTime, name: str) -> subprocess.Popen:
    """`paymux --config … worker`, as an operator starts it, on the test's time; its output in NAME.log."""
    with open(op.tmp / f"{name}.log", "w") as log:
        return subprocess.Popen([sys.executable, "-m", "gateway.cli", "--config", str(op.config), "worker"],
                                cwd=op.tmp, stdout=log, stderr=subprocess.STDOUT,
                                env={"PYTHONPATH": str(REPO), "PATH": "", OFFSET_FILE_VARIABLE: str(time.file)})


class HeldStatement:
    """The sandbox keeps the worker's request for one day's statement waiting (once armed), until released:
    the download step is running, in the worker, for as long as the test wants."""

    def __init__(self, sim: Any, day: str) -> None:
        self.sim, self.day, self.original = sim, day, sim.statement
        self.asked, self.released = threading.Event(), threading.Event()
        sim.statement = self._statement

    def _statement(self, day: str) -> str | None:
        if day == self.day and not self.released.is_set():
            self.asked.set()
            self.released.wait(60)
        return self.original(day)

    def release(self) -> None:
        self.released.set()
        self.sim.statement = self.original


def test_a_worker_process_closes_two_days_and_one_killed_mid_step_is_finished_once_by_the_next(db_url, tmp_path) -> None:
    time = SharedTime(tmp_path / "clock-offset")
    time.set(DAY1 - datetime.now(UTC))
    settings = sandbox_settings(db_url, auth_window_seconds=10**9, statement_dir=str(tmp_path / "statements"))
    account = settings.channel_accounts[0]   # the sandbox publishes day D's statement at 10:30 of D + 1
    settings = settings.with_changes(channel_accounts=(replace(account, settings={
        **account.settings, "statement_delay_seconds": 10 * 3600 + 1800}),))
    op = Operator(settings, tmp_path, extra=CLOSE)
    before, day1, day2 = (str((DAY1 + timedelta(days=n)).date()) for n in (-1, 0, 1))
    app, server = start_gateway(settings, clock=time.clock)
    workers: list[subprocess.Popen] = []
    with server:
        gw = Running(settings.public_url, settings, app)
        pay = payer(gw.client(gw.merchant()))
        pay("day1-a", 10000)
        pay("day1-b", 2500)
        workers.append(start_worker(op, time, "w1"))
        try:
            # The day before (the gateway's first): no statement, and nothing booked: closed at its deadline.
            assert wait_for(lambda: before in _days(gw) and _days(gw)[before].status == "done", timeout=60)
            time.advance(timedelta(days=1))                 # day 2, 10:00: day 1's statement due since 09:00
            pay("day2-a", 7000)
            assert wait_for(lambda: day1 in _days(gw) and _days(gw)[day1].tries >= 1, timeout=60)
            late = _days(gw)[day1]
            assert late.status == "waiting" and "not generated yet" in late.message and late.alerted_at is not None

            # 10:35: published at 10:30, tried again (10:00 + 20 min); the sandbox keeps the download waiting,
            # and the worker is killed in the middle of it.
            held = HeldStatement(sandbox(gw), day1)
            try:
                time.advance(timedelta(minutes=35))
                assert held.asked.wait(60)
                running = _days(gw)[day1]
                assert running.status == "running" and running.leased_by.endswith(f":{workers[0].pid}")
                assert _steps(gw, day1)["download"].status == "running"
                workers[0].kill()
                assert workers[0].wait(30) == -signal.SIGKILL
            finally:
                held.release()
            assert _days(gw)[day1].status == "running" and _days(gw)[day1].lease_until is not None

            workers.append(start_worker(op, time, "w2"))    # restarted: takes the day once the dead one's lease passed
            time.advance(timedelta(minutes=2))
            assert wait_for(lambda: _days(gw)[day1].status == "done", timeout=60)
            time.advance(timedelta(days=1))                 # day 3, 10:37: day 2 is published, closed
            assert wait_for(lambda: day2 in _days(gw) and _days(gw)[day2].status == "done", timeout=60)
        finally:
            for worker in workers:
                worker.kill()
                worker.wait(30)

        closed = _days(gw)[day1]
        assert closed.leased_by.endswith(f":{workers[1].pid}") and closed.lease_until is None
        steps1 = _steps(gw, day1)
        assert {s: (r.status, r.runs) for s, r in steps1.items()} == {
            "download": ("done", 3),            # not published yet; killed; found
            "reconcile": ("done", 1), "settle": ("done", 1), "statements": ("done", 1), "report": ("done", 1)}
        assert steps1["reconcile"].counts["class_matched"] == 2
        assert {s: r.runs for s, r in _steps(gw, day2).items()} == dict.fromkeys(steps1, 1)
        with gw.gateway.db.transaction() as conn:
            settled = conn.execute(text("SELECT kind, business_date FROM settlements ORDER BY business_date, kind")).all()
            statements = conn.execute(text("SELECT business_date, lines FROM merchant_statements "
                                           "ORDER BY business_date")).all()
            runs = conn.execute(text("SELECT business_date, status FROM recon_runs ORDER BY business_date")).all()
            assert check_ledger(conn) == []
        # T+1 by China's working days: each day settled once, on the next; one statement a day; one run a day.
        assert [(k, str(d)) for k, d in settled] == [("channel", day1), ("merchant", day1), ("channel", day2),
                                                     ("merchant", day2)]
        assert [str(d) for d, _ in statements] == [day1, day2] and all(n > 0 for _, n in statements)
        assert [(str(d), s) for d, s in runs] == [(day1, "completed"), (day2, "completed")]
    alerts = [line for worker in ("w1", "w2") for line in (tmp_path / f"{worker}.log").read_text().splitlines()
              if "alert.close_statement_missing" in line]
    assert len(alerts) == 1 and day1 in alerts[0]        # the late statement's alert, once, by the first worker
