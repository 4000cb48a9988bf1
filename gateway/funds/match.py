"""Expected movements of the reserve account against its bank lines, as set operations (polars).

Expected (EXPECTED_COLUMNS): what the books say moved through the reserve bank account on a day (a
channel's settlement in, a position top-up out…), with the text its bank line should carry (`token`).
Lines (MATCH_LINE_COLUMNS): the bank's. A line is a candidate for a movement when it carries the token,
moves money the same way, and is dated within late_days; pairs are then taken best first (exact amount
on time, exact amount late, a different amount on time; nearest date), each movement and line at most
once, in rounds of mutual best choices. Classes, exactly:

  matched                same amount, the bank's date within match_days of the expected one
  late                   same amount, received outside that window (but within late_days)
  amount_differs         the movement's line, on time, with another amount
  expected_not_received  booked as moved, on no line
  received_not_expected  on the bank's statement, not in the books
"""
from __future__ import annotations

from datetime import date

import polars as pl

CLASSES = ("matched", "late", "amount_differs", "expected_not_received", "received_not_expected")
EXPECTED_COLUMNS = {"kind": pl.String, "reference": pl.String, "channel_account": pl.String,
                    "expected_date": pl.Date, "amount": pl.Int64, "token": pl.String}
MATCH_LINE_COLUMNS = {"line_key": pl.String, "line_no": pl.Int64, "booking_date": pl.Date, "amount": pl.Int64,
                      "text": pl.String, "bank_reference": pl.String}
OUTCOME_COLUMNS = {"class": pl.String, "kind": pl.String, "reference": pl.String, "channel_account": pl.String,
                   "business_date": pl.Date, "line_key": pl.String, "line_no": pl.Int64,
                   "bank_reference": pl.String, "bank_amount": pl.Int64, "expected_amount": pl.Int64}
RANK = {"matched": 0, "late": 1, "amount_differs": 2}


def candidates(expected: pl.DataFrame, lines: pl.DataFrame, *, match_days: int, late_days: int) -> pl.DataFrame:
    """Every (movement, line) that could be the same money, with its class and rank."""
    tokens = expected["token"].unique().drop_nulls().to_list()
    if not tokens or not lines.height:
        return pl.DataFrame(schema={**{f"e_{k}": v for k, v in EXPECTED_COLUMNS.items()},
                                    **{f"l_{k}": v for k, v in MATCH_LINE_COLUMNS.items()},
                                    "class": pl.String, "rank": pl.Int64, "gap": pl.Int64, "off": pl.Int64})
    # Aho-Corasick over every line at once: which known tokens each line's text carries
    found = lines.with_columns(token=pl.col("text").str.extract_many(tokens, overlapping=True)) \
        .explode("token").drop_nulls("token").unique(["line_key", "token"])
    pairs = expected.rename({k: f"e_{k}" for k in EXPECTED_COLUMNS}).join(
        found.rename({k: f"l_{k}" for k in MATCH_LINE_COLUMNS}), left_on="e_token", right_on="token")
    gap = (pl.col("l_booking_date") - pl.col("e_expected_date")).dt.total_days().abs()
    same = pl.col("l_amount") == pl.col("e_amount")
    pairs = pairs.with_columns(gap=gap, off=(pl.col("l_amount") - pl.col("e_amount")).abs()).filter(
        (pl.col("l_amount").sign() == pl.col("e_amount").sign()) & (pl.col("gap") <= late_days)
        & (same | (pl.col("gap") <= match_days)))
    return pairs.with_columns(**{"class": pl.when(same & (pl.col("gap") <= match_days)).then(pl.lit("matched"))
                                 .when(same).then(pl.lit("late")).otherwise(pl.lit("amount_differs"))}) \
        .with_columns(rank=pl.col("class").replace_strict(RANK, return_dtype=pl.Int64))


def assign(pairs: pl.DataFrame) -> pl.DataFrame:
    """Each movement and each line in at most one pair: in rounds, every movement takes its best line,
    every line its best taker, and those mutual choices are kept (the best pair left always is one)."""
    order = ["rank", "gap", "off", "l_line_no", "e_reference"]
    taken = []
    pairs = pairs.sort(order)
    while pairs.height:
        mine = pairs.group_by("e_reference", maintain_order=True).first()
        mutual = mine.sort(order).group_by("l_line_key", maintain_order=True).first()
        taken.append(mutual)
        pairs = pairs.join(mutual.select("e_reference"), on="e_reference", how="anti") \
            .join(mutual.select("l_line_key"), on="l_line_key", how="anti")
    return pl.concat(taken, how="vertical_relaxed") if taken else pairs


def classify(expected: pl.DataFrame, lines: pl.DataFrame, *, day: date, match_days: int,
             late_days: int) -> pl.DataFrame:
    """One row per movement due by `day` and per line (OUTCOME_COLUMNS): paired, or alone."""
    pairs = assign(candidates(expected, lines, match_days=match_days, late_days=late_days))
    paired = pairs.select(**{"class": "class", "kind": "e_kind", "reference": "e_reference",
                             "channel_account": "e_channel_account", "business_date": "e_expected_date",
                             "line_key": "l_line_key", "line_no": "l_line_no", "bank_reference": "l_bank_reference",
                             "bank_amount": "l_amount", "expected_amount": "e_amount"})
    missing = expected.join(pairs.select(reference="e_reference"), on="reference", how="anti") \
        .filter(pl.col("expected_date") <= day).select(
            **{"class": pl.lit("expected_not_received")}, kind="kind", reference="reference",
            channel_account="channel_account", business_date="expected_date", expected_amount="amount")
    unexpected = lines.join(pairs.select(line_key="l_line_key"), on="line_key", how="anti").select(
        **{"class": pl.lit("received_not_expected")}, kind=pl.lit("bank_line"), reference="line_key",
        business_date="booking_date", line_key="line_key", line_no="line_no", bank_reference="bank_reference",
        bank_amount="amount")
    return pl.concat([paired, missing, unexpected], how="diagonal_relaxed").select(
        [pl.col(k).cast(v) for k, v in OUTCOME_COLUMNS.items()])


def counts(outcomes: pl.DataFrame) -> dict[str, int]:
    found = dict(outcomes.group_by("class").len().iter_rows())
    return {name: int(found.get(name, 0)) for name in CLASSES}
