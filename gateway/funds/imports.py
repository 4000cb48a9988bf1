"""`paymux bank import`: a reserve account's bank file read, checked and reconciled, or refused whole."""
from __future__ import annotations

import hashlib
from datetime import date, datetime
from pathlib import Path
from typing import Any

from gateway.config import Settings
from gateway.db import Database
from gateway.errors import PaymuxError
from gateway.funds.config import reserve_accounts
from gateway.funds.parsers import FORMATS, BankFileError, detect, parse
from gateway.funds.store import already_imported, check_statement, import_statement


class FundsError(PaymuxError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(400, "invalid_request_error", code, message)


def import_bank_file(db: Database, settings: Settings, reserve_id: str, path: Path, now: datetime, *,
                     fmt: str | None = None, statement_date: date | None = None) -> dict[str, Any]:
    """Parse the whole file before anything is written; then one transaction (store.import_statement)."""
    reserve = reserve_accounts(settings).get(reserve_id)
    if reserve is None:
        raise FundsError("unknown_reserve_account", f"no reserve account {reserve_id!r} in [[reserve_accounts]]")
    if fmt is not None and fmt not in FORMATS:
        raise FundsError("unknown_format", f"format must be one of {', '.join(FORMATS)}")
    content = path.read_bytes()
    sha = hashlib.sha256(content).hexdigest()
    found = db.run_tx(lambda conn: already_imported(conn, reserve.id, sha))
    if found:
        return found
    statement = parse(content, fmt or detect(content), reserve.currency, reserve.csv)
    check_statement(reserve, statement)
    day = statement_date or statement.statement_date
    if day is None:
        raise BankFileError("the file names no day (no closing balance, no lines): give --date",
                            code="no_statement_date")
    folder = Path(settings.statement_dir) / "bank"
    return db.run_tx(lambda conn: import_statement(conn, reserve, statement, day, folder, content, now))
