"""Matching a channel statement against our records, as set operations on columns (polars).

This is the pure core of reconciliation (it was ledger/recon.py: it matches statements against
attempts, refunds and payouts, which are the gateway's records, not the books'). No database and no
HTTP here: the caller loads the statement lines and the local records into
DataFrames, `classify` joins them by key (a hash join) and returns the count of every class and
one row per line or record that did not match. Classes, exactly:

  matched            the same thing on both sides
  missing_local      on the statement, unknown here
  missing_channel    succeeded here, on no statement once the carry-over window has passed
  pending_carryover  succeeded here, not on this statement, still within the window (day-cut)
                     (a payout still processing here, sent that day, is absent the same way: once
                     missing_channel, that is what proves it never reached the channel)
  status_mismatch    one side says succeeded, the other does not
  amount_mismatch    both succeeded, amounts differ
  fee_mismatch       the channel's fee is not what its cost rule says: the account's, or where cost
                     rules name merchants or methods, the rule of the line's payment (gateway/fees.py)
  duplicate          a line that repeats an earlier line's key on the same statement

A payout line `returned` (the day the receiving bank sent it back, 退票) is its own key beside the
payout's success line: it matches a payout returned here, and is a status_mismatch against one still
succeeded here (reconciliation's rule `payout_returned_by_statement` applies it). A payout returned here
still matches the success line of the day it was paid.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Callable

import polars as pl

from ledger.days import BusinessDay

CLASSES = ("matched", "missing_local", "missing_channel", "pending_carryover", "status_mismatch",
           "amount_mismatch", "fee_mismatch", "duplicate")

LOCAL_PAYMENT_COLUMNS = {"out_trade_no": pl.String, "local_status": pl.String, "local_amount": pl.Int64,
                         "local_date": pl.Date}
LOCAL_REFUND_COLUMNS = {"out_refund_no": pl.String, "out_trade_no": pl.String, "local_status": pl.String,
                        "local_amount": pl.Int64, "local_date": pl.Date}
# local_date: the business date of its success; sent_date: of its current number's send
LOCAL_PAYOUT_COLUMNS = {"out_payout_no": pl.String, "local_status": pl.String, "local_amount": pl.Int64,
                        "local_date": pl.Date, "sent_date": pl.Date}
ITEM_COLUMNS = ("class", "kind", "reference", "out_trade_no", "line_no", "channel_transaction_id", "channel_status",
                "local_status", "channel_amount", "local_amount", "channel_effect", "local_effect",
                "channel_fee_millis", "expected_fee_millis")


@dataclass
class Classified:
    counts: dict[str, int]
    items: pl.DataFrame            # ITEM_COLUMNS, every line or record that is not matched
    statement_keys: pl.DataFrame | pl.LazyFrame   # kind, reference: every key on the statement
    payment_amount: int            # what the channel settles for succeeded payment lines
    refund_amount: int             # what it takes back for succeeded refund lines
    fee_amount: int                # the channel's fees on succeeded lines, in minor units (half up per line)


def fen_from_millis(expr: pl.Expr) -> pl.Expr:
    """1/1000 minor units to minor units, half away from zero (as channels round a fee)."""
    return pl.when(expr >= 0).then((expr + 500) // 1000).otherwise(-((-expr + 500) // 1000))


def expected_fee_millis(amount: pl.Expr, bps: int) -> pl.Expr:
    """amount (minor units) at bps basis points, in 1/1000 minor units, half up."""
    return (amount * bps + 5) // 10


@dataclass(frozen=True)
class CostTerms:
    """What the channel account charges on a payment (its cost rule, gateway/fees.py): basis points
    plus fixed, held within min and max, never above the amount. A refund gives back the basis points."""

    bps: int
    fixed: int = 0
    min: int = 0
    max: int | None = None

    def columns(self) -> dict[str, pl.Expr]:
        return {"cost_bps": pl.lit(self.bps, pl.Int64), "cost_fixed": pl.lit(self.fixed, pl.Int64),
                "cost_min": pl.lit(self.min, pl.Int64), "cost_max": pl.lit(self.max, pl.Int64)}


COST_COLUMNS = {"cost_bps": pl.Int64, "cost_fixed": pl.Int64, "cost_min": pl.Int64, "cost_max": pl.Int64}
# the payment's merchant and method, on our payments and refunds when the cost rules differ by them
PAYER_COLUMNS = {"merchant_id": pl.String, "method": pl.String}


@dataclass(frozen=True)
class CostTable:
    """Cost rules that differ by merchant or method at one account (gateway/fees.py): each line is
    checked against the rule of its payment's merchant and method, `terms(merchant, method)` (None: no
    rule, not checked). Our payments and refunds then carry PAYER_COLUMNS."""

    terms: Callable[[str, str], CostTerms | None]

    def frame(self, *local: pl.DataFrame) -> pl.LazyFrame:
        """COST_COLUMNS by merchant and method, for the pairs of `local` (a few: resolved one by one)."""
        pairs = pl.concat([f.select(list(PAYER_COLUMNS)) for f in local]).unique().drop_nulls()
        rows = []
        for merchant, method in pairs.iter_rows():
            t = self.terms(merchant, method)
            rows.append((merchant, method, *((t.bps, t.fixed, t.min, t.max) if t else (None,) * 4)))
        return pl.DataFrame(rows, schema={**PAYER_COLUMNS, **COST_COLUMNS}, orient="row").lazy()


def expected_cost_millis(kind: pl.Expr, settled: pl.Expr, sign: pl.Expr) -> pl.Expr:
    """The fee the cost columns make for a line, in 1/1000 minor units (null: no rule, a payout)."""
    bps, fixed, low, high = (pl.col(c) for c in COST_COLUMNS)
    payment = pl.min_horizontal(pl.max_horizontal(expected_fee_millis(settled, bps) + fixed * 1000, low * 1000),
                                high * 1000, settled * 1000)   # a null max holds nothing
    return (pl.when(bps.is_null()).then(None).when(kind == "payment").then(payment)
            .when(kind != "payout").then(expected_fee_millis(settled, bps) * sign))


def classify(lines: pl.DataFrame, local_payments: pl.DataFrame, local_refunds: pl.DataFrame, *,
             business_date: date, today: date, carry_days: int, fee_bps: int | CostTerms | CostTable | None,
             local_payouts: pl.DataFrame | None = None) -> Classified:
    """lines: the statement (gateway.channel.STATEMENT_COLUMNS). local_*: our records around the
    day (LOCAL_*_COLUMNS; local_date is the business date of their success). Absences a neighbouring
    statement explains are taken out afterwards with `excuse`. A payout line moves the channel
    account's position, not what the channel owes us: its amount is no payment or refund total and
    its fee is not checked against the payment rate (it is counted in the day's fees)."""
    if local_payouts is None:
        local_payouts = pl.DataFrame(schema=LOCAL_PAYOUT_COLUMNS)
    lines = lines.with_columns(reference=pl.when(pl.col("kind") == "refund").then(pl.col("out_refund_no"))
                               .otherwise(pl.col("out_trade_no")))
    returned = (pl.col("kind") == "payout") & (pl.col("status") == "returned")
    lines = lines.with_columns(repeat=~pl.struct("kind", "reference", returned.alias("returned")).is_first_distinct(),
                               settled=settled_amount())
    succeeded = pl.col("status") == "succeeded"
    sign = pl.when(pl.col("kind") == "payment").then(1).otherwise(-1)
    # a return puts the payout's amount back in the position
    lines = lines.with_columns(channel_effect=pl.when(succeeded).then(pl.col("amount") * sign)
                               .when(returned).then(pl.col("amount")).otherwise(0),
                               fee_fen=pl.when(succeeded).then(fen_from_millis(pl.col("fee_millis"))).otherwise(0))

    # The join is lazy and streamed: only the counts and the lines that did not match are made, never the
    # whole joined statement (at 2,000,000 lines that frame alone was most of reconciliation's memory).
    statement = lines.lazy()
    payer = list(PAYER_COLUMNS) if isinstance(fee_bps, CostTable) else []
    payments = statement.filter(pl.col("kind") == "payment").join(
        local_payments.lazy().select(list(LOCAL_PAYMENT_COLUMNS) + payer).rename({"out_trade_no": "reference"}),
        on="reference", how="left")
    refunds = statement.filter(pl.col("kind") == "refund").join(
        local_refunds.lazy().select(list(LOCAL_REFUND_COLUMNS) + payer).drop("out_trade_no")
        .rename({"out_refund_no": "reference"}), on="reference", how="left")
    payouts = statement.filter(pl.col("kind") == "payout").join(
        local_payouts.lazy().select("out_payout_no", "local_status", "local_amount", "local_date")
        .rename({"out_payout_no": "reference"}), on="reference", how="left")
    joined = pl.concat([payments, refunds, payouts], how="diagonal_relaxed")
    # The channel charges its fee on what it settles (the order less a coupon it keeps), and so do we; a
    # payout's fee is not at the payment rate. Each line's cost rule: the account's, or its payment's.
    if isinstance(fee_bps, CostTable):
        joined = joined.join(fee_bps.frame(local_payments, local_refunds), on=payer, how="left")
    else:
        joined = joined.with_columns(**(CostTerms(fee_bps) if isinstance(fee_bps, int) else
                                        fee_bps or CostTerms(0)).columns())
    # what the line says happened, here: a success (a payout returned since was paid too), or its return
    line_ok = succeeded | returned
    local_ok = pl.when(returned).then(pl.col("local_status") == "returned").otherwise(
        (pl.col("local_status") == "succeeded") | ((pl.col("kind") == "payout") & (pl.col("local_status") == "returned")))
    expected = expected_cost_millis(pl.col("kind"), pl.col("settled"), sign) if fee_bps is not None else pl.lit(None)
    fee_differs = (fen_from_millis(pl.col("fee_millis")) != fen_from_millis(expected)).fill_null(False) \
        if fee_bps is not None else pl.lit(False)
    joined = joined.with_columns(
        expected_fee_millis=expected.cast(pl.Int64),
        local_effect=pl.when(local_ok & returned).then(pl.col("local_amount"))
        .when(local_ok).then(pl.col("local_amount") * sign).otherwise(0),
        **{"class": pl.when(pl.col("repeat")).then(pl.lit("duplicate"))
           .when(pl.col("local_status").is_null()).then(pl.lit("missing_local"))
           .when(line_ok != local_ok).then(pl.lit("status_mismatch"))
           .when(line_ok & (pl.col("amount") != pl.col("local_amount"))).then(pl.lit("amount_mismatch"))
           .when(succeeded & fee_differs).then(pl.lit("fee_mismatch"))
           .otherwise(pl.lit("matched"))})
    on_statement = lines.select("kind", "reference").unique()
    window_open = today <= date.fromordinal(business_date.toordinal() + carry_days)
    absent = pl.concat([
        local_payments.filter((pl.col("local_status") == "succeeded") & (pl.col("local_date") == business_date))
        .select(kind=pl.lit("payment"), reference=pl.col("out_trade_no"), out_trade_no=pl.col("out_trade_no"),
                local_status=pl.col("local_status"), local_amount=pl.col("local_amount"),
                local_effect=pl.col("local_amount")),
        local_refunds.filter((pl.col("local_status") == "succeeded") & (pl.col("local_date") == business_date))
        .select(kind=pl.lit("refund"), reference=pl.col("out_refund_no"), out_trade_no=pl.col("out_trade_no"),
                local_status=pl.col("local_status"), local_amount=pl.col("local_amount"),
                local_effect=-pl.col("local_amount")),
        local_payouts.filter(((pl.col("local_status") == "succeeded") & (pl.col("local_date") == business_date))
                             | ((pl.col("local_status") == "processing") & (pl.col("sent_date") == business_date)))
        .select(kind=pl.lit("payout"), reference=pl.col("out_payout_no"), out_trade_no=pl.col("out_payout_no"),
                local_status=pl.col("local_status"), local_amount=pl.col("local_amount"),
                local_effect=pl.when(pl.col("local_status") == "succeeded").then(-pl.col("local_amount"))
                .otherwise(0)),
    ], how="vertical_relaxed").join(on_statement, on=["kind", "reference"], how="anti").with_columns(
        pl.lit("pending_carryover" if window_open else "missing_channel").alias("class"),
        channel_effect=pl.lit(0, pl.Int64))

    joined_counts, unmatched = pl.collect_all([
        joined.group_by("class").len(),
        joined.filter(pl.col("class") != "matched").select(
            "class", "kind", "reference", "out_trade_no", "line_no", "channel_transaction_id",
            channel_status="status", local_status="local_status", channel_amount="amount",
            local_amount="local_amount", channel_effect="channel_effect", local_effect="local_effect",
            channel_fee_millis="fee_millis", expected_fee_millis="expected_fee_millis")], engine="streaming")
    counts = {name: 0 for name in CLASSES}
    for name, n in joined_counts.iter_rows():
        counts[name] += n
    for name, n in absent.group_by("class").len().iter_rows():
        counts[name] += n
    items = pl.concat([
        unmatched,
        absent.select("class", "kind", "reference", "out_trade_no", "local_status", "local_amount",
                      "channel_effect", "local_effect"),
    ], how="diagonal_relaxed").select(list(ITEM_COLUMNS))
    amounts = lines.select(   # sums, not a filtered copy of the statement
        payment=pl.col("settled").filter(succeeded & (pl.col("kind") == "payment")).sum(),
        refund=pl.col("settled").filter(succeeded & (pl.col("kind") == "refund")).sum(),
        fee=pl.col("fee_fen").sum()).row(0, named=True)
    return Classified(counts=counts, items=items, statement_keys=on_statement, payment_amount=int(amounts["payment"]),
                      refund_amount=int(amounts["refund"]), fee_amount=int(amounts["fee"]))


ABSENCES = ("pending_carryover", "missing_channel")


def excuse(result: Classified, seen: pl.DataFrame) -> Classified:
    """Take out the absences (successes of ours not on this statement) whose kind and reference are in
    `seen`: lines of the account's neighbouring statements, where a day-cut put them. They are that
    day's matches, not differences of this one."""
    if seen.height == 0:
        return result
    seen = seen.select("kind", "reference").unique().with_columns(_seen=pl.lit(True))
    kept = result.items.join(seen, on=["kind", "reference"], how="left").filter(
        ~(pl.col("class").is_in(ABSENCES) & pl.col("_seen").fill_null(False))).drop("_seen")
    counts = dict(result.counts)
    for name in ABSENCES:
        counts[name] = kept.filter(pl.col("class") == name).height
    return replace(result, counts=counts, items=kept)


def settled_amount() -> pl.Expr:
    """What the channel settles for a line: its settled_amount, or all of its amount when it gave none."""
    return pl.coalesce(pl.col("settled_amount"), pl.col("amount"))


def statement_totals(lines: pl.DataFrame) -> dict[str, int]:
    """What the lines add up to, in the keys a plugin's ParsedStatement.totals may declare: counts, the
    orders' amounts, and what the channel settles for them (*_settled_amount)."""
    lines = lines.with_columns(settled=settled_amount())
    payments, refunds = lines.filter(pl.col("kind") == "payment"), lines.filter(pl.col("kind") == "refund")
    payouts = lines.filter(pl.col("kind") == "payout")
    return {"rows": lines.height, "payment_count": payments.height, "payment_amount": int(payments["amount"].sum()),
            "payment_settled_amount": int(payments["settled"].sum()), "refund_count": refunds.height,
            "refund_amount": int(refunds["amount"].sum()), "refund_settled_amount": int(refunds["settled"].sum()),
            "payout_count": payouts.height, "payout_amount": int(payouts["amount"].sum())}


def totals_disagree(declared: dict[str, Any] | None, lines: pl.DataFrame | dict[str, int]) -> str | None:
    """None if every total the channel declared matches its lines (or what they add up to, as
    statement_totals gives it); else what differs."""
    if not declared:
        return None
    actual = lines if isinstance(lines, dict) else statement_totals(lines)
    wrong = [f"{key} {declared[key]} (the lines add up to {actual[key]})"
             for key in actual if key in declared and int(declared[key]) != actual[key]]
    return "the statement's own totals disagree with its lines: " + ", ".join(wrong) if wrong else None


# ---- our side's dates, column-wise (the business day's arithmetic is ledger.days') ----

def business_date_expr(utc: pl.Expr, day: BusinessDay) -> pl.Expr:
    """The business date of a UTC datetime column, as BusinessDay.date_of gives it for one value."""
    return (utc.dt.convert_time_zone(day.time_zone) - pl.duration(seconds=day.cut_seconds)).dt.date()


def with_success_date(frame: pl.DataFrame, day: BusinessDay) -> pl.DataFrame:
    """local_date: the business date of a success (`at`, when the row last changed, is when it
    succeeded); `at` is dropped. `at` may be SQLite's text, a naive UTC or an aware datetime."""
    kind = frame.schema["at"]
    if kind == pl.String:
        at = pl.col("at").str.to_datetime("%Y-%m-%d %H:%M:%S", time_zone="UTC", strict=False)
    elif getattr(kind, "time_zone", None) is None:
        at = pl.col("at").dt.replace_time_zone("UTC")
    else:
        at = pl.col("at").dt.convert_time_zone("UTC")
    return frame.with_columns(local_date=pl.when(pl.col("local_status") == "succeeded")
                              .then(business_date_expr(at, day)).otherwise(None)).drop("at")


def with_sent_date(frame: pl.DataFrame, day: BusinessDay) -> pl.DataFrame:
    """sent_date: the business date a payout's current number was sent on (paymux's numbers start
    with their making time in milliseconds, hex, and a number is sent when it is made)."""
    millis = pl.col("out_payout_no").str.slice(0, 12).str.to_integer(base=16, strict=False)
    return frame.with_columns(sent_date=business_date_expr(
        pl.from_epoch(millis, time_unit="ms").dt.replace_time_zone("UTC"), day))


def local_totals(pay: pl.DataFrame, ref: pl.DataFrame, day: date) -> dict[str, int]:
    """Our successes of the day: counts and amounts, beside the statement's in a run's summary."""
    p = pay.filter((pl.col("local_status") == "succeeded") & (pl.col("local_date") == day))
    r = ref.filter((pl.col("local_status") == "succeeded") & (pl.col("local_date") == day))
    return {"payment_count": p.height, "payment_amount": int(p["local_amount"].sum()),
            "refund_count": r.height, "refund_amount": int(r["local_amount"].sum())}
