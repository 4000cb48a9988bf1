"""`paymux serve --workers N`: several processes answer on one port, over real HTTP, on one database."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gateway.client import Client
from tests.conftest import free_port
from tests.support import REPO
from tests.support.plugins import wait_until_up
from tests.support.processes import PAYMUX, command_env, create_merchant, sandbox_config


def test_serve_with_two_workers_answers_signed_requests_from_two_processes(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    config = sandbox_config(tmp_path / "paymux.toml", db_url, port)
    env = command_env()
    creds = create_merchant(config, env, tmp_path)
    server = subprocess.Popen(PAYMUX + ["--config", str(config), "serve", "--port", str(port), "--workers", "2"],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", server)
        pids, created = set(), []
        for n in range(200):   # a new connection each time: the kernel hands it to either process
            client = Client(f"http://127.0.0.1:{port}", creds["merchant_id"], creds["secret"])
            try:
                created.append(client.create_payment(merchant_order_no=f"w-{n}", amount=100 + n)["id"])
            finally:
                client.close()
            pids.add(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()["process"])
            if len(pids) == 2 and n >= 5:
                break
        assert len(pids) == 2 and server.pid not in pids
        client = Client(f"http://127.0.0.1:{port}", creds["merchant_id"], creds["secret"])
        try:  # every payment, whichever process wrote it, is read back by whichever answers
            assert {client.get_payment(p)["status"] for p in created} == {"processing"}
        finally:
            client.close()
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=30)
    assert f"serving on http://127.0.0.1:{port} (2 processes" in out.decode()


def _processes_of(port: int, connections: int) -> list[int]:
    """Which process answers each of `connections` keep-alive connections opened together; each
    connection is asked three times, and keeps its process."""
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) for _ in range(connections)]
    try:
        first = [c.get("/healthz").json()["process"] for c in clients]   # every connection now open
        for _ in range(2):
            assert [c.get("/healthz").json()["process"] for c in clients] == first
        return first
    finally:
        for c in clients:
            c.close()


@pytest.mark.skipif(sys.platform != "linux", reason="a socket per process (SO_REUSEPORT) is how serve spreads "
                                                    "connections on Linux only")
def test_connections_opened_together_are_spread_over_the_processes_and_a_killed_one_comes_back(
        tmp_path: Path, db_url: str) -> None:
    """uvicorn's shared socket let the first process to wake accept every waiting connection: 16 keep-alive
    connections opened together went 13–16 to one of two processes. Each process has its own socket now."""
    port = free_port()
    config = sandbox_config(tmp_path / "paymux.toml", db_url, port)
    server = subprocess.Popen(PAYMUX + ["--config", str(config), "serve", "--port", str(port), "--workers", "2"],
                              env=command_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", server)
        time.sleep(1)   # the second process may still be starting: its socket holds what reaches it meanwhile
        served = _processes_of(port, 16)
        shares = {pid: served.count(pid) for pid in set(served)}
        # By the kernel's hash of each connection: all 16 on one of two sockets has odds of 2 in 65,536.
        assert len(shares) == 2 and server.pid not in shares, shares

        os.kill(served[0], signal.SIGKILL)
        deadline, now_serving = time.monotonic() + 30, set()
        while time.monotonic() < deadline and not (len(now_serving) == 2 and served[0] not in now_serving):
            time.sleep(0.2)
            try:
                now_serving = set(_processes_of(port, 16))
            except httpx.HTTPError:   # a connection that reached the killed process's socket before it is back
                now_serving = set()
        assert len(now_serving) == 2 and served[0] not in now_serving and server.poll() is None
    finally:
        server.terminate()
        _, err = server.communicate(timeout=60)
    assert server.returncode == 0, err.decode()
    assert f"serving process {served[0]} ended" in err.decode()


@pytest.mark.skipif(sys.platform != "linux", reason="the per-process sockets are Linux only")
def test_a_port_another_program_holds_is_refused_before_any_process_starts(tmp_path: Path, sqlite_url: str) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        config = sandbox_config(tmp_path / "paymux.toml", sqlite_url, port)
        result = subprocess.run(PAYMUX + ["--config", str(config), "serve", "--port", str(port), "--workers", "2"],
                                env=command_env(), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_workers_must_be_a_whole_number_of_one_or_more(tmp_path: Path) -> None:
    result = subprocess.run(PAYMUX + ["serve", "--workers", "0"], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert result.returncode == 2 and "--workers" in result.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="the per-process sockets are Linux only")
def test_processes_that_cannot_start_stop_the_server_instead_of_starting_again_for_ever(tmp_path: Path) -> None:
    """Each process builds its app from PAYMUX_CONFIG, as `serve` sets it; one that cannot (here the file
    is no longer TOML) would fail the same way on every restart, so the parent stops, saying why."""
    broken = tmp_path / "broken.toml"
    broken.write_text("this is = = not TOML\n")
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from gateway.cli.processes import Supervisor; "
                               f"sys.exit(Supervisor('127.0.0.1', {port}, 2).run())"],
        env={**command_env(), "PAYMUX_CONFIG": str(broken)}, cwd=tmp_path, capture_output=True, text=True,
        timeout=120)
    assert result.returncode == 1, result.stderr
    assert "failed to start; stopping" in result.stderr and "not valid TOML" in result.stderr
    with socket.socket() as again:   # every socket closed: the port is free again
        again.bind(("127.0.0.1", port))
