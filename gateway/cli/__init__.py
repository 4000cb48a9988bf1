"""The `paymux` command. Commands are grouped as the command line groups them, one module each:

    server      serve, worker, init, db upgrade
    channels    plugins, channels, simulate, statement download
    recon       reconcile, recon confirm | list | resolve | approve
    settlement  settle, report daily
    positions   positions [list] | topup
    books       ledger check | balances | freeze | unfreeze
    events      events [list] | redeliver, exceptions
    merchants   merchant [list] | create
    operators   operator [list] | create | password | disable | enable
    payments    pay, get, close, refund, get-refund (a merchant's calls to a running gateway)

parser.py is the table of them all; common.py what they share (the settings, the composition root in
gateway/compose.py, signing an operator in). What a command ends with is one of the exit codes below,
and anything that stops it is said in one line on standard error, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

from gateway.cli.parser import EXIT_CODES, INTERRUPTED, REFUSED, UNREACHABLE, USAGE, build_parser
from gateway.client import PaymuxAPIError
from gateway.errors import ConfigError

__all__ = ["CREDENTIALS_FILE", "DEMO_MERCHANT", "EXIT_CODES", "Refused", "Unreachable", "Usage", "build_parser",
           "credentials_file", "main"]

DEMO_MERCHANT = "demo"
CREDENTIALS_FILE = Path(".paymux/merchant.json")   # the default config's demo merchant (`paymux init` writes it)



class Refused(Exception):
    """A command not done, with the line that says why (exit status 1)."""


class Usage(Exception):
    """A command that cannot start as it was given, with the line that says what to give (exit status 2)."""


class Unreachable(Exception):
    """The gateway or the database did not answer (exit status 3)."""


def credentials_file(config: str | os.PathLike | None) -> Path:
    """Where `paymux init` keeps the demo merchant of a config, and the client commands read it:
    .paymux/merchant.json for a config named paymux.toml (the default one), .paymux/merchant-STEM.json
    for any other (my.toml: merchant-my.json), so that one config's init never overwrites another's."""
    from gateway.config import find_config_path

    stem = find_config_path(config, os.environ).stem
    return CREDENTIALS_FILE if stem == "paymux" else CREDENTIALS_FILE.with_name(f"merchant-{stem}.json")


def config_identity(config: str | os.PathLike | None) -> str:
    """The config as a credentials file records it: its absolute path."""
    from gateway.config import find_config_path

    return str(find_config_path(config, os.environ).resolve())


def read_credentials(config: str | os.PathLike | None) -> dict[str, Any]:
    """The demo merchant `paymux init` saved for this config ({} when none was)."""
    path = credentials_file(config)
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())
    if saved.get("config") not in (None, config_identity(config)):
        raise Usage(f"{path} holds the demo merchant of {saved['config']}, not of {config_identity(config)}: "
                    f"run `paymux --config {config_identity(config)} init` from another directory, or give "
                    f"--merchant-id and --merchant-secret")
    return saved


def main(argv: list[str] | None = None) -> int:
    from gateway.cli.close_args import day_close_alias

    args = build_parser().parse_args(day_close_alias(sys.argv[1:] if argv is None else argv))
    module, _, name = args.fn.partition(":")
    command: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(f"gateway.cli.{module}"), name)
    try:
        return command(args)
    except (ConfigError, Usage) as exc:
        return _say(exc, USAGE)
    except (PaymuxAPIError, Refused) as exc:
        return _say(exc, REFUSED)
    except Unreachable as exc:
        return _say(exc, UNREACHABLE)
    except KeyboardInterrupt:
        return INTERRUPTED
    except Exception as exc:  # noqa: BLE001  the database unreachable, whichever command asked it
        from sqlalchemy.exc import OperationalError

        if not isinstance(exc, OperationalError):
            raise
        first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        if "no such table" in first or "does not exist" in first:
            return _say(f"the database has no paymux schema ({first}): run `paymux init` or `paymux db upgrade`",
                        USAGE)
        return _say(f"cannot reach the database: {first}", UNREACHABLE)


def _say(what: object, code: int) -> int:
    print(f"paymux: {what}", file=sys.stderr)
    return code
