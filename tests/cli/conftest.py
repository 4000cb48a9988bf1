"""What the CLI tests share: a config in a directory of their own, `paymux` called in-process (the
standard streams captured), and no PAYMUX_* variable from the machine that runs them."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from gateway.cli import main
from gateway.cli.parser import ENVIRONMENT


def write_config(path: Path, port: int = 8000) -> Path:
    """A config with its own SQLite database next to it, the sandbox reached through `port`, and a
    janitor that asks about an open payment a moment after it is made (so a test sees it ask)."""
    path.write_text(f'public_url = "http://127.0.0.1:{port}"\nsecret_key = "cli-test-key-0123456789abcdef"\n'
                    'notify_allow_private_networks = true\njanitor_poll_seconds = 0.2\n'
                    f'[database]\nurl = "sqlite:///{path.with_suffix(".db")}"\n'
                    '[[channel_accounts]]\nid = "sandbox"\nplugin = "mock"\nquery_schedule_seconds = [0.3, 3600]\n'
                    '[channel_accounts.settings]\nsecret = "cli-sandbox-secret"\n')
    return path


def clean_environment(mp: pytest.MonkeyPatch) -> None:
    for name in ENVIRONMENT:
        mp.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _no_paymux_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_environment(monkeypatch)


class Paymux:
    """`paymux ARGS` in this process: (exit code, stdout, stderr)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:   # argparse's own refusals (usage: exit 2)
            code = exc.code if isinstance(exc.code, int) else 1
        seen = self.capsys.readouterr()
        return code, seen.out, seen.err


@pytest.fixture
def paymux(capsys: pytest.CaptureFixture[str]) -> Paymux:
    return Paymux(capsys)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory of one's own, the working directory for the module, with paymux.toml initialised."""
    where = tmp_path_factory.mktemp("cli")
    with pytest.MonkeyPatch.context() as mp:
        clean_environment(mp)
        mp.chdir(where)
        write_config(where / "paymux.toml")
        assert main(["--config", "paymux.toml", "init"]) == 0
        yield where


def one_line(err: str) -> str:
    """What a refused command said: exactly one line, no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]
