"""An external plugin package in tests: installed into a site folder, a gateway started with it."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx

from tests.support import REPO

EXAMPLE = REPO / "tests" / "channels" / "example_plugin"


PAYMUX = [sys.executable, "-m", "gateway.cli"]




def env_with(site: Path, **extra: str) -> dict[str, str]:
    repo = REPO
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(repo)]), **extra}


def write_config(workdir: Path, port: int) -> Path:
    config = workdir / "paymux.toml"
    config.write_text(textwrap.dedent(f"""
        public_url = "http://127.0.0.1:{port}"
        secret_key = "example-plugin-test-key-0123456789"
        [database]
        url = "sqlite:///{workdir / 'paymux.db'}"
        [[channel_accounts]]
        id = "front-desk"
        plugin = "counterpay"
        [channel_accounts.settings]
        key = "env:COUNTER_KEY"
    """))
    return config


def wait_until_up(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"gateway exited: {server.stderr.read().decode()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("gateway did not come up")
