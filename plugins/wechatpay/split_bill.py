"""WeChat Pay's profit-sharing bill (分账账单, `GET /v3/profitsharing/bills`) into split lines.

As WeChat Pay's page describes it: UTF-8 text of two parts, the detail and the summary, each a header
row and data rows; a detail row is one split or one return (回退) that succeeded; every data cell
follows a backtick (so Excel keeps long numbers) and amounts are yuan. Rows are split on ",`" as the
trade bill's are (plugins/wechatpay/statement.py); columns are found by name. A detail row names our
number in `out_order_no` (商户分账单号, or the return's 商户回退单号) and WeChat Pay's in `order_id`;
`business_type` says which it is (分账 or 回退). The detail ends at the first row without a backtick:
the summary's header, whose columns this reader does not need.
"""
from __future__ import annotations

import re

from gateway.channel import SplitLine, StatementInvalid
from plugins.statements import empty_check

CELL = ",`"
NEEDED = ("create_time", "order_id", "out_order_no", "amount", "business_type", "status")
KINDS = {"分账": "split", "回退": "return"}
YUAN = re.compile(r"^\d{1,13}\.\d{2}$")


def parse_split_bill(content: bytes) -> list[SplitLine]:
    empty_check(content)
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise StatementInvalid(f"not UTF-8: {exc.reason}") from None
    lines = text.splitlines()
    header = [name.strip().lstrip("`") for name in lines[0].split(",")]
    missing = [name for name in NEEDED if name not in header]
    if missing:
        raise StatementInvalid(f"the profit-sharing bill's header lacks {', '.join(missing)}", 1)
    at = {name: header.index(name) for name in NEEDED}
    out: list[SplitLine] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.startswith("`"):
            break
        cells = line[1:].split(CELL)
        if len(cells) != len(header):
            raise StatementInvalid(f"{len(cells)} cells where the header has {len(header)}", number)
        kind = KINDS.get(cells[at["business_type"]].strip())
        if kind is None or cells[at["status"]].strip() != "SUCCESS":
            continue   # an unfreeze (解冻) pays no receiver; a failed one is never the channel's money moved
        amount = cells[at["amount"]].strip()
        if not YUAN.match(amount):
            raise StatementInvalid(f"amount {amount!r} is not yuan with two decimals", number)
        whole, cents = amount.split(".")
        out.append(SplitLine(number, kind, cells[at["out_order_no"]].strip() or None,
                             cells[at["order_id"]].strip() or None, int(whole) * 100 + int(cents),
                             cells[at["create_time"]].strip()))
    else:
        raise StatementInvalid("truncated: the summary part that ends a profit-sharing bill is missing", len(lines))
    return out
