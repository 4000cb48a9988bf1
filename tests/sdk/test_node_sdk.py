"""The Node SDK (sdk/node) in the suite: built with npm and tsc, its unit tests run with Node's test
runner, its live tests against a real gateway served here (SQLite, uvicorn on loopback, a fast
notifier), and its generated types checked against this gateway's /openapi.json.

Without node or npm these skip, saying so; with PAYMUX_REQUIRE_NODE=1 (for CI: .ci/run) they fail
instead, so the SDK cannot go untested unnoticed. node_modules is kept in sdk/node (git-ignored) and
`npm ci` runs again only when package-lock.json is newer than it.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from gateway.api.openapi import openapi_document
from tests.conftest import Running, free_port, make_settings, start_gateway

SDK = Path(__file__).parents[2] / "sdk" / "node"
REQUIRE_NODE = os.environ.get("PAYMUX_REQUIRE_NODE") == "1"
MIN_NODE = (20, 3)
FAST_NOTIFIER = dict(notify_schedule_seconds=(0.2, 0.2, 0.2), notify_poll_seconds=0.1)


def _unavailable(reason: str) -> None:
    if REQUIRE_NODE:
        pytest.fail(f"{reason}, and PAYMUX_REQUIRE_NODE=1 says the Node SDK must be tested")
    pytest.skip(reason)


def _run(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=SDK, env=env, capture_output=True, text=True, timeout=timeout)


def _check(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"{' '.join(result.args)} exited {result.returncode}\n" \
                                   f"{result.stdout[-6000:]}\n{result.stderr[-4000:]}"


@pytest.fixture(scope="module")
def sdk() -> Path:
    """node and npm present, dependencies installed, the SDK compiled to sdk/node/dist."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node and npm are needed for the Node SDK's tests (Node.js >= 20.3)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    found = tuple(int(n) for n in re.findall(r"\d+", version)[:2])
    if found < MIN_NODE:
        _unavailable(f"the Node SDK needs Node.js >= 20.3, found {version}")
    # pytest-xdist workers may each get a test of this module: one installs and builds at a time
    # (the next finds node_modules in place and tsc's incremental build up to date).
    with open(SDK / "node_modules.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        installed = SDK / "node_modules" / ".package-lock.json"
        if not installed.exists() or installed.stat().st_mtime < (SDK / "package-lock.json").stat().st_mtime:
            _check(_run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], timeout=300))
        _check(_run([npm, "run", "--silent", "build"], timeout=120))
    return SDK


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[dict[str, str]]:
    """One gateway for the module, and a merchant of it: the environment the live tests read."""
    target = tmp_path_factory.mktemp("node-sdk") / "paymux.db"
    shutil.copy(sqlite_template, target)
    settings = make_settings(f"sqlite:///{target}", free_port()).with_changes(**FAST_NOTIFIER)
    app, server = start_gateway(settings)
    with server:
        creds = Running(settings.public_url, settings, app).merchant("node-shop")
        yield {"PAYMUX_URL": settings.public_url, "PAYMUX_MERCHANT_ID": creds.merchant_id,
               "PAYMUX_MERCHANT_SECRET": creds.secret}


@pytest.fixture(scope="module")
def merchant_app(sdk: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A merchant's app that installed the SDK as sdk/node/README.md says: `npm pack`, then
    `npm install` of the tarball (no registry needed: the package has no dependencies)."""
    app = tmp_path_factory.mktemp("merchant-app")
    # --ignore-scripts: the `sdk` fixture has just built dist/ (what `prepack` would do again)
    _check(_run(["npm", "pack", "--silent", "--ignore-scripts", "--pack-destination", str(app)], timeout=120))
    [tarball] = app.glob("paymux-node-*.tgz")
    (app / "package.json").write_text('{"name": "merchant-app", "private": true}\n')
    _check(subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--offline", str(tarball)], cwd=app,
                          capture_output=True, text=True, timeout=120))
    return app


def test_node_unit_tests_pass(sdk: Path) -> None:
    """Signing vectors, event verification, retries against a local server (sdk/node/test/unit)."""
    _check(_run(["node", "--test", "test/unit/"], timeout=120))


def test_the_public_types_compile_for_a_typescript_merchant(sdk: Path) -> None:
    """sdk/node/test/types/merchant.ts: required and defaulted parameters, errors, events, without @types/node."""
    _check(_run(["node", "node_modules/typescript/bin/tsc", "-p", "test/types"], timeout=120))


def test_node_sdk_creates_pays_refunds_and_verifies_events_against_a_live_gateway(
        sdk: Path, live: dict[str, str], merchant_app: Path) -> None:
    """sdk/node/test/live: the SDK's own round trip, and every js block of sdk/node/README.md as
    pasted, in an app that installed the packed SDK."""
    env = {**os.environ, **live, "PAYMUX_EXAMPLES_DIR": str(merchant_app)}
    result = _run(["node", "--test", "test/live/"], timeout=120, env=env)
    _check(result)
    assert re.search(r"^# skipped 0$", result.stdout, re.M), result.stdout[-3000:]   # it ran, it did not skip
    assert re.search(r"^# pass [1-9]", result.stdout, re.M)


def test_committed_types_are_what_the_gateways_openapi_generates(sdk: Path, live: dict[str, str]) -> None:
    """sdk/node/src/generated/api.ts is stale when the API changed: `npm run generate` and commit it."""
    _check(_run(["node", "scripts/generate-types.mjs", "--url", f"{live['PAYMUX_URL']}/openapi.json", "--check"],
                timeout=120))


def test_the_types_check_fails_when_the_api_changes(sdk: Path, tmp_path: Path) -> None:
    """The check above would catch a change: one new field in a response schema makes it fail."""
    changed = json.loads(json.dumps(openapi_document()))
    changed["components"]["schemas"]["Payment"]["properties"]["added_later"] = {"type": "string"}
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(changed))
    result = _run(["node", "scripts/generate-types.mjs", "--file", str(document), "--check"], timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "npm run generate" in result.stderr
