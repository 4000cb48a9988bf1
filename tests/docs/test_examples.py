"""Every example in README.md and docs/ runs as pasted (issue 18), by the docs convention
(tests/docs/blocks.py): each page against its own gateway, started the way `make run` starts it (a
free port, a fresh working directory with the repository's .venv linked in, no PAYMUX_* variable),
its blocks in order — shell blocks in one bash session, Python blocks in one interpreter."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Iterator

import pytest

from gateway.config import settings_from_mapping
from tests.conftest import free_port
from tests.docs.blocks import Block, blocks, generated, pages
from tests.support import REPO
from tests.support.plugins import wait_until_up

VENV = Path(sys.prefix)
PAYMUX = VENV / "bin" / "paymux"
# What the README's tour prints, line by line (the comments in the tour say the same).
BLOCK_SECONDS = 120
TOUR_OUTPUT = ["processing", "succeeded", "processing", "234", "ledger check: clean"]


class AnyVariable(dict):
    """An environment where every `env:NAME` a config example names is set."""

    def __missing__(self, key: str) -> str:
        return f"example-{key.lower()}"

    def __contains__(self, key: object) -> bool:
        return True

    def get(self, key, default=None):  # noqa: ANN001, ANN201 - dict's own signature
        return None  # no overrides: the example's own values are what is checked


class Page:
    """The world one page's examples run in: a working directory, a gateway on a free port (started on
    the first block that needs one), a bash session's variables and a Python session."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(exist_ok=True)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMUX_")}
        self.server: subprocess.Popen | None = None
        self.python: subprocess.Popen | None = None
        self.state = workdir / ".docs-shell-state"
        (workdir / ".venv").symlink_to(VENV)
        port = free_port()
        (workdir / "conf").mkdir()
        # The embedded default config, on a free port instead of 8000.
        default = (REPO / "conf" / "paymux.toml").read_text()
        (workdir / "conf" / "paymux.toml").write_text(default.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
        self.port = port
        self.baseline = set(subprocess.run(["bash", "-c", "compgen -v"], capture_output=True, text=True,
                                           env=self.env).stdout.split())

    def gateway(self) -> None:
        if self.server is not None:
            return
        subprocess.run([str(PAYMUX), "init"], cwd=self.workdir, env=self.env, check=True, capture_output=True,
                       timeout=60)
        self.server = subprocess.Popen([str(PAYMUX), "serve", "--port", str(self.port)], cwd=self.workdir,
                                       env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until_up(f"http://127.0.0.1:{self.port}/healthz", self.server)

    def shell(self, block: Block) -> str:
        """Run a bash block in the page's session: the variables and directory the blocks before it
        left are restored first, and what it leaves is saved for the next."""
        self.gateway()
        keep = " ".join(sorted(self.baseline))
        script = "\n".join([
            "set -euo pipefail",
            f"if [ -f {self.state} ]; then source {self.state}; fi",
            block.code,
            f"{{ for __v in $(compgen -v); do case \" {keep} __v \" in *\" $__v \"*) ;; "
            "*) declare -p \"$__v\" 2>/dev/null || true;; esac; done; printf 'cd %q\\n' \"$PWD\"; }"
            f" > {self.state}",
        ])
        # Its own process group, so that whatever a block leaves running is ended with it.
        shell = subprocess.Popen(["bash", "-c", script], cwd=self.workdir, env=self.env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            stdout, stderr = shell.communicate(timeout=BLOCK_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(shell.pid, signal.SIGKILL)
            stdout, stderr = shell.communicate()
            raise AssertionError(failure(block, f"did not finish in {BLOCK_SECONDS} s", stdout + stderr)) from None
        finally:
            try:
                os.killpg(shell.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        assert shell.returncode == 0, failure(block, f"exit {shell.returncode}", stdout + stderr)
        return stdout

    def run_python(self, block: Block) -> str:
        self.gateway()
        if self.python is None:
            self.python = subprocess.Popen([sys.executable, "-u", str(Path(__file__).parent / "pysession.py")],
                                           cwd=self.workdir, env=self.env, stdin=subprocess.PIPE,
                                           stdout=subprocess.PIPE, text=True)
        assert self.python.stdin and self.python.stdout
        self.python.stdin.write(json.dumps({"code": block.code, "where": block.where}) + "\n")
        self.python.stdin.flush()
        line = self.python.stdout.readline()
        assert line, failure(block, "the Python session died", "")
        answer = json.loads(line)
        assert answer["ok"], failure(block, "raised", answer["output"] + answer["error"])
        return answer["output"]

    def write(self, block: Block) -> None:
        path = (self.workdir / block.file).resolve()
        assert self.workdir.resolve() in path.parents, failure(block, "writes outside the example directory", "")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block.code)

    def close(self) -> None:
        if self.python is not None:
            self.python.stdin.close()  # type: ignore[union-attr]
            self.python.wait(timeout=20)
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=20)


def printed_claims(code: str) -> list[re.Pattern[str]] | None:
    """What a Python block's comments say it prints: when every `print(…)` line carries a comment,
    each printed line must match its comment up to the first ": " (`…` stands for anything)."""
    prints = [line.strip() for line in code.splitlines() if line.lstrip().startswith("print(")]
    if not prints or not all(re.search(r"\)\s+#\s", line) for line in prints):
        return None
    claims = []
    for line in prints:
        said = line.rsplit("# ", 1)[1].split(": ", 1)[0].strip()
        claims.append(re.compile(".*".join(re.escape(part) for part in said.split("…"))))
    return claims


def failure(block: Block, what: str, output: str) -> str:
    return f"{block.where}: the {block.language or 'untagged'} block {what}\n{textwrap.indent(output[-4000:], '  ')}"


def check_toml(block: Block) -> None:
    """A TOML block that is not written to a file is a piece of a config: it must parse and be accepted
    by the settings (with every `env:` reference set)."""
    try:
        raw = tomllib.loads(block.code)
    except tomllib.TOMLDecodeError as exc:
        raise AssertionError(failure(block, f"is not valid TOML: {exc}", block.code)) from None
    try:
        settings_from_mapping(raw, AnyVariable())
    except Exception as exc:  # noqa: BLE001 - whatever the settings refuse, named with the block
        raise AssertionError(failure(block, f"is refused by the settings: {exc}", block.code)) from None


@pytest.fixture
def page_world(tmp_path: Path) -> Iterator[Page]:
    world = Page(tmp_path)
    try:
        yield world
    finally:
        world.close()


def run_page(path: Path, world: Page, root: Path = REPO) -> None:
    """Every block of one page, in order, in its world; the first that fails names its page and line."""
    tour = path == REPO / "README.md"
    for block in blocks(path, root):
        action = block.action
        if action == "skip":
            continue
        if action == "unknown":
            raise AssertionError(failure(block, f"has language {block.language!r}, which the docs runner cannot "
                                         "run: mark it <!-- not-run: REASON --> or tag it text", ""))
        if action == "write":
            world.write(block)
        elif action == "toml":
            check_toml(block)
        elif action == "python":
            out = world.run_python(block)
            claims = printed_claims(block.code)
            if claims is not None:
                lines = out.splitlines()
                assert len(lines) == len(claims) and all(c.fullmatch(l.strip()) for c, l in zip(claims, lines)), \
                    failure(block, "printed other than its comments say", out)
        else:
            out = world.shell(block)
            if tour and "paymux pay --amount 1234" in block.code:
                # The tour: every comment it makes about what a command prints holds.
                assert out.splitlines() == TOUR_OUTPUT, failure(block, "printed something else", out)
                tour = False
    assert not tour, "README.md lost its tour (the block that pays 1234 and refunds 234)"


needs_paymux = pytest.mark.skipif(not PAYMUX.exists(), reason="needs the paymux console script (make test installs it)")


@needs_paymux
@pytest.mark.parametrize("path", pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_block_of_the_page_runs_as_pasted(path: Path, page_world: Page) -> None:
    reason = generated(path)
    if reason:
        pytest.skip(f"{path.relative_to(REPO)} is generated ({reason}): its generator is tested instead")
    run_page(path, page_world)


@needs_paymux
def test_a_failing_block_is_named_by_its_page_and_line(tmp_path: Path) -> None:
    """Blocks share their page's session (a variable, a file, a Python name), and the first that fails
    stops the page with its page and line — whether the shell, Python or a config refuses."""
    docs = tmp_path / "docs"
    docs.mkdir()
    cases = {
        "shell.md": ("```bash\nA=1\n```\n<!-- file: notes/a.txt -->\n```text\nhello\n```\n"
                     "```bash\ntest \"$A\" = 1 && grep -q hello notes/a.txt\n.venv/bin/paymux get pay_nonexistent\n```\n",
                     "shell.md:8: the bash block exit 1"),
        "python.md": "```python\nx = 41\n```\n\n```python\nassert x == 42, 'x is 41'\n```\n",
        "claims.md": ("```python\nprint(41)   # 42: the answer\n```\n",
                      "claims.md:1: the python block printed other than its comments say"),
        "config.md": ("```toml\n[[channel_accounts]]\nid = \"a\"\nplugin = \"mock\"\n[channel_accounts.circuit]\n"
                      "queries_per_second = 20\n```\n", "config.md:1: the toml block is refused by the settings"),
    }
    expected = {"python.md": "python.md:5: the python block raised"}
    world = Page(tmp_path / "work")
    try:
        for name, case in cases.items():
            text, message = case if isinstance(case, tuple) else (case, expected[name])
            (docs / name).write_text(text)
            with pytest.raises(AssertionError) as failed:
                run_page(docs / name, world, root=docs)
            assert message in str(failed.value), str(failed.value)
    finally:
        world.close()


def test_markers_are_read_as_the_convention_says(tmp_path: Path) -> None:
    text = textwrap.dedent("""\
        <!-- not-run: needs a real channel -->
        ```bash
        false
        ```
        <!-- file: pkg/pyproject.toml -->
        ```toml
        [project]
        ```
        ```text
        shown
        ```
        ```
        bare
        ```
        ```python
        x = 1
        ```
        ```json
        {}
        ```
        """)
    fake = tmp_path / "x.md"
    fake.write_text(text)
    found = blocks(fake, root=tmp_path)
    assert [(b.line, b.action) for b in found] == [(2, "skip"), (6, "write"), (9, "skip"), (12, "skip"),
                                                   (15, "python"), (18, "unknown")]
    assert found[0].not_run == "needs a real channel" and found[1].file == "pkg/pyproject.toml"
    assert found[0].where == "x.md:2"


def test_a_not_run_marker_must_say_why(tmp_path: Path) -> None:
    (tmp_path / "y.md").write_text("<!-- not-run: -->\n```bash\ntrue\n```\n")
    with pytest.raises(AssertionError, match="y.md:2: a not-run marker must say why"):
        blocks(tmp_path / "y.md", root=tmp_path)
