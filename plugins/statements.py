"""Column-wise helpers for the built-in plugins' statement parsers: millions of lines are read by
polars into string columns, checked with one regular expression per column, and converted at once.
Any line that does not fit is named in the StatementInvalid raised.

A statement arrives as a file on disk (Channel.read_statement, what reconciliation calls) or as bytes
(parse_statement): `Source` is either, and the helpers here read a file by its ends and in pieces, so a
parser that reads each piece with polars never holds the whole file, only the columns it keeps."""
from __future__ import annotations

import csv
import io
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Mapping

import polars as pl

from gateway.channel import STATEMENT_COLUMNS, ParsedStatement, StatementInvalid

SCHEMA = {name: getattr(pl, kind) for name, kind in STATEMENT_COLUMNS.items()}
CHUNK = 1 << 20
PIECE = 16 << 20

Source = Path | bytes   # the statement file, or its bytes


@contextmanager
def opened(source: Source) -> Iterator[BinaryIO]:
    """The statement as a binary stream (BytesIO over bytes shares them, it does not copy)."""
    if isinstance(source, bytes):
        yield io.BytesIO(source)
    else:
        with open(source, "rb") as stream:
            yield stream


def ends(source: Source, tail: int = 1 << 16) -> tuple[bytes, bytes, int]:
    """The first line, the last `tail` bytes and the size of the statement, the middle unread: a
    statement's header and its summary are at its ends."""
    with opened(source) as stream:
        size = stream.seek(0, io.SEEK_END)
        stream.seek(0)
        first = stream.readline()
        start = max(0, size - tail)
        stream.seek(start)
        return first, stream.read(), start


def line_pieces(source: Source, start: int, end: int, size: int | None = None) -> Iterator[tuple[bytes, int]]:
    """The bytes [start, end) of the statement in pieces of about `size` that end at a line's end, each
    with the line number of its first line (`start` is a line's start): a parser reads a file of any
    size piece by piece, in polars, holding one piece and the columns it keeps. Read, not mapped: a
    memory-mapped file would count in the process's memory as it is read. size: PIECE unless given."""
    size = size or PIECE
    with opened(source) as stream:
        line = lines_before(source, start)
        stream.seek(start)
        left = end - start
        carry = b""
        while left > 0 or carry:
            block = stream.read(min(size, left)) if left > 0 else b""
            left = left - len(block) if block else 0
            last = not (left > 0 and block)
            cut = len(block) if last else block.rfind(b"\n") + 1
            if cut == 0 and not last:          # no line end in it yet: read on
                carry += block
                continue
            # one copy: the carried start of a line and the block up to its last line end
            piece = carry + block if cut == len(block) else b"".join((carry, memoryview(block)[:cut]))
            carry = block[cut:]
            yield piece, line
            line += piece.count(b"\n")


def lines_before(source: Source, offset: int) -> int:
    """How many lines begin before byte `offset` (the line of the byte at offset), reading in chunks."""
    count, read = 0, 0
    with opened(source) as stream:
        while read < offset:
            chunk = stream.read(min(CHUNK, offset - read))
            if not chunk:
                break
            count += chunk.count(b"\n")
            read += len(chunk)
    return count + 1


def read_table(text: bytes, header_line: int, columns: Iterable[str], what: str,
               n_rows: int | None = None) -> pl.DataFrame:
    """CSV (UTF-8 bytes, the header on the first line) read as strings, only `columns`, with
    `line_no` (the line of the file; the header is on header_line). n_rows: read no further (so a
    trailer need not be cut off, which would copy the file)."""
    wanted = list(columns)
    header = next(csv.reader(io.StringIO(text[:text.find(b"\n") + 1].decode("utf-8", "replace"))), [])
    header = [h.strip().lstrip("\ufeff").lstrip("`") for h in header]
    missing = [c for c in wanted if c not in header]
    if missing:
        raise StatementInvalid(f"the {what} header lacks {', '.join(missing)}", header_line)
    try:
        frame = pl.read_csv(text, has_header=True, new_columns=header, columns=wanted, n_rows=n_rows,
                            infer_schema=False, encoding="utf8", quote_char='"', truncate_ragged_lines=False)
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        line = _bad_line(text, len(header), header_line)
        reason = (f"not UTF-8, or not {len(header)} cells" if line is not None
                  else str(exc).splitlines()[0][:200])
        raise StatementInvalid(f"the {what} rows cannot be read: {reason}", line) from None
    return frame.with_row_index("line_no", offset=header_line + 1).with_columns(pl.col("line_no").cast(pl.Int64))


def _bad_line(text: bytes, width: int, header_line: int) -> int | None:
    """The first line (of the file) that is not UTF-8 or has the wrong number of cells."""
    for offset, raw in enumerate(text.split(b"\n")[1:], start=header_line + 1):
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            return offset
        if len(next(csv.reader([line]))) != width:
            return offset
    return None


def first_failure(frame: pl.DataFrame, ok: pl.Series, message: str) -> None:
    """Raise StatementInvalid at the first row where `ok` is false (or null)."""
    bad = ok.fill_null(False).not_()
    if bad.any():
        row = frame.filter(bad).row(0, named=True)
        raise StatementInvalid(message.format(**row), row["line_no"])


def minor_units(frame: pl.DataFrame, column: str, decimals: int, scale_to: int) -> pl.Series:
    """A decimal column ("12.34", "-0.00600") as integers with `scale_to` decimals (2 for fen from
    yuan, 5 for 1/1000 fen), checking every cell first."""
    cells = frame[column]
    ok = cells.str.contains(rf"^-?\d{{1,15}}\.\d{{{decimals}}}$")
    if not ok.fill_null(False).all():
        first_failure(frame, ok, f"{column} {{{column}!r}} is not an amount with {decimals} decimals")
    digits = cells.str.replace(".", "", literal=True).cast(pl.Int64)
    return digits * 10 ** (scale_to - decimals)


def normalized(frame: pl.DataFrame, totals: Mapping[str, int] | None) -> ParsedStatement:
    """Select and type the normalized columns; an empty statement of a day without business is fine. A
    statement that says nothing of a kept discount settles all of each line (settled_amount null)."""
    if "settled_amount" not in frame.columns:
        frame = frame.with_columns(settled_amount=pl.lit(None, pl.Int64))
    return ParsedStatement(frame.select([pl.col(name).cast(kind) for name, kind in SCHEMA.items()]), totals)


def empty_check(content: bytes) -> None:
    if not content or not content.strip():
        raise StatementInvalid("the file is empty")


def line_of(content: bytes, offset: int) -> int:
    return content.count(b"\n", 0, offset) + 1
