"""A reserve account's configuration is checked when read, and `paymux bank import` refuses what it
cannot take with a code and the REFUSED exit status, writing nothing."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from gateway.cli import REFUSED, main
from gateway.config import ChannelAccountConfig, Settings
from gateway.errors import ConfigError
from gateway.funds.config import ReserveAccount, reserve_accounts
from gateway.funds.parsers import BankFileError, minor_units, parse_camt053, parse_mt940
from gateway.funds.store import EVENT_KINDS, check_statement
from ledger.chart import load_chart
from tests.funds.bankfiles import Movement, camt053, mt940


def settings(*reserves: dict) -> Settings:
    return Settings(channel_accounts=(ChannelAccountConfig("wx", "mock", True, {}),),
                    extra={"reserve_accounts": list(reserves)})


@pytest.mark.parametrize("reserve, says", [
    ({"id": "wx"}, "already a channel"),
    ({"id": "R", "channel_accounts": {"nope": "X"}}, "unknown: nope"),
    ({"id": "R", "late_days": 1, "match_days": 2}, "late_days at least match_days"),
    ({"id": "R", "csv": {"date": "d", "reference": "r", "debit": "借"}}, "debit and credit columns"),
    ({"id": "R", "csv": {"date": "d", "reference": "r", "amount": "a", "direction": "f", "encoding": "nope"}},
     "no known encoding"),
    ({"id": "R", "colour": "blue"}, "unknown keys: colour"),
    ({"id": "R", "payout_accounts": ["nope"]}, "payout_accounts lists configured channel accounts"),
    ({"id": "R", "inbox": "in", "inbox_files": "bank.csv"}, "the day's date in it"),
])
def test_a_wrong_reserve_account_is_refused_when_read(reserve: dict, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        reserve_accounts(settings(reserve))


def test_the_close_of_a_reserve_account_needs_the_reserve_account() -> None:
    from gateway.close.schedule import CloseSchedule

    close = {"reserves": {"R": {"publish_at": "10:00", "deadline": "15:00"}}}
    with pytest.raises(ConfigError, match="close.reserves.R: no reserve account 'R'"):
        CloseSchedule.from_settings({"close": close}, {"wx"})
    schedule = CloseSchedule.from_settings({"close": close, "reserve_accounts": [{"id": "R"}]}, {"wx"})
    assert [(a.account, a.kind) for a in schedule.accounts] == [("R", "reserve")]


def test_amounts_are_exact_minor_units_or_refused() -> None:
    assert minor_units("1,234.56", "CNY", 1) == 123456 and minor_units("7", "JPY", 1) == 7
    for wrong in ("799.905", "12,3a", "NaN"):
        with pytest.raises(BankFileError):
            minor_units(wrong, "CNY", 1)


def test_the_command_refuses_an_unknown_reserve_account_with_its_code(tmp_path: Path, capsys) -> None:
    config = tmp_path / "paymux.toml"
    config.write_text(f'database_url = "sqlite:///{tmp_path}/paymux.db"\n[[reserve_accounts]]\nid = "RESERVE"\n')
    (tmp_path / "f.sta").write_text(":20:X\n")
    assert main(["--config", str(config), "bank", "import", "--account", "OTHER", "--file",
                 str(tmp_path / "f.sta")]) == REFUSED
    assert "unknown_reserve_account" in capsys.readouterr().err
    assert not (tmp_path / "paymux.db").exists()


def test_a_file_of_another_account_or_currency_is_refused() -> None:
    moves = [Movement(date(2026, 12, 1), 500, "X", "B1")]
    mine = ReserveAccount("R", account_number="6222-0202-0011-2233")
    check_statement(mine, parse_mt940(mt940(moves, date(2026, 12, 1))))          # its own: taken
    with pytest.raises(BankFileError) as other:
        check_statement(ReserveAccount("R", account_number="9999"), parse_mt940(mt940(moves, date(2026, 12, 1))))
    assert other.value.code == "wrong_account"
    with pytest.raises(BankFileError) as dollars:
        check_statement(ReserveAccount("R", currency="USD"), parse_camt053(camt053(moves, date(2026, 12, 1))))
    assert dollars.value.code == "wrong_currency"


def test_every_event_the_books_move_the_reserve_bank_with_is_an_expected_movement() -> None:
    """A new way money leaves through the bank (a payout, a merchant's withdrawal) must say what its
    bank line is (funds.store.EVENT_KINDS), or funds reconciliation would call its line unexpected."""
    chart = load_chart()
    moving = {name for name, t in chart.templates.items() if any(line.account == "reserve_bank" for line in t.lines)}
    assert moving - {"bank.adjust_gain", "bank.adjust_loss"} == set(EVENT_KINDS)
