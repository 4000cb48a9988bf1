"""The daily close by the real thing: `paymux worker` as a process of its own, its clock moved by the test
(PAYMUX_CLOCK_OFFSET_FILE, the testing aid of gateway/clock.py) over two business days, killed with
SIGKILL while a close step runs, and another process that finishes the day once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.pool import NullPool

from gateway.close import STEPS, runner
from gateway.clock import OFFSET_FILE_VARIABLE, Clock, OffsetFileClock, clock_of
from gateway.errors import ConfigError
from gateway.reconciliation import store
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

BEFORE, DAY_1, DAY_2 = (str((DAY1 + timedelta(days=n)).date()) for n in (-1, 0, 1))


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


@contextmanager
def a_late_day(db_url: str, tmp_path: Path) -> Iterator[Closing]:
    """A gateway (and its sandbox, publishing day D's statement at 10:30 of D + 1) with two payments on day 1,
    a worker process that closed the day before, and day 2 at 10:00: day 1's statement late, the alert said.
    The worker processes are killed on the way out."""
    time = SharedTime(tmp_path / "clock-offset")
    time.set(DAY1 - datetime.now(UTC))
    settings = sandbox_settings(db_url, auth_window_seconds=10**9, statement_dir=str(tmp_path / "statements"))
    account = settings.channel_accounts[0]
    settings = settings.with_changes(channel_accounts=(replace(account, settings={
        **account.settings, "statement_delay_seconds": 10 * 3600 + 1800}),))
    op = Operator(settings, tmp_path, extra=CLOSE)
    app, server = start_gateway(settings, clock=time.clock)
    with server:
        gw = Running(settings.public_url, settings, app)
        closing = Closing(gw, time, op, payer(gw.client(gw.merchant())))
        try:
            closing.pay("day1-a", 10000)
            closing.pay("day1-b", 2500)
            closing.start("w1")
            # The day before (the gateway's first): no statement, and nothing booked: closed at its deadline.
            assert wait_for(lambda: BEFORE in _days(gw) and _days(gw)[BEFORE].status == "done", timeout=60)
            time.advance(timedelta(days=1))                 # day 2, 10:00: day 1's statement due since 09:00
            closing.pay("day2-a", 7000)
            assert wait_for(lambda: DAY_1 in _days(gw) and _days(gw)[DAY_1].tries >= 1, timeout=60)
            late = _days(gw)[DAY_1]
            assert late.status == "waiting" and "not generated yet" in late.message and late.alerted_at is not None
            yield closing
        finally:
            for worker in closing.workers:
                worker.kill()
                worker.wait(30)


@dataclass
class Closing:
    gw: Running
    time: SharedTime
    op: Operator
    pay: Callable[[str, int], dict]
    workers: list[subprocess.Popen] = field(default_factory=list)

    def start(self, name: str) -> subprocess.Popen:
        self.workers.append(start_worker(self.op, self.time, name))
        return self.workers[-1]

    def kill(self, step: str) -> None:
        """SIGKILL the worker running day 1, seen running `step`, then start another once its lease passed."""
        running, worker = _days(self.gw)[DAY_1], self.workers[-1]
        assert running.status == "running" and running.leased_by.endswith(f":{worker.pid}")
        assert _steps(self.gw, DAY_1)[step].status == "running"
        worker.kill()
        assert worker.wait(30) == -signal.SIGKILL

    def finish(self) -> None:
        """Another worker takes day 1 once the dead one's lease passed, and closes it; then day 2."""
        assert _days(self.gw)[DAY_1].status == "running" and _days(self.gw)[DAY_1].lease_until is not None
        self.start("w2")
        self.time.advance(timedelta(minutes=2))
        assert wait_for(lambda: _days(self.gw)[DAY_1].status == "done", timeout=60)
        self.time.advance(timedelta(days=1))                # day 3, 10:37: day 2 is published, closed
        assert wait_for(lambda: DAY_2 in _days(self.gw) and _days(self.gw)[DAY_2].status == "done", timeout=60)
        closed = _days(self.gw)[DAY_1]
        assert closed.leased_by.endswith(f":{self.workers[-1].pid}") and closed.lease_until is None

    def check_once(self, runs: dict[str, int], recon: list[tuple[str, str]]) -> None:
        """Each step done, run as often as `runs` says, the reconciliation runs as `recon` lists them (day,
        status); the books as if nothing had been killed."""
        gw = self.gw
        steps1 = _steps(gw, DAY_1)
        assert {s: (r.status, r.runs) for s, r in steps1.items()} == {s: ("done", n) for s, n in runs.items()}
        assert steps1["reconcile"].counts["class_matched"] == 2
        assert {s: r.runs for s, r in _steps(gw, DAY_2).items()} == dict.fromkeys(steps1, 1)
        with gw.gateway.db.transaction() as conn:
            settled = conn.execute(text("SELECT kind, business_date FROM settlements ORDER BY business_date, kind")).all()
            statements = conn.execute(text("SELECT business_date, lines FROM merchant_statements "
                                           "ORDER BY business_date")).all()
            made = conn.execute(text("SELECT business_date, status FROM recon_runs ORDER BY business_date, "
                                     "started_at")).all()
            assert check_ledger(conn) == []
        # T+1 by China's working days: each day settled once, on the next; one statement a day.
        assert [(k, str(d)) for k, d in settled] == [("channel", DAY_1), ("merchant", DAY_1), ("channel", DAY_2),
                                                     ("merchant", DAY_2)]
        assert [str(d) for d, _ in statements] == [DAY_1, DAY_2] and all(n > 0 for _, n in statements)
        assert [(str(d), s) for d, s in made] == recon
        alerts = [line for log in self.op.tmp.glob("w*.log") for line in log.read_text().splitlines()
                  if "alert.close_statement_missing" in line]
        assert len(alerts) == 1 and DAY_1 in alerts[0]   # the late statement's alert, once


def test_a_worker_process_closes_two_days_and_one_killed_mid_download_is_finished_once_by_the_next(
        db_url: str, tmp_path: Path) -> None:
    with a_late_day(db_url, tmp_path) as closing:
        # 10:35: published at 10:30, tried again (10:00 + 20 min); the sandbox keeps the download waiting,
        # and the worker is killed in the middle of it.
        held = HeldStatement(sandbox(closing.gw), DAY_1)
        try:
            closing.time.advance(timedelta(minutes=35))
            assert held.asked.wait(60)
            closing.kill("download")
        finally:
            held.release()
        closing.finish()
        closing.check_once({"download": 3, "reconcile": 1, "settle": 1, "statements": 1, "report": 1},
                           [(DAY_1, "completed"), (DAY_2, "completed")])


def _running(gw: Running, step: str) -> bool:
    """Day 1's `step` is running; for the reconciliation, its run is started too (the kill leaves it behind)."""
    row = _steps(gw, DAY_1).get(step)
    if row is None or row.status != "running":
        return False
    if step != "reconcile":
        return True
    with gw.gateway.db.transaction() as conn:
        return conn.execute(text("SELECT count(*) FROM recon_runs WHERE status = 'running'")).scalar_one() == 1


# (the step killed, the table whose lock holds it in the middle, the reconciliation runs after)
KILLED_IN = {"reconcile": ("recon_items", [(DAY_1, "failed"), (DAY_1, "completed"), (DAY_2, "completed")]),
             "settle": ("settlements", [(DAY_1, "completed"), (DAY_2, "completed")]),
             "statements": ("merchant_statements", [(DAY_1, "completed"), (DAY_2, "completed")])}


@pytest.mark.parametrize("step", list(KILLED_IN))
@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.pg)], indirect=True)
def test_a_worker_process_killed_in_the_middle_of_a_step_leaves_nothing_running_and_the_next_finishes_once(
        db_url: str, tmp_path: Path, step: str) -> None:
    """PostgreSQL only: a step is held in its middle by a table lock the test takes, which SQLite has not
    (there, the in-process test below proves what the next worker does about a step found running)."""
    table, recon = KILLED_IN[step]
    with a_late_day(db_url, tmp_path) as closing:
        # What the step writes waits on a lock the test holds: the worker is killed with the step under way
        # (its transaction open, and for the reconciliation its run started).
        lock = create_engine(db_url, poolclass=NullPool)
        with lock.begin() as conn:
            conn.execute(text(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
            closing.time.advance(timedelta(minutes=35))
            assert wait_for(lambda: _running(closing.gw, step), timeout=60)
            closing.kill(step)
        lock.dispose()
        closing.finish()
        runs = {"download": 2, "reconcile": 1, "settle": 1, "statements": 1, "report": 1}
        closing.check_once({**runs, step: 2}, recon)   # a reconciliation killed: its run failed, saying so
        with closing.gw.gateway.db.transaction() as conn:
            failed = conn.execute(text("SELECT message FROM recon_runs WHERE status = 'failed'")).scalars().all()
        assert all("killed" in message for message in failed)


def test_a_step_a_killed_worker_left_running_fails_the_run_it_left_before_it_runs_again(db_url: str) -> None:
    """What the close's next worker does about a reconcile step it finds running (its worker was killed):
    the runs that try started and left running are failed; an earlier one, or another account's, is not."""
    killed_at = datetime(2026, 3, 11, 2, 35, tzinfo=UTC)
    reconcile = next(s for s in STEPS if s.name == "reconcile")
    engine = create_engine(db_url, poolclass=NullPool)
    with engine.begin() as conn:
        for run_id, account, started in (("earlier", "sandbox", killed_at - timedelta(hours=1)),
                                         ("cut", "sandbox", killed_at + timedelta(seconds=1)),
                                         ("other", "other", killed_at + timedelta(seconds=1))):
            store.start_run(conn, run_id, account, DAY1.date(), "", "", "CNY", started)
        conn.execute(insert(runner.days).values(account="sandbox", kind="channel", business_date=DAY1.date(),
                                                status="running", next_at=killed_at, tries=0))
        day = conn.execute(select(runner.days)).one()
        conn.execute(insert(runner.steps).values(close_day_id=day.id, step="reconcile", status="running", runs=1,
                                                 started_at=killed_at))
        before = conn.execute(select(runner.steps)).one()
        now = killed_at + timedelta(minutes=2)
        assert runner._start_step(conn, day, reconcile, now, timedelta(minutes=1), before) == 1
        again = conn.execute(select(runner.steps)).one()      # running now, but no worker was killed in it: nothing
        assert again.runs == 2 and runner._start_step(conn, day, reconcile, now, timedelta(minutes=1), None) == 0
        statuses = dict(conn.execute(select(store.runs.c.id, store.runs.c.status)).all())
    engine.dispose()
    assert statuses == {"earlier": "running", "cut": "failed", "other": "running"}


def test_the_commands_clock_is_the_wall_clock_unless_the_testing_aid_names_an_offset_file(tmp_path: Path) -> None:
    assert type(clock_of({})) is Clock
    offset = tmp_path / "offset"
    offset.write_text("86400\n")
    clock = clock_of({OFFSET_FILE_VARIABLE: str(offset)})
    assert isinstance(clock, OffsetFileClock) and clock.now() - datetime.now(UTC) > timedelta(hours=23)
    clock.every = 0                                          # read again at each look, here
    offset.write_text("-3600.5")
    assert datetime.now(UTC) - clock.now() > timedelta(minutes=59)
    offset.write_text("tomorrow")
    with pytest.raises(ConfigError, match="an offset in seconds"):
        clock.now()
    with pytest.raises(ConfigError, match=OFFSET_FILE_VARIABLE):
        clock_of({OFFSET_FILE_VARIABLE: str(tmp_path / "missing")})
