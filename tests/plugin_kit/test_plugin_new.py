"""`paymux plugin new` writes a package that is installed by pip, passes the conformance kit as written
(pytest in a subprocess, the kit loaded through its pytest11 entry point, its report printed), and takes
a payment through a running gateway (`paymux serve` with an account of the new plugin, its simulator
paying it). One package is generated and installed for the whole module."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from gateway.cli import main
from gateway.client import Client
from gateway.testing.server import wait_for
from tests.conftest import free_port
from tests.support.plugins import PAYMUX, env_with, wait_until_up

NAME = "kiosk"
REPORT = "paymux conformance kit: not asked / not covered"

# A harness that cannot drop callbacks, beside the generated one: the lost-callback check the plugin's
# notify and query call for is then "not covered", by name.
NO_DROP = '''
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_kit import KioskHarness  # noqa: E402

from gateway.testing.conformance import ChannelConformance  # noqa: E402


class NoDropHarness(KioskHarness):
    def drop_callbacks(self, drop: bool) -> bool:
        return False


class TestNoDropConformance(ChannelConformance):
    harness = NoDropHarness
'''


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The generated package and the site folder pip installed it into (its dist-info registers the entry point)."""
    where = tmp_path_factory.mktemp("authors")
    assert main(["plugin", "new", NAME, "--dir", str(where)]) == 0
    root = where / NAME
    (root / "extra").mkdir()
    (root / "extra" / "test_no_drop.py").write_text(NO_DROP)
    site = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(root)], check=True, cwd=where, capture_output=True,
                   env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert list(site.glob(f"paymux_{NAME}-*.dist-info"))
    return root, site


def kit(package: tuple[Path, Path], *args: str) -> subprocess.CompletedProcess:
    root, site = package
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          capture_output=True, text=True, cwd=root, env=env_with(site), timeout=300)


def test_the_generated_package_has_each_part(package: tuple[Path, Path]) -> None:
    root, _ = package
    for part in ("pyproject.toml", "README.md", f"{NAME}/__init__.py", f"{NAME}/channel.py", f"{NAME}/wire.py",
                 f"{NAME}/simulator.py", f"{NAME}/statement.py", "tests/test_kit.py"):
        assert (root / part).is_file(), part
    assert f'{NAME} = "{NAME}"' in (root / "pyproject.toml").read_text()
    assert "{{" not in "".join(p.read_text() for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".toml"))


def test_the_generated_plugin_passes_the_kit_and_a_harness_without_drop_is_named(
        package: tuple[Path, Path]) -> None:
    result = kit(package, "tests", "extra", "-k", "Kiosk or (NoDrop and callback_is_lost)")
    out = result.stdout
    assert result.returncode == 0, out[-4000:]
    assert "failed" not in out.split(REPORT)[0]
    report = out.split(REPORT)[1]
    # What the plugin does not declare is not asked, and said so.
    assert "TestKioskConformance: test_a_payout_is_paid_once_however_often_it_is_sent: the plugin does not " \
           "declare payout" in report
    # Everything else the generated harness drives; the one lacking drop_callbacks is named.
    covered_not = report.split("not covered")[1]
    assert "TestKioskConformance" not in covered_not
    assert "TestNoDropConformance: test_a_payment_whose_callback_is_lost_is_found_by_query" in covered_not
    assert "drop_callbacks()" in covered_not
    assert "--kit-strict fails these" in covered_not


def test_kit_strict_fails_what_the_harness_cannot_cover(package: tuple[Path, Path]) -> None:
    result = kit(package, "extra", "--kit-strict", "-k", "callback_is_lost")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "1 failed" in result.stdout
    assert "--kit-strict: [kit] not covered: test_a_payment_whose_callback_is_lost_is_found_by_query" in result.stdout
    assert "failed under --kit-strict" in result.stdout.split(REPORT)[1]


def test_the_generated_plugin_takes_a_payment_through_a_running_gateway(package: tuple[Path, Path],
                                                                        tmp_path: Path) -> None:
    root, site = package
    port, sim_port = free_port(), free_port()
    secret = "serve-kiosk-secret"
    config = tmp_path / "paymux.toml"
    config.write_text(textwrap.dedent(f"""
        public_url = "http://127.0.0.1:{port}"
        secret_key = "plugin-kit-test-key-0123456789abcdef"
        [database]
        url = "sqlite:///{tmp_path / 'paymux.db'}"
        [[channel_accounts]]
        id = "kiosk-desk"
        plugin = "{NAME}"
        [channel_accounts.settings]
        secret = "{secret}"
        base_url = "http://127.0.0.1:{sim_port}"
    """))
    env = env_with(site)
    run = lambda *args: subprocess.run(PAYMUX + ["--config", str(config), *args], capture_output=True,  # noqa: E731
                                       text=True, env=env, cwd=tmp_path, check=True, timeout=60)
    run("db", "upgrade")
    creds = json.loads(run("merchant", "create", "kiosk-shop", "--json").stdout)
    simulator = subprocess.Popen([sys.executable, "-m", f"{NAME}.simulator", "--port", str(sim_port),
                                  "--secret", secret], env=env, cwd=tmp_path,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = subprocess.Popen(PAYMUX + ["--config", str(config), "serve", "--port", str(port)], env=env,
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", server)
        wait_for(lambda: simulator.poll() is None and _listening(sim_port))
        client = Client(f"http://127.0.0.1:{port}", creds["merchant_id"], creds["secret"])
        payment = client.create_payment(merchant_order_no="k-1", amount=880, subject="Noodles")
        assert (payment["channel"], payment["status"]) == ("kiosk-desk", "processing")
        assert payment["action"] == {"type": "qr", "code": f"{NAME}://pay/{payment['out_trade_no']}"}
        paid = httpx.post(f"http://127.0.0.1:{sim_port}/sim/orders/{payment['out_trade_no']}/pay", timeout=30)
        assert paid.status_code == 200, paid.text
        assert wait_for(lambda: client.get_payment(payment["id"])["status"] == "succeeded")
        refund = client.create_refund(payment["id"], merchant_refund_no="kr-1", amount=80)
        assert wait_for(lambda: client.get_refund(refund["id"])["status"] == "succeeded")
        client.close()
    finally:
        for process in (server, simulator):
            process.terminate()
            process.wait(timeout=20)


def _listening(port: int) -> bool:
    try:
        return httpx.post(f"http://127.0.0.1:{port}/sim/faults", json={"drop_callbacks": False}).status_code == 200
    except httpx.HTTPError:
        return False


def test_plugin_new_refuses_an_existing_directory_and_a_bad_name(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "taken").mkdir()
    assert main(["plugin", "new", "taken", "--dir", str(tmp_path)]) == 2
    assert main(["plugin", "new", "Not-A-Name", "--dir", str(tmp_path)]) == 2
    assert main(["plugin", "new", "json", "--dir", str(tmp_path)]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 3 and all(line.startswith("paymux: error: ") for line in errors), errors
    assert "already exists" in errors[0] and "not a plugin name" in errors[1] and "taken by Python" in errors[2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"] and not any((tmp_path / "taken").iterdir())
