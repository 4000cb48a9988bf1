"""The README's tour, run verbatim against a gateway started the way `make run` starts it."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.support import REPO
from tests.support.plugins import wait_until_up

VENV = Path(sys.prefix)


def tour_script() -> str:
    readme = (REPO / "README.md").read_text()
    block = re.search(r"<!-- tour:start -->\s*```bash\n(.*?)```\s*<!-- tour:end -->", readme, re.S)
    assert block, "the README lost its tour markers"
    return block.group(1)


@pytest.mark.skipif(not (VENV / "bin" / "paymux").exists(), reason="needs the paymux console script (make test installs it)")
def test_the_readme_tour_works_verbatim(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / ".venv").symlink_to(VENV)
    (tmp_path / "conf").mkdir()
    # The embedded default config, on a free port instead of 8000.
    default = (REPO / "conf" / "paymux.toml").read_text()
    (tmp_path / "conf" / "paymux.toml").write_text(default.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMUX_")}
    # No PAYMUX_* variable: a newcomer's second terminal has none, and the tour must work there.
    paymux = str(tmp_path / ".venv" / "bin" / "paymux")
    subprocess.run([paymux, "init"], cwd=tmp_path, env=env, check=True, capture_output=True, timeout=60)
    server = subprocess.Popen([paymux, "serve", "--port", str(port)], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", server)
        script = "set -euo pipefail\n" + tour_script()
        out = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines() == ["processing", "succeeded", "processing", "234", "ledger check: clean"], \
            textwrap.shorten(out.stdout, 300)
    finally:
        server.terminate()
        server.wait(timeout=20)
