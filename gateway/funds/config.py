"""The reserve accounts ([[reserve_accounts]] in the configuration): which channel accounts settle
into each, how far a bank date may be from the expected one, and how its banks' CSV exports read."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from gateway.config import Settings
from gateway.errors import ConfigError


@dataclass(frozen=True)
class CsvMapping:
    """Which column is what in a bank's CSV export (by header name). Amounts are in yuan: either
    `debit` and `credit` columns, or one `amount` column with a `direction` column (借 / 贷)."""

    date: str
    reference: str
    encoding: str = "utf-8"
    date_format: str = "%Y-%m-%d"
    skip_rows: int = 0                # preface lines before the header (account, period…)
    debit: str | None = None
    credit: str | None = None
    amount: str | None = None
    direction: str | None = None
    debit_marks: tuple[str, ...] = ("借", "D", "DR")
    credit_marks: tuple[str, ...] = ("贷", "C", "CR")
    details: str | None = None
    bank_reference: str | None = None

    @classmethod
    def parse(cls, raw: Any, where: str) -> "CsvMapping":
        if not isinstance(raw, Mapping) or set(raw) - set(cls.__dataclass_fields__):
            raise ConfigError(f"{where} may hold only {', '.join(cls.__dataclass_fields__)}")
        for key in ("date", "reference"):
            if not isinstance(raw.get(key), str):
                raise ConfigError(f"{where}.{key} must name a column")
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in raw.items()}
        mapping = cls(**values)
        if not ((mapping.debit and mapping.credit and not mapping.amount)
                or (mapping.amount and mapping.direction and not mapping.debit)):
            raise ConfigError(f"{where} needs debit and credit columns, or amount and direction")
        try:
            "".encode(mapping.encoding)
        except LookupError:
            raise ConfigError(f"{where}.encoding {mapping.encoding!r} is no known encoding") from None
        return mapping


@dataclass(frozen=True)
class ReserveAccount:
    id: str
    currency: str = "CNY"
    account_number: str | None = None   # if set, a file for another account is refused
    # channel account -> the text its transfers carry on the bank line (its merchant number, say)
    channel_accounts: Mapping[str, str] = field(default_factory=dict)
    match_days: int = 0                  # a bank date this many days from the expected one is on time
    late_days: int = 5                   # ... up to this many, late; beyond, not the same movement
    csv: CsvMapping | None = None
    # channel accounts whose position is this bank account (bank-direct payouts, 银企直连): each payout
    # leaves through it on its own line, carrying the out_payout_no, and a returned one comes back
    payout_accounts: tuple[str, ...] = ()
    # where the daily close finds the bank file of day D: the files of `inbox` whose names match
    # `inbox_files` with D's date put in (strftime), e.g. "*%Y%m%d*"
    inbox: str | None = None
    inbox_files: str = "*%Y%m%d*"

    def token(self, channel_account: str) -> str:
        return self.channel_accounts.get(channel_account, channel_account)


def reserve_accounts(settings: Settings) -> dict[str, ReserveAccount]:
    raw = settings.extra.get("reserve_accounts", []) or []
    if not isinstance(raw, list):
        raise ConfigError("reserve_accounts must be a list of tables ([[reserve_accounts]])")
    found: dict[str, ReserveAccount] = {}
    known = {a.id for a in settings.channel_accounts}
    for i, item in enumerate(raw):
        where = f"reserve_accounts[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str) or not item["id"]:
            raise ConfigError(f"{where}.id must be a name")
        unknown = set(item) - set(ReserveAccount.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"{where} has unknown keys: {', '.join(sorted(unknown))}")
        if item["id"] in known or item["id"] in found:
            raise ConfigError(f"{where}.id {item['id']!r} is already a channel or reserve account's name")
        if not (isinstance(item.get("currency", "CNY"), str) and len(item.get("currency", "CNY")) == 3):
            raise ConfigError(f"{where}.currency must be an ISO 4217 code")
        channels = dict(item.get("channel_accounts") or {})
        strange = [a for a in channels if a not in known]
        if strange or not all(isinstance(v, str) and v for v in channels.values()):
            raise ConfigError(f"{where}.channel_accounts maps configured channel accounts to the text of their "
                              f"transfers{'; unknown: ' + ', '.join(strange) if strange else ''}")
        days = {k: item.get(k, ReserveAccount.__dataclass_fields__[k].default) for k in ("match_days", "late_days")}
        if not all(isinstance(v, int) and v >= 0 for v in days.values()) or days["late_days"] < days["match_days"]:
            raise ConfigError(f"{where}: match_days and late_days are whole days, late_days at least match_days")
        csv = CsvMapping.parse(item["csv"], f"{where}.csv") if "csv" in item else None
        payout_accounts = item.get("payout_accounts", [])
        if not (isinstance(payout_accounts, list) and all(a in known for a in payout_accounts)):
            raise ConfigError(f"{where}.payout_accounts lists configured channel accounts whose payouts leave "
                              f"through this bank account")
        inbox = {k: item.get(k, ReserveAccount.__dataclass_fields__[k].default) for k in ("inbox", "inbox_files")}
        if not (inbox["inbox"] is None or isinstance(inbox["inbox"], str) and inbox["inbox"]) \
                or not (isinstance(inbox["inbox_files"], str) and "%" in inbox["inbox_files"]):
            raise ConfigError(f"{where}: inbox is a directory, inbox_files a file name pattern with the day's date "
                              f"in it (strftime, e.g. \"*%Y%m%d*\")")
        found[item["id"]] = ReserveAccount(id=item["id"], currency=item.get("currency", "CNY"),
                                           account_number=item.get("account_number"), channel_accounts=channels,
                                           csv=csv, payout_accounts=tuple(payout_accounts), **days, **inbox)
    return found
