"""Bank files as banks write them, made from a list of movements: MT940 (SWIFT text), ISO 20022
camt.053.001.08 (XML, by ElementTree) and the CSV exports of Chinese banks (UTF-8 or GBK)."""
from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

ACCOUNT = "6222020200112233"


@dataclass(frozen=True)
class Movement:
    day: date
    amount: int          # fen: credit positive, debit negative
    text: str            # what the payer wrote (the remittance information)
    bank_ref: str


def yuan(fen: int) -> Decimal:
    return (Decimal(abs(fen)) / 100).quantize(Decimal("0.01"))


def mt940(moves: list[Movement], closing_day: date, opening: int = 1_000_000) -> bytes:
    closing = opening + sum(m.amount for m in moves)
    out = [":20:STMT" + closing_day.strftime("%y%m%d"), f":25:{ACCOUNT}", ":28C:00001/001",
           f":60F:C{closing_day:%y%m%d}CNY{str(yuan(opening)).replace('.', ',')}"]
    for m in moves:
        mark = "C" if m.amount > 0 else "D"
        out.append(f":61:{m.day:%y%m%d}{m.day:%m%d}{mark}{str(yuan(m.amount)).replace('.', ',')}NTRF"
                   f"NONREF//{m.bank_ref}")
        out.append(f":86:{m.text}")
    out.append(f":62F:C{closing_day:%y%m%d}CNY{str(yuan(closing)).replace('.', ',')}")
    return ("\r\n".join(out) + "\r\n").encode()


def camt053(moves: list[Movement], closing_day: date, opening: int = 1_000_000) -> bytes:
    ns = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
    ET.register_namespace("", ns)

    def el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        child = ET.SubElement(parent, f"{{{ns}}}{tag}", attrs)
        child.text = text
        return child

    doc = ET.Element(f"{{{ns}}}Document")
    stmt = el(el(doc, "BkToCstmrStmt"), "Stmt")
    el(stmt, "Id", f"STMT{closing_day:%Y%m%d}")
    acct = el(stmt, "Acct")
    el(el(el(acct, "Id"), "Othr"), "Id", ACCOUNT)
    el(acct, "Ccy", "CNY")
    for code, amount in (("OPBD", opening), ("CLBD", opening + sum(m.amount for m in moves))):
        bal = el(stmt, "Bal")
        el(el(el(bal, "Tp"), "CdOrPrtry"), "Cd", code)
        el(bal, "Amt", str(yuan(amount)), Ccy="CNY")
        el(bal, "CdtDbtInd", "CRDT" if amount >= 0 else "DBIT")
        el(el(bal, "Dt"), "Dt", closing_day.isoformat())
    for m in moves:
        ntry = el(stmt, "Ntry")
        el(ntry, "Amt", str(yuan(m.amount)), Ccy="CNY")
        el(ntry, "CdtDbtInd", "CRDT" if m.amount > 0 else "DBIT")
        el(el(ntry, "Sts"), "Cd", "BOOK")
        el(el(ntry, "BookgDt"), "Dt", m.day.isoformat())
        el(el(ntry, "ValDt"), "Dt", m.day.isoformat())
        el(ntry, "AcctSvcrRef", m.bank_ref)
        el(ntry, "BkTxCd")
        tx = el(el(ntry, "NtryDtls"), "TxDtls")
        el(el(tx, "Refs"), "EndToEndId", "NOTPROVIDED")
        el(el(tx, "RmtInf"), "Ustrd", m.text)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(doc)


def bank_csv(moves: list[Movement], *, flag: bool, encoding: str) -> bytes:
    """flag: one amount column and a 借/贷 column (GBK exports do this); else 借方发生额/贷方发生额."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([f"账号：{ACCOUNT}"])
    if flag:
        w.writerow(["交易日期", "借贷标志", "发生额", "摘要", "流水号"])
        for m in moves:
            w.writerow([m.day.strftime("%Y%m%d"), "贷" if m.amount > 0 else "借", f"{yuan(m.amount):,}", m.text,
                        m.bank_ref])
    else:
        w.writerow(["交易日期", "借方发生额", "贷方发生额", "摘要", "流水号"])
        for m in moves:
            w.writerow([m.day.isoformat(), yuan(m.amount) if m.amount < 0 else "",
                        yuan(m.amount) if m.amount > 0 else "", m.text, m.bank_ref])
        w.writerow(["合计", yuan(-sum(m.amount for m in moves if m.amount < 0)),
                    yuan(sum(m.amount for m in moves if m.amount > 0)), "", ""])
    return buf.getvalue().encode(encoding)


CSV_MAPPINGS = {
    "columns": {"encoding": "utf-8", "skip_rows": 1, "date": "交易日期", "debit": "借方发生额",
                "credit": "贷方发生额", "reference": "摘要", "bank_reference": "流水号"},
    "flag": {"encoding": "gbk", "skip_rows": 1, "date": "交易日期", "date_format": "%Y%m%d", "amount": "发生额",
             "direction": "借贷标志", "reference": "摘要", "bank_reference": "流水号"},
}


def bank_file(kind: str, moves: list[Movement], closing_day: date) -> bytes:
    if kind == "mt940":
        return mt940(moves, closing_day)
    if kind == "camt053":
        return camt053(moves, closing_day)
    return bank_csv(moves, flag=kind == "csv_flag", encoding="gbk" if kind == "csv_flag" else "utf-8")
