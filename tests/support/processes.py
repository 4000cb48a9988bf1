"""A gateway in processes of its own, as an operator starts one: a config file beside a database, the
`paymux` command run with it, a merchant made through that command."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import SANDBOX_SECRET, SECRET_KEY
from tests.support import REPO

PAYMUX = [sys.executable, "-m", "gateway.cli"]


def sandbox_config(path: Path, db_url: str, port: int, *, secret_key: str = SECRET_KEY,
                   sandbox_secret: str = SANDBOX_SECRET) -> Path:
    """A config at `path`: the gateway on `port`, the database at db_url, one sandbox account."""
    path.write_text(f'public_url = "http://127.0.0.1:{port}"\nsecret_key = "{secret_key}"\n'
                    f'[database]\nurl = "{db_url}"\n[[channel_accounts]]\nid = "sandbox"\nplugin = "mock"\n'
                    f'[channel_accounts.settings]\nsecret = "{sandbox_secret}"\n')
    return path


def command_env() -> dict[str, str]:
    """The environment a `paymux` subprocess runs in: this checkout importable, no PAYMUX_CONFIG."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PAYMUX_CONFIG", None)
    return env


def create_merchant(config: Path, env: dict[str, str], cwd: Path, name: str = "shop") -> dict:
    """`paymux merchant create NAME --json`: the new merchant's id and secret."""
    return json.loads(subprocess.run(PAYMUX + ["--config", str(config), "merchant", "create", name, "--json"],
                                     capture_output=True, text=True, env=env, cwd=cwd, check=True,
                                     timeout=60).stdout)
