"""Reconciliation's memory does not grow with the statement file (issue 17), proved by what is read
rather than timed: the plugin is handed the kept file, never its bytes, and WeChat Pay's parser reads
it in pieces of bounded size, never the whole file at once, into polars or into Python."""
from __future__ import annotations

import asyncio
import hashlib
import io
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import structlog

from gateway.channel import Capability, Channel, ParsedStatement
from gateway.clock import Clock
from gateway.config import Settings
from gateway.db import Database
from gateway.reconciliation.run import Reconciler
from ledger.booking import Booker
from ledger.chart import load_chart
from ledger.core import Ledger
from ledger.days import BusinessDay
from plugins import statements
from plugins.statements import SCHEMA
from plugins.wechatpay.simulator import BILL_HEADER
from plugins.wechatpay.statement import parse_tradebill

PIECE = 64 * 1024


def tradebill(rows: int) -> bytes:
    """A WeChat Pay bill of `rows` payments (a comma inside each description, as real ones have)."""
    out = io.StringIO()
    out.write(",".join(BILL_HEADER) + "\r\n")
    for i in range(rows):
        fen = 100 + i
        out.write(f"`2026-11-20 12:00:00,`wx8888888888888888,`1900000109,`0,`,`42{i:026d},`T{i:027d},`oUpF8u,"
                  f"`NATIVE,`SUCCESS,`OTHERS,`CNY,`{fen // 100}.{fen % 100:02d},`0.00,`0,`0,`0.00,`0.00,`,`,"
                  f"`咖啡, 大杯,`,`0.00600,`0.60%,`{fen // 100}.{fen % 100:02d},`0.00,`\r\n")
    paid = sum(100 + i for i in range(rows))
    out.write("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n")
    out.write(f"`{rows},`{paid // 100}.{paid % 100:02d},`0.00,`0.00,`0.00000,`{paid // 100}.{paid % 100:02d},`0.00\r\n")
    return out.getvalue().encode("utf-8")


class CountedReads:
    """A file whose reads are recorded (sizes), standing in for the one the parser opens."""

    def __init__(self, stream: Any, sizes: list[int]) -> None:
        self.stream, self.sizes = stream, sizes

    def read(self, n: int = -1) -> bytes:
        data = self.stream.read(n)
        self.sizes.append(len(data))
        return data

    def readline(self) -> bytes:
        data = self.stream.readline()
        self.sizes.append(len(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def __enter__(self) -> CountedReads:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.close()


def test_a_wechat_pay_bill_is_read_in_pieces_never_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bill of 6,000 lines (about 1.4 MiB) read with 64 KiB pieces: no read of the file and nothing
    polars is given is more than a piece (and a line), the file is read about once, and every line is
    there with its number."""
    bill = tmp_path / "tradebill.csv"
    bill.write_bytes(tradebill(6000))
    size = bill.stat().st_size
    assert size > 20 * PIECE
    reads: list[int] = []
    given: list[int] = []
    real_open, real_read_csv = open, pl.read_csv
    monkeypatch.setattr(statements, "PIECE", PIECE)
    monkeypatch.setattr(statements, "open", lambda *a, **k: CountedReads(real_open(*a, **k), reads), raising=False)
    monkeypatch.setattr(pl, "read_csv", lambda source, **k: (given.append(len(source)), real_read_csv(source, **k))[1])

    lines = parse_tradebill(bill).lines

    assert lines.height == 6000 and lines["line_no"].to_list() == list(range(2, 6002))
    assert lines["out_trade_no"][5999] == f"T{5999:027d}" and lines["amount"][5999] == 6099
    assert max(reads) <= PIECE and max(given) <= PIECE
    assert size <= sum(reads) <= size + 4 * PIECE      # the ends read apart, the rows once
    assert len(given) >= size // PIECE                  # polars was handed the rows a piece at a time


class FileOnlyChannel(Channel):
    """A plugin that reads statements from their file and would fail if handed their bytes; it reads
    them whole (read_statement), so reconciliation reads it through the base class's default pieces."""

    statement_currency = "CNY"
    capabilities = frozenset({Capability.STATEMENT})

    def __init__(self) -> None:
        self.read: list[tuple[Path, bytes]] = []

    def read_statement(self, path: Path) -> ParsedStatement:
        self.read.append((path, path.read_bytes()))
        return ParsedStatement(pl.DataFrame(schema=SCHEMA), None)

    def parse_statement(self, content: bytes) -> ParsedStatement:
        raise AssertionError("reconciliation handed the plugin the statement's bytes")


class AccountConfig:
    fee_bps = 60


class OneAccount:
    id = "wx"
    config = AccountConfig()

    def __init__(self) -> None:
        self.channel = FileOnlyChannel()

    def account(self, account_id: str) -> OneAccount:
        return self

    def require(self, account: OneAccount, capability: Capability) -> None:
        assert capability == Capability.STATEMENT


class NoRate:
    async def wait(self, account: str) -> None:
        return None


def test_reconcile_hands_the_plugin_the_kept_file_not_its_bytes(db_url: str, tmp_path: Path) -> None:
    """The operator's file is hashed as it is kept, and the plugin reads the kept file itself."""
    content = tradebill(10)
    given = tmp_path / "given.csv"
    given.write_bytes(content)
    given.chmod(0o600)
    db = Database(db_url)
    host = OneAccount()
    try:
        reconciler = Reconciler(
            settings=Settings(database_url=db_url, statement_dir=str(tmp_path / "statements")), db=db, host=host,
            business_day=BusinessDay.of("Asia/Shanghai", 0), booker=Booker(Ledger(load_chart())), rate=NoRate(),
            payments=None, refunds=None, payouts=None, clock=Clock(), log=structlog.get_logger())
        report = asyncio.run(reconciler.reconcile("wx", date(2026, 11, 20), given))
    finally:
        db.dispose()
    assert report["status"] == "completed", report
    assert report["sha256"] == hashlib.sha256(content).hexdigest()
    [(path, seen)] = host.channel.read
    assert seen == content and path.parent.parent.parent == tmp_path / "statements" and path != given
