"""The `paymux` command. Commands are grouped as the command line groups them, one module each:

    server      serve, worker, init, db upgrade
    channels    plugins, channels, simulate, statement download
    recon       reconcile, recon confirm | list | resolve | approve
    settlement  settle, report daily
    positions   positions list | topup
    books       ledger check | balances | freeze | unfreeze
    events      events redeliver, exceptions
    merchants   merchant create
    operators   operator create | password | list | disable | enable
    payments    pay, get, close, refund, get-refund (a merchant's calls to a running gateway)

parser.py is the table of them all; common.py what they share (the settings, the composition root in
gateway/compose.py, signing an operator in).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Callable

from gateway.cli.parser import build_parser
from gateway.client import PaymuxAPIError
from gateway.errors import ConfigError

__all__ = ["CREDENTIALS_FILE", "DEMO_MERCHANT", "Refused", "build_parser", "main"]

DEMO_MERCHANT = "demo"
CREDENTIALS_FILE = Path(".paymux/merchant.json")   # `paymux init` writes it, the merchant calls read it


class Refused(Exception):
    """A command not done, with the line that says why (exit status 1)."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module, _, name = args.fn.partition(":")
    command: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(f"gateway.cli.{module}"), name)
    try:
        return command(args)
    except ConfigError as exc:
        print(f"paymux: {exc}", file=sys.stderr)
        return 2
    except (PaymuxAPIError, Refused) as exc:
        print(f"paymux: {exc}", file=sys.stderr)
        return 1
