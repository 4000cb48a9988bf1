"""Funds reconciliation: the reserve account's bank files, in each format banks send, against the money the
books moved through it. One difference of every class is injected; a corrected file supersedes; a broken
file is refused with its line and nothing written; a difference two people resolve is booked through
suspense. Each on SQLite and PostgreSQL."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import mt940
import pytest
from sqlalchemy import Connection, func, select

from gateway.compose import Backend
from gateway.config import ChannelAccountConfig, Settings
from gateway.db import Database
from gateway.funds.imports import import_bank_file
from gateway.funds.parsers import BankFileError
from gateway.funds.review import approve_item
from gateway.funds.store import bank_lines, statements
from gateway.positions import top_up
from gateway.reconciliation.errors import ReconError
from gateway.reconciliation.review import propose
from gateway.reports import daily_report, open_items
from ledger.booking import Booker
from ledger.check import check_ledger
from ledger.core import AccountRef
from tests.conftest import SANDBOX_SECRET, SECRET_KEY
from tests.funds.bankfiles import CSV_MAPPINGS, Movement, bank_file

NOV30, DEC1 = date(2026, 11, 30), date(2026, 12, 1)
KINDS = ("mt940", "camt053", "csv_columns", "csv_flag")
CLASSES = {"matched": 1, "late": 1, "amount_differs": 1, "expected_not_received": 1, "received_not_expected": 1}


@dataclass(frozen=True)
class Person:
    id: str
    name: str


def noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 4, tzinfo=UTC)   # 12:00 in Shanghai


def settings_for(db_url: str, tmp_path: Path, kind: str, **more: Any) -> Settings:
    reserve = {"id": "RESERVE", "account_number": "6222 0202 0011 2233",
               "channel_accounts": {"wx": "WXPAY1900000109", "ali": "ALIPAY2088"}}
    if kind.startswith("csv"):
        reserve["csv"] = CSV_MAPPINGS[kind.removeprefix("csv_")]
    accounts = tuple(ChannelAccountConfig(a, "mock", True, {"secret": SANDBOX_SECRET}) for a in ("wx", "ali"))
    return Settings(database_url=db_url, secret_key=SECRET_KEY, channel_accounts=accounts,
                    statement_dir=str(tmp_path / "statements"), extra={"reserve_accounts": [reserve]}, **more)


def book_movements(db: Database, booker: Booker) -> None:
    """What the books say went through the reserve account, booked as settlement and top-ups book it."""

    def settle(conn: Connection, account: str, day: date, amount: int, on: date) -> None:
        booker.book(conn, "settlement.channel", f"settle:channel:{account}:{day}", merchant_id="",
                    channel_account=account, currency="CNY", variables={"amount": amount}, now=noon(on))

    with db.transaction() as conn:
        settle(conn, "wx", date(2026, 11, 29), 100000, NOV30)   # arrives a day late
        settle(conn, "wx", NOV30, 250000, DEC1)                 # on time
        settle(conn, "ali", NOV30, 80000, DEC1)                 # the bank got 79990
        top_up(conn, booker, "ali", 50000, "CNY", "tp0001", noon(DEC1), "position for payouts")   # not sent


def bank_moves(*, corrected: bool = False) -> list[Movement]:
    moves = [Movement(DEC1, 250000, "WXPAY1900000109 SETTLEMENT 20261130", "B001"),
             Movement(DEC1, 100000, "WXPAY1900000109 SETTLEMENT 20261129", "B002"),
             Movement(DEC1, 80000 if corrected else 79990, "ALIPAY2088 结算 20261130", "B003"),
             Movement(DEC1, 1234, "INTEREST Q4", "B004")]
    return moves + [Movement(DEC1, -50000, "POSITION tp0001", "B005")] if corrected else moves


def write(tmp_path: Path, kind: str, moves: list[Movement], name: str = "dec1") -> Path:
    path = tmp_path / f"{name}.{kind}"
    path.write_bytes(bank_file(kind, moves, DEC1))
    return path


def count(backend: Backend, table) -> int:  # noqa: ANN001
    with backend.transaction() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


@pytest.mark.parametrize("kind", KINDS)
def test_each_class_is_found_then_a_corrected_file_supersedes(db_url, tmp_path, kind) -> None:
    with Backend(settings_for(db_url, tmp_path, kind)) as backend:
        book_movements(backend.db, backend.booker)
        path = write(tmp_path, kind, bank_moves())
        if kind == "mt940":   # the file is real MT940: the library reads it back
            read = mt940.models.Transactions()
            read.parse(path.read_text())
            assert [str(t.data["amount"].amount) for t in read] == ["2500.00", "1000.00", "799.90", "12.34"]
        report = import_bank_file(backend.db, backend.settings, "RESERVE", path, noon(DEC1))
        assert report["status"] == "imported" and report["statement_date"] == "2026-12-01"
        assert report["counts"] == CLASSES and report["lines"] == 4
        with backend.transaction() as conn:
            found = {i["class"]: i for i in open_items(conn) if i["class"] in CLASSES}
        assert set(found) == set(CLASSES) - {"matched"}
        assert found["amount_differs"]["difference"] == -10 and found["amount_differs"]["channel_account"] == "ali"
        assert found["late"]["reference"] == "settle:channel:wx:2026-11-29" and found["late"]["difference"] == 0
        assert found["expected_not_received"]["difference"] == 50000      # -(-50000): the top-up never left
        assert found["received_not_expected"]["channel_account"] == "RESERVE"

        again = import_bank_file(backend.db, backend.settings, "RESERVE", path, noon(DEC1))
        assert again["status"] == "already_imported" and again["statement_id"] == report["statement_id"]
        assert count(backend, bank_lines) == 4

        fixed = import_bank_file(backend.db, backend.settings, "RESERVE",
                                 write(tmp_path, kind, bank_moves(corrected=True), "dec1-fixed"), noon(DEC1))
        assert fixed["superseded"] == [report["statement_id"]]
        assert fixed["counts"] == {**CLASSES, "matched": 3, "amount_differs": 0, "expected_not_received": 0}
        with backend.transaction() as conn:
            still = sorted(i["class"] for i in open_items(conn))
            rows = conn.execute(select(statements.c.id, statements.c.status)).all()
        assert still == ["late", "received_not_expected"]
        assert dict(rows) == {report["statement_id"]: "superseded", fixed["statement_id"]: "current"}


def test_a_difference_two_people_resolve_is_booked_through_suspense(db_url, tmp_path) -> None:
    with Backend(settings_for(db_url, tmp_path, "camt053")) as backend:
        book_movements(backend.db, backend.booker)
        import_bank_file(backend.db, backend.settings, "RESERVE", write(tmp_path, "camt053", bank_moves()),
                         noon(DEC1))
        alice, bob = Person("op_a", "alice"), Person("op_b", "bob")
        ledger = backend.ledger
        with backend.transaction() as conn:
            item = next(i for i in open_items(conn) if i["class"] == "received_not_expected")
            reserve_before = ledger.balance(conn, AccountRef("reserve_bank", "", "CNY"))
            proposal = propose(conn, item["id"], "adjust", alice, "interest credited by the bank", noon(DEC1))
        with backend.transaction() as conn, pytest.raises(ReconError) as same:
            approve_item(conn, item["id"], proposal["proposal"]["id"], alice, backend.booker, noon(DEC1))
        assert same.value.code == "same_person"
        with backend.transaction() as conn:
            done = approve_item(conn, item["id"], proposal["proposal"]["id"], bob, backend.booker, noon(DEC1))
            entry = ledger.entry(conn, f"recon-item:{item['id']}:bank.adjust_gain")
            assert done["status"] == "resolved" and entry is not None
            assert ledger.balance(conn, AccountRef("reserve_bank", "", "CNY")) == reserve_before + 1234
            assert ledger.balance(conn, AccountRef("suspense", "", "CNY")) == -1234
            assert ledger.balance(conn, AccountRef("channel_clearing", "wx", "CNY")) == -350000  # untouched
            assert check_ledger(conn) == []
            # The bank as it is, per channel account and day: the interest is still a line nothing expected.
            funds = daily_report(conn, backend.settings, DEC1)["funds"][0]
            assert {c["channel_account"]: (c["expected"], c["received"], c["difference"])
                    for c in funds["channel_accounts"]} == {"ali": (30000, 79990, 49990), "wx": (250000, 250000, 0)}
            assert funds["received_not_expected"] == {"count": 1, "amount": 1234}
            late = daily_report(conn, backend.settings, NOV30)["funds"][0]["channel_accounts"]
            assert [(c["expected"], c["received"], c["classes"]["late"]) for c in late if c["channel_account"] == "wx"] \
                == [(100000, 100000, 1)]
            # Settled by the channel in our books on Dec 2, on no bank statement yet: in transit.
            backend.booker.book(conn, "settlement.channel", "settle:channel:wx:2026-12-01", merchant_id="",
                                channel_account="wx", currency="CNY", variables={"amount": 70000},
                                now=noon(date(2026, 12, 2)))
            transit = daily_report(conn, backend.settings, date(2026, 12, 2))["funds"][0]["channel_accounts"]
            assert {c["channel_account"]: c["in_transit"] for c in transit} == {"ali": 0, "wx": 70000}
        # The next file of the account leaves the resolved line resolved: it is not asked about again.
        dec2 = [Movement(date(2026, 12, 2), 70000, "WXPAY1900000109 SETTLEMENT 20261201", "B006"),
                Movement(date(2026, 12, 2), 10, "FEE REBATE", "B007")]
        path = tmp_path / "dec2.camt053"
        path.write_bytes(bank_file("camt053", dec2, date(2026, 12, 2)))
        report = import_bank_file(backend.db, backend.settings, "RESERVE", path, noon(date(2026, 12, 2)))
        with backend.transaction() as conn:
            unexpected = [i["reference"] for i in open_items(conn) if i["class"] == "received_not_expected"]
            transit = daily_report(conn, backend.settings, date(2026, 12, 2))["funds"][0]["channel_accounts"]
        assert report["statement_date"] == "2026-12-02" and report["counts"] == {**CLASSES, "matched": 2}
        assert unexpected == ["2026-12-02#2"] and {c["in_transit"] for c in transit} == {0}


BROKEN = {
    "mt940": lambda good: good.replace(b":61:261201", b":61:2612X1", 1),
    "camt053": lambda good: good.replace(b"<Amt Ccy=\"CNY\">2500.00</Amt>", b"<Amt Ccy=\"CNY\">25OO.00</Amt>", 1),
    "csv_columns": lambda good: good.replace(b"2500.00", b"2500.001", 1),
    "csv_flag": lambda good: good.replace("贷".encode("gbk"), "X".encode("gbk"), 1),
}


@pytest.mark.parametrize("kind", KINDS)
def test_a_broken_file_is_refused_with_its_line_and_nothing_written(sqlite_url, tmp_path, kind) -> None:
    with Backend(settings_for(sqlite_url, tmp_path, kind)) as backend:
        good = bank_file(kind, bank_moves(), DEC1)
        path = tmp_path / f"broken.{kind}"
        path.write_bytes(BROKEN[kind](good))
        with pytest.raises(BankFileError) as refused:
            import_bank_file(backend.db, backend.settings, "RESERVE", path, noon(DEC1))
        assert refused.value.line is not None and f"line {refused.value.line}:" in refused.value.message
        assert good.split(b"\n")[refused.value.line - 1] != path.read_bytes().split(b"\n")[refused.value.line - 1]
        assert count(backend, statements) == 0 and count(backend, bank_lines) == 0
