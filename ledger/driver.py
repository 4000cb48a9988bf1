"""Prebuilt SQL sent on the database driver's own cursor, for the hottest writes: the ledger's
statements and a callback's record.

`Connection.execute` (and `exec_driver_sql`) builds an execution context and a result object around
every execution: about as much CPU in Python as the driver's own work for one entry. Here the statement
is text built once, its parameters a plain dict (converted by their columns' types where they need it,
`bound`), its rows plain tuples. Only for statements whose results are integers or text: nothing is
converted on the way back.

What SQLAlchemy would do is kept: its `before_cursor_execute` listeners hear the statement (so counters
of statements count it), and a driver error goes through the connection's own handling, so it is
raised as SQLAlchemy's DBAPIError (which `Database.run_tx` reads to retry a deadlock or a connection
lost before COMMIT) and a lost connection is invalidated.
"""
from __future__ import annotations

import functools
import re
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect

_NAMED = re.compile(r"(?<![:\w]):(\w+)")


@functools.lru_cache(maxsize=256)
def in_style(sql: str, dialect: str) -> str:
    """SQL written with `:name` parameters, in the driver's style (psycopg: `%(name)s`; sqlite3 takes `:name`)."""
    return sql if dialect == "sqlite" else _NAMED.sub(r"%(\1)s", sql)


@functools.lru_cache(maxsize=64)
def _converters(table: Table, dialect: Dialect) -> dict[str, Callable[[Any], Any]]:
    converters = {}
    for column in table.c:
        convert = column.type.dialect_impl(dialect).bind_processor(dialect)
        if convert is not None:
            converters[column.name] = convert
    return converters


def bound(conn: Connection, table: Table, params: Mapping[str, Any]) -> dict[str, Any]:
    """The values of a row of `table` as SQLAlchemy would send them to this driver: each converted by its
    column's type (a timestamp made UTC text for SQLite, say)."""
    converters = _converters(table, conn.dialect)
    return {name: converters[name](value) if name in converters else value for name, value in params.items()}


def fetch_all(conn: Connection, sql: str, params: Mapping[str, Any]) -> list[tuple]:
    """Execute `sql` (in the driver's parameter style) in the connection's transaction; its rows."""
    return _run(conn, sql, params, many=False, rows=True)


def execute(conn: Connection, sql: str, params: Mapping[str, Any]) -> None:
    """Execute `sql` (in the driver's parameter style), which returns no rows, in the connection's transaction."""
    _run(conn, sql, params, many=False, rows=False)


def execute_many(conn: Connection, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Execute `sql` (in the driver's parameter style) once per parameter set, as the driver batches them."""
    _run(conn, sql, rows, many=True, rows=False)


def _run(conn: Connection, sql: str, params: Any, many: bool, rows: bool) -> list[tuple]:
    if not conn.in_transaction():   # as SQLAlchemy's autobegin would, so that the caller's commit commits it
        conn.begin()
    cursor = conn.connection.cursor()
    try:
        conn.dispatch.before_cursor_execute(conn, cursor, sql, params, None, many)
        if many:
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
        return cursor.fetchall() if rows else []
    except Exception as exc:  # noqa: BLE001  raised again, as SQLAlchemy raises it
        conn._handle_dbapi_exception(exc, sql, params, cursor, None)   # noqa: SLF001  always raises
        raise
    finally:
        cursor.close()
