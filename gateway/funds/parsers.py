"""Bank statements, as banks send them, into one frame of lines (LINE_COLUMNS).

MT940 is read by the mt-940 package; camt.053 (any version of urn:iso:std:iso:20022:tech:xsd:camt.053.001)
by the standard library's expat, refusing a DOCTYPE (no entities, no network); a Chinese bank's CSV export
by the csv module through the reserve account's column mapping. Amounts become integer minor units
exactly (Decimal, never float): credit positive, debit negative. A broken file raises BankFileError
with its line; nothing is returned half-read.
"""
from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.parsers import expat

import mt940
import polars as pl

from gateway.errors import PaymuxError
from gateway.funds.config import CsvMapping

LINE_COLUMNS = {"line_no": pl.Int64, "booking_date": pl.Date, "value_date": pl.Date, "amount": pl.Int64,
                "currency": pl.String, "reference": pl.String, "details": pl.String, "bank_reference": pl.String}
FORMATS = ("mt940", "camt053", "csv")
CAMT_NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:camt.053.001."
# ISO 4217 currencies without two decimals (the ones a reserve account may plausibly hold)
EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3}


class BankFileError(PaymuxError):
    def __init__(self, message: str, line: int | None = None, code: str = "bad_bank_file") -> None:
        where = f"line {line}: " if line is not None else ""
        super().__init__(400, "invalid_request_error", code, where + message)
        self.line = line


@dataclass(frozen=True)
class BankStatement:
    format: str
    account: str | None           # as the file names it (:25:, Acct/Id)
    currency: str | None
    statement_date: date | None   # the day it closes (the closing balance's date), else its last line's
    opening_balance: int | None
    closing_balance: int | None
    lines: pl.DataFrame           # LINE_COLUMNS


def minor_units(value: Decimal | str, currency: str, line: int | None) -> int:
    """An amount in the currency's major unit as integer minor units, exactly, or a BankFileError."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(value.replace(",", "").strip())
    except InvalidOperation:
        raise BankFileError(f"{value!r} is not an amount", line) from None
    scaled = amount.scaleb(EXPONENTS.get(currency, 2))
    if not amount.is_finite() or scaled != scaled.to_integral_value():
        raise BankFileError(f"{value} {currency} is not a whole number of minor units", line)
    return int(scaled)


def detect(content: bytes) -> str:
    head = content[:2048].lstrip(b"\xef\xbb\xbf \r\n\t")
    if head.startswith(b"<"):
        return "camt053"
    if re.search(rb"^:20:", head, re.MULTILINE) or head.startswith(b"{1:"):
        return "mt940"
    return "csv"


def parse(content: bytes, fmt: str, currency: str, mapping: CsvMapping | None) -> BankStatement:
    if fmt == "mt940":
        return parse_mt940(content)
    if fmt == "camt053":
        return parse_camt053(content)
    if mapping is None:
        raise BankFileError("a CSV statement needs the reserve account's [reserve_accounts.csv] column mapping",
                            code="no_csv_mapping")
    return parse_csv(content, mapping, currency)


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=LINE_COLUMNS)


def _statement_date(closing: date | None, frame: pl.DataFrame) -> date | None:
    return closing or (frame["booking_date"].max() if frame.height else None)  # type: ignore[return-value]


# ---- MT940 ----

def parse_mt940(content: bytes) -> BankStatement:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BankFileError("MT940 is text: the file is not UTF-8 (or ASCII)", content[:exc.start].count(b"\n") + 1)
    text = text.replace("\r\n", "\n")
    numbered = text.split("\n")
    tag_lines = [i + 1 for i, line in enumerate(numbered) if line.startswith(":61:")]
    statement = mt940.models.Transactions()
    try:
        statement.parse(text)
    except (RuntimeError, ValueError, KeyError) as exc:
        value = exc.args[2] if len(exc.args) > 2 and isinstance(exc.args[2], str) else ""
        first = value.split("\n")[0]
        line = next((i + 1 for i, l in enumerate(numbered) if first and first in l), None)
        raise BankFileError(f"MT940 that mt-940 cannot read: {first or exc}", line) from None
    if ":20:" not in text or ":62F:" not in text and ":62M:" not in text:
        raise BankFileError("MT940 needs :20: and a closing balance (:62F:)", len(numbered))
    if len(statement.transactions) != len(tag_lines):
        raise BankFileError(f"{len(tag_lines)} :61: lines but {len(statement.transactions)} transactions read",
                            tag_lines[0] if tag_lines else None)
    data = statement.data
    closing = data.get("final_closing_balance") or data.get("intermediate_closing_balance")
    opening = data.get("final_opening_balance") or data.get("intermediate_opening_balance")
    currency = closing.amount.currency if closing is not None else None
    rows = []
    for line, t in zip(tag_lines, statement.transactions):
        d = t.data
        ccy = d.get("currency") or currency or ""
        booked = d.get("entry_date") or d["date"]
        rows.append({"line_no": line, "booking_date": date(booked.year, booked.month, booked.day),
                     "value_date": date(d["date"].year, d["date"].month, d["date"].day),
                     "amount": minor_units(d["amount"].amount, ccy, line), "currency": ccy,
                     "reference": (d.get("customer_reference") or "").strip(),
                     "details": (d.get("transaction_details") or "").replace("\n", " ").strip(),
                     "bank_reference": (d.get("bank_reference") or "").strip()})
    frame = _frame(rows)

    def balance(b: Any) -> int | None:
        return None if b is None else minor_units(b.amount.amount, b.amount.currency, None)

    closing_date = None if closing is None else date(closing.date.year, closing.date.month, closing.date.day)
    return BankStatement("mt940", data.get("account_identification"), currency, _statement_date(closing_date, frame),
                         balance(opening), balance(closing), frame)


# ---- ISO 20022 camt.053 ----

def _read_xml(content: bytes) -> tuple[ET.Element, dict[int, int]]:
    """The document, and each element's line (by id) for errors. No DOCTYPE: no entities to expand."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")
    lines: dict[int, int] = {}

    def start(name: str, attrs: dict[str, str]) -> None:
        lines[id(builder.start("{" + name if "}" in name else name, attrs))] = parser.CurrentLineNumber

    def doctype(*_: Any) -> None:
        raise BankFileError("a camt.053 file with a DOCTYPE is refused", parser.CurrentLineNumber)

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda name: builder.end("{" + name if "}" in name else name)
    parser.CharacterDataHandler = builder.data
    parser.StartDoctypeDeclHandler = doctype
    try:
        parser.Parse(content, True)
    except expat.ExpatError as exc:
        raise BankFileError(f"not well-formed XML: {expat.ErrorString(exc.code)}", exc.lineno) from None
    return builder.close(), lines


def parse_camt053(content: bytes) -> BankStatement:
    root, lines = _read_xml(content)
    if not (root.tag.startswith("{" + CAMT_NAMESPACE) and root.tag.endswith("}Document")):
        raise BankFileError(f"not a camt.053 document (its root is {root.tag})", lines.get(id(root)))
    ns = {"c": root.tag[1:].split("}")[0]}
    statements = root.findall("c:BkToCstmrStmt/c:Stmt", ns)
    if len(statements) != 1:
        raise BankFileError(f"one Stmt per file, this has {len(statements)}", lines.get(id(root)))
    stmt = statements[0]

    def text(el: ET.Element, path: str, required: bool = True) -> str | None:
        found = el.find(path, ns)
        if found is None or not (found.text or "").strip():
            if required:
                raise BankFileError(f"{el.tag.split('}')[1]} has no {path.replace('c:', '')}", lines.get(id(el)))
            return None
        return found.text.strip()  # type: ignore[union-attr]

    def day(el: ET.Element, path: str) -> date:
        value = text(el, path + "/c:Dt", required=False) or (text(el, path + "/c:DtTm") or "")[:10]
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise BankFileError(f"{value!r} is not a date", lines.get(id(el))) from None

    def signed(el: ET.Element) -> tuple[int, str]:
        amt = el.find("c:Amt", ns)
        if amt is None or not amt.get("Ccy"):
            raise BankFileError("an amount needs Amt with its Ccy", lines.get(id(el)))
        sign = text(el, "c:CdtDbtInd")
        if sign not in ("CRDT", "DBIT"):
            raise BankFileError(f"CdtDbtInd must be CRDT or DBIT, not {sign}", lines.get(id(el)))
        value = minor_units(text(el, "c:Amt") or "", amt.get("Ccy", ""), lines.get(id(amt)))
        return (value if sign == "CRDT" else -value), amt.get("Ccy", "")

    account = text(stmt, "c:Acct/c:Id/c:IBAN", required=False) or text(stmt, "c:Acct/c:Id/c:Othr/c:Id", required=False)
    balances: dict[str, tuple[int, date]] = {}
    currency = text(stmt, "c:Acct/c:Ccy", required=False)
    for bal in stmt.findall("c:Bal", ns):
        code = text(bal, "c:Tp/c:CdOrPrtry/c:Cd", required=False) or ""
        amount, currency = signed(bal)
        balances[code] = (amount, day(bal, "c:Dt"))
    rows = []
    for position, entry in enumerate(stmt.findall("c:Ntry", ns), 1):
        status = text(entry, "c:Sts", required=False) or text(entry, "c:Sts/c:Cd", required=False)
        if status not in (None, "BOOK"):
            continue   # pending or information only: not money on the account yet
        amount, ccy = signed(entry)
        refs = [text(entry, p, required=False) for p in (
            "c:NtryDtls/c:TxDtls/c:Refs/c:EndToEndId", "c:NtryDtls/c:TxDtls/c:Refs/c:InstrId", "c:NtryRef")]
        details = [t.text.strip() for t in entry.iterfind(".//c:RmtInf/c:Ustrd", ns) if t.text]
        details += [t for t in [text(entry, "c:AddtlNtryInf", required=False)] if t]
        # an XML file may be one line: a line is known by its entry's position (errors name the text line)
        rows.append({"line_no": position, "booking_date": day(entry, "c:BookgDt"),
                     "value_date": day(entry, "c:ValDt") if entry.find("c:ValDt", ns) is not None else None,
                     "amount": amount, "currency": ccy,
                     "reference": next((r for r in refs if r and r != "NOTPROVIDED"), ""),
                     "details": " ".join(details)[:500],
                     "bank_reference": text(entry, "c:AcctSvcrRef", required=False) or ""})
    frame = _frame(rows)
    closing = balances.get("CLBD")
    opening = balances.get("OPBD") or balances.get("PRCD")
    return BankStatement("camt053", account, currency, _statement_date(closing[1] if closing else None, frame),
                         opening[0] if opening else None, closing[0] if closing else None, frame)


# ---- CSV exports of Chinese banks ----

def parse_csv(content: bytes, mapping: CsvMapping, currency: str) -> BankStatement:
    try:
        text = content.decode(mapping.encoding)
    except UnicodeDecodeError as exc:
        raise BankFileError(f"not {mapping.encoding} (the reserve account's csv.encoding)",
                            content[:exc.start].count(b"\n") + 1) from None
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    for _ in range(mapping.skip_rows):
        next(reader, None)
    header = [h.strip() for h in next(reader, [])]
    wanted = [c for c in (mapping.date, mapping.reference, mapping.debit, mapping.credit, mapping.amount,
                          mapping.direction, mapping.details, mapping.bank_reference) if c]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise BankFileError(f"the header has no column {', '.join(missing)} (the mapping's)", reader.line_num)
    at = {name: header.index(name) for name in wanted}
    rows = []
    for cells in reader:
        line = reader.line_num
        cells = [c.strip().lstrip("`\t").strip() for c in cells]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if len(cells) < len(header):
            if any(c.startswith(("合计", "总计", "Total")) for c in cells if c):
                continue   # the export's own totals line
            raise BankFileError(f"{len(cells)} cells, the header has {len(header)}", line)
        cell = {name: cells[i] for name, i in at.items()}
        if cell[mapping.date].startswith(("合计", "总计")):
            continue
        try:
            booked = datetime.strptime(cell[mapping.date], mapping.date_format).date()
        except ValueError:
            raise BankFileError(f"{cell[mapping.date]!r} is not a date as {mapping.date_format}", line) from None
        if mapping.amount:
            value = minor_units(cell[mapping.amount] or "0", currency, line)
            mark = cell[mapping.direction or ""].upper()
            if mark in mapping.debit_marks:
                value = -abs(value)
            elif mark in mapping.credit_marks:
                value = abs(value)
            else:
                raise BankFileError(f"direction {mark!r} is neither debit ({'/'.join(mapping.debit_marks)}) nor "
                                    f"credit ({'/'.join(mapping.credit_marks)})", line)
        else:
            debit = minor_units(cell[mapping.debit or ""] or "0", currency, line)
            credit = minor_units(cell[mapping.credit or ""] or "0", currency, line)
            if debit and credit:
                raise BankFileError("both a debit and a credit on one line", line)
            value = credit - debit
        rows.append({"line_no": line, "booking_date": booked, "value_date": None, "amount": value,
                     "currency": currency, "reference": cell[mapping.reference],
                     "details": cell.get(mapping.details or "", ""),
                     "bank_reference": cell.get(mapping.bank_reference or "", "")})
    frame = _frame(rows)
    return BankStatement("csv", None, currency, _statement_date(None, frame), None, None, frame)
