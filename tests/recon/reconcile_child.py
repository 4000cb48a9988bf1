"""One reconciliation in a process of its own, for the memory test (test_statement_memory.py); it
prints the run's counts and its own peak RSS: `python -m tests.recon.reconcile_child DB_URL STATEMENT_DIR BILL DATE`.

The channel is WeChat Pay's bill reader (plugins.wechatpay.statement.tradebill_pieces) with small
pieces and partitions, so a bill of a few hundred thousand lines is many partitions: what a bill of
millions is at the real sizes."""
from __future__ import annotations

import asyncio
import json
import sys
from datetime import date
from pathlib import Path
from typing import Iterator

from gateway.channel import Capability, Channel, ParsedStatement
from gateway.db import Database
from gateway.reconciliation import partitions, store
from plugins import statements
from plugins.wechatpay.statement import tradebill_pieces
from tests.support.reconciler import OneAccount, one_account_reconciler

statements.PIECE = 1 << 20          # 1 MiB pieces
partitions.PART_BYTES = 2 << 20     # a partition per 2 MiB of the bill
partitions.FLUSH_ROWS = 20_000
store.LOAD_BATCH = 20_000


class BillChannel(Channel):
    statement_currency = "CNY"
    capabilities = frozenset({Capability.STATEMENT})

    def __init__(self) -> None:
        pass

    def read_statement_pieces(self, path: Path) -> Iterator[ParsedStatement]:
        return tradebill_pieces(path)


class AccountConfig:
    fee_bps = None      # the test's bill charges one flat fee


def main(db_url: str, statement_dir: str, bill: str, day: str) -> None:
    db = Database(db_url)
    try:
        reconciler = one_account_reconciler(db, statement_dir, OneAccount("wx", BillChannel(), AccountConfig()),
                                            "Asia/Shanghai")
        report = asyncio.run(reconciler.reconcile("wx", date.fromisoformat(day), Path(bill), confirm=False))
    finally:
        db.dispose()
    print(json.dumps({"status": report["status"], "counts": report["counts"], "rows": report["statement_rows"],
                      "message": report.get("message"), "peak": peak_rss()}))


def peak_rss() -> int:
    """This process's peak resident memory in bytes since it started this program (VmHWM: the kernel's
    high-water mark of the address space exec made, so not the parent's pages of before the exec, which
    ru_maxrss would count)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


if __name__ == "__main__":
    main(*sys.argv[1:5])
