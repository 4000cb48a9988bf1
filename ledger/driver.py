"""Prebuilt SQL sent on the database driver's own cursor, for the hottest writes: the ledger's
statements and a callback's record.

`Connection.execute` (and `exec_driver_sql`) builds an execution context and a result object around
every execution: about as much CPU in Python as the driver's own work for one entry. Here the statement
is text built once, its parameters a plain dict (converted by their columns' types where they need it,
`bound`), its rows plain tuples. Only for statements whose results are integers or text: nothing is
converted on the way back.

Statements whose results nobody reads, written last in their transaction (a callback's record, an event,
a credit that cannot break a no-negative rule), can instead be sent with the transaction's COMMIT in one
round trip on PostgreSQL (`at_commit`, then `commit_pending`, through psycopg's pipeline): fewer round
trips, and the rows they lock are held only while PostgreSQL runs them and makes the commit durable.

What SQLAlchemy would do is kept: its `before_cursor_execute` listeners hear the statement (so counters
of statements count it), and a driver error goes through the connection's own handling, so it is
raised as SQLAlchemy's DBAPIError (which `Database.run_tx` reads to retry a deadlock or a connection
lost before COMMIT) and a lost connection is invalidated.
"""
from __future__ import annotations

import collections
import functools
import re
import weakref
from typing import Any, Callable, Mapping, NamedTuple, Sequence

from sqlalchemy import Connection, Executable, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import Compiled

_NAMED = re.compile(r"(?<![:\w]):(\w+)")
# What each transaction keeps for its COMMIT, by its Connection object (set by allow_at_commit, dropped by
# forget_pending when the transaction ends; unlike conn.info, it can be read once the connection was lost).
_PENDING: "weakref.WeakKeyDictionary[Connection, list[tuple[str, Any]]]" = weakref.WeakKeyDictionary()


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


class _Compiled(NamedTuple):
    compiled: Compiled
    binds: dict[str, Callable[[Any], Any]]
    results: tuple[Callable[[Any], Any] | None, ...]
    row: type


@functools.lru_cache(maxsize=64)
def _compiled(statement: Executable, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)
    columns = compiled._result_columns   # noqa: SLF001  (key, name, objects, type) per column, in order
    results = tuple(column[3].dialect_impl(dialect).result_processor(dialect, None) for column in columns)
    return _Compiled(compiled, dict(compiled._bind_processors), results,   # noqa: SLF001
                     collections.namedtuple("Row", [column[0] for column in columns]))


def first(conn: Connection, statement: Executable, params: Mapping[str, Any]) -> Any | None:
    """The first row of a prebuilt Core statement (None: no row), its values converted by their types
    both ways as SQLAlchemy would, read by name like a Row. On PostgreSQL sent on the driver's cursor,
    compiled once (SQLAlchemy's execution, its cache key walked over the statement each time, cost more
    than a callback's lookup or state change itself); elsewhere through SQLAlchemy."""
    if conn.dialect.name != "postgresql":
        return conn.execute(statement, params).first()
    c = _compiled(statement, conn.dialect)
    values = c.compiled.construct_params(params)   # with the statement's own values (its states, its LIMIT)
    for name, convert in c.binds.items():
        if name in values:
            values[name] = convert(values[name])
    rows = fetch_all(conn, c.compiled.string, values)
    if not rows:
        return None
    return c.row(*(value if convert is None else convert(value) for convert, value in zip(c.results, rows[0])))


def allow_at_commit(conn: Connection) -> None:
    """The owner of conn's transaction will call commit_pending (or forget_pending): at_commit may keep
    statements for it."""
    _PENDING[conn] = []


def at_commit(conn: Connection, sql: str, params: Mapping[str, Any]) -> None:
    """Execute `sql` (in the driver's style; no rows back) with the transaction's COMMIT, in one round trip,
    where the transaction's owner allowed it (allow_at_commit); else now. Only for a statement nothing in
    the transaction reads after it: an error it meets surfaces at commit and fails the transaction whole."""
    pending = _PENDING.get(conn) if conn.dialect.name == "postgresql" else None
    if pending is None:
        execute(conn, sql, params)
        return
    if not conn.in_transaction():
        conn.begin()
    pending.append((sql, params))


def commit_pending(conn: Connection) -> bool:
    """Send the statements kept for the commit and COMMIT, in one pipeline (one round trip). False when
    none were kept: the caller commits as usual. An error (a statement's, or the commit's: a deferred
    constraint) is raised as SQLAlchemy raises it, and nothing of the transaction is committed unless the
    connection was lost while the COMMIT was on its way (then the outcome is unknown, as for any commit)."""
    pending = _PENDING.pop(conn, None)
    if not pending:
        return False
    raw = conn.connection.driver_connection
    cursor = raw.cursor()
    sql, params = pending[0]
    try:
        with raw.pipeline():
            for sql, params in pending:
                conn.dispatch.before_cursor_execute(conn, cursor, sql, params, None, False)
                cursor.execute(sql, params)
            # COMMIT as one more statement of the pipeline, not raw.commit(): that would sync the pipeline
            # for its answer, and leaving the pipeline then syncs again, a second round trip for nothing.
            # SQLAlchemy's commit that follows finds the transaction over and sends nothing.
            sql, params = "COMMIT", None
            cursor.execute(sql)
    except Exception as exc:  # noqa: BLE001  raised again, as SQLAlchemy raises it
        conn._handle_dbapi_exception(exc, sql, params, cursor, None)   # noqa: SLF001  always raises
        raise
    finally:
        cursor.close()
    return True


def forget_pending(conn: Connection) -> None:
    """conn's transaction is over (committed or rolled back): drop anything still kept for it."""
    _PENDING.pop(conn, None)
