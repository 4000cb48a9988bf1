"""Alipay's record of the order settles (分账) it made: the merchant account log
(`alipay.data.bill.accountlog.query`, 支付宝商家账户账务明细查询), one day of it, into split lines.

The account log lists every movement of the account's money, paged (`detail_list`, `total_size`); an
order settle that paid a receiver is a `支出` of type `分账` whose `alipay_order_no` is the settle's
number (settle_no, which paymux keeps as the split's channel id) and `trans_amount` yuan. Everything
else (trades, refunds, fees) is another statement's business. The content kept is the pages' entries
as one JSON document: {"total_size": N, "detail_list": [...]}, as the verified answers gave them.
"""
from __future__ import annotations

import json
import re

from gateway.channel import SplitLine, StatementInvalid
from plugins.statements import empty_check

YUAN = re.compile(r"^\d{1,13}\.\d{2}$")


def parse_accountlog(content: bytes) -> list[SplitLine]:
    empty_check(content)
    try:
        document = json.loads(content)
        logs, total = document["detail_list"], int(document["total_size"])
        assert isinstance(logs, list)
    except (ValueError, KeyError, TypeError, AssertionError):
        raise StatementInvalid("not an account log: a JSON document with detail_list and total_size") from None
    if len(logs) != total:
        raise StatementInvalid(f"{len(logs)} entries where Alipay counted {total}: a page is missing")
    out = []
    for number, log in enumerate(logs, start=1):
        if not isinstance(log, dict):
            raise StatementInvalid("an entry is not an object", number)
        if log.get("type") != "分账" or log.get("direction") != "支出":
            continue
        amount = str(log.get("trans_amount", ""))
        if not YUAN.match(amount):
            raise StatementInvalid(f"trans_amount {amount!r} is not yuan with two decimals", number)
        whole, cents = amount.split(".")
        out.append(SplitLine(number, "split", None, str(log.get("alipay_order_no") or "") or None,
                             int(whole) * 100 + int(cents), str(log.get("trans_dt", ""))))
    return out
