"""Run an ASGI app (a gateway, a simulator) under uvicorn on loopback, in a thread, for tests."""
from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar

import httpx
from starlette.types import ASGIApp

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """uvicorn on 127.0.0.1 in a thread: real HTTP, real sockets, real callbacks. A context manager."""

    def __init__(self, app: ASGIApp, port: int) -> None:
        import uvicorn

        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "ServerThread":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


def start_logged(cmd: list[str], log: Path, env: dict | None = None, cwd: Path | None = None,
                 health_url: str | None = None, timeout: float = 30.0) -> subprocess.Popen:
    """Start a process whose stderr goes to `log` (a pipe nobody reads fills up and stops the process),
    and wait until health_url answers 200 when one is given."""
    with open(log, "ab") as sink:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=sink)
    if health_url is None:
        return proc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{cmd[-3:]} exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(health_url, timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"{cmd[-3:]} did not come up")
