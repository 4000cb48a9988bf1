"""Matching in partitions, so that reconciliation's memory depends on a partition's size, not the file's.

Both sides are cut into K partitions by a hash of the key the join uses (a statement line's reference:
its out_trade_no, out_refund_no or out_payout_no; our attempts', refunds' and payouts' the same numbers)
and spilled to temporary parquet files as they are read: the statement piece by piece as the plugin
gives it (Channel.read_statement_pieces), our side batch by batch as it is loaded. Then `classify`
(match.py, unchanged) runs on one partition at a time. Everything classify relates is within one
partition: a line and our record of the same number, the repeats of a line (read back in file order,
so the first is still the first), a success of ours and the line that has it; so the counts, the
amounts and the items added up over the partitions are exactly those of one classify over the whole.

K is the statement file's size over PART_BYTES: a partition holds about PART_BYTES of the statement's
text as columns, and our records of the same numbers.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from gateway.channel import STATEMENT_COLUMNS
from gateway.reconciliation.match import (CLASSES, CostTable, CostTerms, ITEM_COLUMNS, LOCAL_PAYMENT_COLUMNS, LOCAL_PAYOUT_COLUMNS,
                                          LOCAL_REFUND_COLUMNS, Classified, classify, local_totals, statement_totals)

PART_BYTES = 16 << 20       # of the statement file per partition
FLUSH_ROWS = 200_000        # rows waiting in memory before they are written out
PART_SEED = 29

Schema = dict[str, Any]
STATEMENT_SCHEMA: Schema = {name: getattr(pl, kind) for name, kind in STATEMENT_COLUMNS.items()}
KEY_OF = {"statement": "reference", "payment": "out_trade_no", "refund": "out_refund_no", "payout": "out_payout_no"}
SCHEMAS: dict[str, Schema] = {"statement": {**STATEMENT_SCHEMA, "reference": pl.String},
                              "payment": LOCAL_PAYMENT_COLUMNS, "refund": LOCAL_REFUND_COLUMNS,
                              "payout": LOCAL_PAYOUT_COLUMNS}


def partition_count(file_size: int) -> int:
    return max(1, -(-file_size // PART_BYTES))


def with_reference(lines: pl.DataFrame) -> pl.DataFrame:
    """A statement line's key: its out_refund_no on a refund, else its out_trade_no (classify's reference)."""
    return lines.with_columns(reference=pl.when(pl.col("kind") == "refund").then(pl.col("out_refund_no"))
                              .otherwise(pl.col("out_trade_no")))


@dataclass
class Spill:
    """Frames of one kind cut into `k` partitions by their key's hash, written to parquet files under
    `folder` whenever FLUSH_ROWS rows wait; read back a partition at a time, in the order they came.
    Used by one thread."""

    folder: Path
    kind: str
    k: int
    extra: Schema = field(default_factory=dict)     # columns beyond the kind's (PAYER_COLUMNS)
    waiting: dict[int, list[pl.DataFrame]] = field(default_factory=lambda: defaultdict(list))
    rows: int = 0
    flushes: int = 0
    total: int = 0

    def __post_init__(self) -> None:
        self.folder = self.folder / self.kind
        self.folder.mkdir(mode=0o700)
        self.schema = {**SCHEMAS[self.kind], **self.extra}

    def add(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        frame = frame.select(pl.col(c).cast(t) for c, t in self.schema.items())
        if self.k == 1:
            self.waiting[0].append(frame)
        else:
            part = (pl.col(KEY_OF[self.kind]).hash(PART_SEED) % self.k).alias("_part")
            for (p,), piece in frame.with_columns(part).partition_by("_part", as_dict=True,
                                                                     include_key=False).items():
                self.waiting[int(p)].append(piece)
        self.rows += frame.height
        self.total += frame.height
        if self.rows >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        for p, frames in self.waiting.items():
            pl.concat(frames, rechunk=True).write_parquet(self.folder / f"{p:05d}.{self.flushes:06d}.parquet",
                                                         compression="lz4", statistics=False)
        self.waiting.clear()
        self.rows = 0
        self.flushes += 1

    def read(self, p: int) -> pl.DataFrame:
        files = sorted(self.folder.glob(f"{p:05d}.*.parquet"))
        return pl.read_parquet(files) if files else pl.DataFrame(schema=self.schema)


def compact(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with its strings written anew: filtered, a string column (polars' string views) still
    points into the buffers of the frame it was taken from and keeps them alive, so the few items of
    every partition would keep every partition's lines in memory."""
    return frame.with_columns(pl.concat_str(pl.col(c), pl.lit("")) for c, t in frame.schema.items() if t == pl.String)


def add_totals(into: dict[str, int] | None, more: dict[str, int]) -> dict[str, int]:
    return dict(more) if into is None else {key: into[key] + more[key] for key in into}


def classify_partitions(statement: Spill, payments: Spill, refunds: Spill, payouts: Spill, keys_path: Path, *,
                        business_date: date, today: date, carry_days: int,
                        fee_bps: int | CostTerms | CostTable | None) -> tuple[Classified, dict[str, int]]:
    """`classify` on each partition, the results added up; the statement's keys (kind, reference) are
    written to keys_path as they are found. Returns the result (its statement_keys a scan of that file)
    and our side's totals of the day (local_totals)."""
    counts = {name: 0 for name in CLASSES}
    items: list[pl.DataFrame] = []
    amounts = {"payment": 0, "refund": 0, "fee": 0}
    local: dict[str, int] | None = None
    key_parts = keys_path.with_name(keys_path.name + ".parts")
    key_parts.mkdir(mode=0o700, exist_ok=True)
    for p in range(statement.k):
        lines = statement.read(p).drop("reference")
        pay, ref, out = payments.read(p), refunds.read(p), payouts.read(p)
        part = classify(lines, pay, ref, business_date=business_date, today=today, carry_days=carry_days,
                        fee_bps=fee_bps, local_payouts=out)
        for name, n in part.counts.items():
            counts[name] += n
        if part.items.height:
            items.append(compact(part.items))
        amounts["payment"] += part.payment_amount
        amounts["refund"] += part.refund_amount
        amounts["fee"] += part.fee_amount
        part.statement_keys.write_parquet(key_parts / f"{p:05d}.parquet")
        local = add_totals(local, local_totals(pay, ref, business_date))
    pl.scan_parquet(sorted(key_parts.glob("*.parquet"))).sink_parquet(keys_path)
    for each in key_parts.glob("*.parquet"):
        each.unlink()
    key_parts.rmdir()
    found = (pl.concat(items, how="diagonal_relaxed").select(list(ITEM_COLUMNS)) if items
             else classify(pl.DataFrame(schema=STATEMENT_SCHEMA), pl.DataFrame(schema=payments.schema),
                           pl.DataFrame(schema=refunds.schema), business_date=business_date, today=today,
                           carry_days=carry_days, fee_bps=fee_bps).items)
    result = Classified(counts=counts, items=found, statement_keys=pl.scan_parquet(keys_path),
                        payment_amount=amounts["payment"], refund_amount=amounts["refund"], fee_amount=amounts["fee"])
    return result, local or {}


def statement_totals_of(lines: pl.DataFrame, into: dict[str, int] | None) -> dict[str, int]:
    """The running totals of the statement's lines (match.statement_totals), one piece more."""
    return add_totals(into, statement_totals(lines))
