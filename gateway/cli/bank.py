"""The reserve bank account: `paymux bank import` reads its statement and reconciles it."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from gateway.cli import Refused, Usage
from gateway.cli.common import settings_of
from gateway.compose import Backend
from gateway.errors import PaymuxError
from gateway.funds.imports import import_bank_file


def import_file(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise Usage(f"{args.file} is not a file")
    with Backend(settings_of(args)) as backend:
        try:
            report = import_bank_file(backend.db, backend.settings, args.account, path, backend.clock.now(),
                                      fmt=args.format, statement_date=args.date)
        except PaymuxError as exc:
            raise Refused(f"{exc.code}: {exc.message}") from None
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print(f"{report['reserve_account']} {report['statement_date']}: {report['status']} ({report['format']}, "
          f"{report['lines']} lines, statement {report['statement_id']}, run {report['run_id']})")
    for name, n in report["counts"].items():
        print(f"  {name:<24}{n:>6}")
    print(f"  open differences of the run: {report['open']} (paymux recon list --json)")
    return 0
