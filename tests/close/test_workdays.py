"""T+n counts working days: China's National Day week (and its make-up Saturday), a date past what the
calendar knows refused with a message, a calendar given as dates in the configuration."""
from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.errors import ConfigError
from gateway.logs import get_logger
from gateway.reconciliation.settlement import SettlementRefused, Settler
from gateway.service import Gateway
from gateway.workdays import CalendarUnknown, WorkingDays
from ledger.core import AccountRef
from tests.conftest import Running, checkout, start_gateway
from tests.support.operator import Operator, sandbox_settings, sync
from tests.support.unionpay import ShiftedClock

CHINA = WorkingDays.from_settings({"calendar": {"CNY": "china"}}).of("CNY")


def test_china_counts_the_national_day_holiday_and_its_make_up_working_day() -> None:
    assert CHINA.add(date(2025, 9, 30), 1) == date(2025, 10, 9)          # Oct 1-8 off
    assert CHINA.add(date(2025, 9, 27), 1) == date(2025, 9, 28)          # a Sunday worked (调休)
    assert CHINA.add(date(2025, 10, 3), 0) == date(2025, 10, 9)          # T+0 on a holiday: the next working day
    assert CHINA.settling_on(date(2025, 10, 9), 1) == [date(2025, 9, 30) + timedelta(days=i) for i in range(9)]
    assert CHINA.settling_on(date(2025, 10, 4), 1) == []
    with pytest.raises(CalendarUnknown, match="does not know 2099-01-0"):
        CHINA.add(date(2098, 12, 31), 1)


def test_a_calendar_from_the_configuration_and_bad_ones(tmp_path) -> None:
    (tmp_path / "sg.toml").write_text('first = "2026-01-01"\nlast = "2026-12-31"\nholidays = ["2026-08-10"]\n')
    days = WorkingDays.from_settings({"calendar": {"SGD": {"file": str(tmp_path / "sg.toml")}}})
    assert days.of("SGD").add(date(2026, 8, 7), 1) == date(2026, 8, 11)   # Friday, then weekend and a holiday
    assert days.of("USD").add(date(2026, 8, 7), 1) == date(2026, 8, 8)    # no calendar: every day counts
    with pytest.raises(CalendarUnknown):
        days.of("SGD").add(date(2026, 12, 31), 1)
    us = WorkingDays.from_settings({"calendar": {"USD": "US", "years": [2026, 2026]}}).of("USD")
    assert us.add(date(2026, 7, 2), 1) == date(2026, 7, 6)                  # July 4th observed on Friday the 3rd
    with pytest.raises(ConfigError, match="calendar.EUR: 'XX'"):
        WorkingDays.from_settings({"calendar": {"EUR": "XX"}})
    with pytest.raises(ConfigError, match="calendar.EUR"):
        WorkingDays.from_settings({"calendar": {"EUR": 7}})
    with pytest.raises(ConfigError, match="calendar.SGD.file cannot be read"):
        WorkingDays.from_settings({"calendar": {"SGD": {"file": str(tmp_path / "none.toml")}}})
    with pytest.raises(ConfigError, match="first and last"):
        WorkingDays.from_settings({"calendar": {"SGD": {"holidays": ["x"]}}})


def test_a_t1_payment_before_national_day_is_available_on_the_first_working_day_after(db_url, tmp_path) -> None:
    clock = ShiftedClock()
    clock.offset = datetime(2025, 9, 30, 2, 0, tzinfo=UTC) - datetime.now(UTC)   # 10:00 in Beijing
    settings = sandbox_settings(db_url, auth_window_seconds=10**9, statement_dir=str(tmp_path)).with_changes(
        extra={"calendar": {"CNY": "china"}})
    app, server = start_gateway(settings, clock=clock)
    with server:
        gw = Running(settings.public_url, settings, app)
        creds = gw.merchant()
        client = gw.client(creds)
        payment = client.create_payment(merchant_order_no="before-holiday", amount=10000)
        checkout(payment)
        sync(client, payment)

        async def close_and_settle() -> dict[date, int]:
            gateway = Gateway.build(settings, get_logger(), clock)
            try:
                assert (await gateway.reconciler.reconcile("sandbox", date(2025, 9, 30)))["status"] == "completed"
                settler = Settler(settings, gateway.host.channel_types, gateway.booker)
                available = {}
                for i in range(1, 10):
                    day = date(2025, 9, 30) + timedelta(days=i)
                    with gateway.db.transaction() as conn:
                        settler.settle(conn, day, clock.now())
                        available[day] = gateway.ledger.balance(conn, AccountRef("merchant_available",
                                                                                 creds.merchant_id, "CNY"))
                with gateway.db.transaction() as conn, pytest.raises(SettlementRefused, match="does not know"):
                    settler.settle(conn, date(2099, 1, 4), clock.now())
                return available
            finally:
                await gateway.aclose()

        available = asyncio.run(close_and_settle())
    assert [available[date(2025, 10, d)] for d in range(1, 9)] == [0] * 8        # not the next calendar day
    assert available[date(2025, 10, 9)] > 0


def test_paymux_calendar_shows_what_settles_on_each_day_and_a_t0_merchants_advance_over_the_holiday(
        sqlite_url, tmp_path) -> None:
    settings = sandbox_settings(sqlite_url)
    op = Operator(settings, tmp_path, extra='[calendar]\nCNY = "china"\n[settlement.merchants]\nfast = 0')
    days = {d["date"]: d for d in json.loads(op.run("calendar", "--from", "2025-09-30", "--days", "10",
                                                    "--json").stdout)["days"]}
    assert not days["2025-10-01"]["working"] and days["2025-10-01"]["settles"] == {}
    assert days["2025-10-09"]["settles"]["channel sandbox"] == "2025-09-30..2025-10-08 (9 days)"
    assert days["2025-09-30"]["advances"] == {"fast via sandbox": {"repaid_on": "2025-10-09", "calendar_days": 9}}
    text = op.run("calendar", "--from", "2025-09-30", "--days", "1").stdout
    assert "fast via sandbox's payments of the day, paid today, repaid by the channel on 2025-10-09 (9 days" in text
    refused = op.run("calendar", "--from", "2099-01-01", "--days", "1", ok=False)
    assert refused.returncode == 2 and "does not know 2099-01-01" in refused.stderr


def test_a_year_chinesecalendar_does_not_know_yet_is_refused_then_added_by_a_calendar_file(tmp_path) -> None:
    last = CHINA.last
    assert last is not None
    after = last + timedelta(days=1)
    with pytest.raises(CalendarUnknown) as refused:
        CHINA.add(last, 1)
    assert 'CNY = {extends = "china", file = "calendar.toml"}' in str(refused.value)
    # The year after, as the State Council announced it, in a calendar file (one holiday, one make-up day).
    monday = after + timedelta(days=(7 - after.weekday()) % 7 or 7)
    holiday, worked = monday, monday - timedelta(days=2)              # a Monday off, the Saturday before worked
    (tmp_path / "cn.toml").write_text(f'first = "{after}"\nlast = "{after.replace(month=12, day=31)}"\n'
                                      f'holidays = ["{holiday}"]\nworkdays = ["{worked}"]\n')
    extended = WorkingDays.from_settings({"calendar": {"CNY": {"extends": "china",
                                                               "file": str(tmp_path / "cn.toml")}}}).of("CNY")
    assert extended.add(date(2025, 9, 30), 1) == date(2025, 10, 9)          # china's own years unchanged
    assert not extended.is_working(holiday) and extended.is_working(worked)
    assert extended.add(worked - timedelta(days=1), 1) == worked and extended.add(worked, 1) == monday + timedelta(1)
    with pytest.raises(CalendarUnknown):
        extended.add(after.replace(month=12, day=31), 1)
    with pytest.raises(ConfigError, match="a gap"):
        WorkingDays.from_settings({"calendar": {"CNY": {"extends": "china", "first": str(after + timedelta(days=3)),
                                                        "last": str(after + timedelta(days=30))}}})
