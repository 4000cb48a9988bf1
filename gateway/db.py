"""Engine and transactions. SQLite (WAL) is the embedded default; PostgreSQL by URL.

The HTTP layer is async; database work runs in worker threads through `Database.run`, so
the event loop never waits on a disk or a socket to the database.
"""
from __future__ import annotations

import asyncio
import contextvars
import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Row, Table, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

import migrations
from gateway.config import DATABASE_THREADS
from ledger import driver, slots

T = TypeVar("T")
MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent
_ON_ROLLBACK = "paymux.on_rollback"
_DB_THREAD = "paymux-db"
_LOST_BEFORE_COMMIT = "paymux_lost_before_commit"


def normalize_url(url: str) -> str:
    """Accept the plain `postgresql://` form and use the psycopg 3 driver for it."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def private_database_file(url: str) -> None:
    """SQLite: the database file readable and writable by its owner only (it holds password hashes
    and sealed secrets). Made 0600 before SQLite first opens it, which gives its -wal, -shm and
    -journal files the same mode; an existing file (or its companions) with wider rights is tightened."""
    parsed = make_url(normalize_url(url))
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:") \
            or parsed.query.get("mode") == "memory":
        return
    path = Path(parsed.database)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))   # an empty file is an empty database
    except (FileExistsError, FileNotFoundError):   # there already; or no such folder, which SQLite will say
        pass
    for each in (path, *(path.with_name(path.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
        try:
            mode = stat.S_IMODE(each.stat().st_mode)
            if mode & 0o077:
                each.chmod(mode & 0o700)
        except (FileNotFoundError, PermissionError):   # absent, or another user's file we may only use
            pass


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        private_database_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            # Let SQLAlchemy, not the driver, open transactions, so BEGIN IMMEDIATE below holds.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # noqa: ANN001
            # Take the write lock up front: two readers upgrading to writers would deadlock.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # No ping before each check-out (a round trip per transaction): a connection that died meanwhile
    # (PostgreSQL restarted) fails its first statement, SQLAlchemy then drops the pool's older
    # connections, and run_tx runs the transaction again, as nothing of it can have been committed.
    engine = create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=False)

    @event.listens_for(engine, "connect")
    def _claim_ledger_slot(dbapi_conn, record):  # noqa: ANN001
        # The connection's balance slot, held for its life, so that no two live connections share one.
        slot = slots.claim_slot(dbapi_conn)
        if slot is not None:
            record.info[slots.SLOT_INFO] = slot

    return engine


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, secret_key: str | None = None) -> None:
    """Migrate to the head revision. secret_key: for migrations that seal what earlier ones kept in
    the clear (0014 seals names and account references); needed only when such rows exist."""
    from alembic import command

    private_database_file(url)
    cfg = alembic_config(url)
    cfg.attributes["secret_key"] = secret_key
    command.upgrade(cfg, "head")


def schema_state(engine: Engine) -> tuple[str | None, str]:
    """(current revision in the database, head revision of the code)."""
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head


class Database:
    def __init__(self, url: str, threads: int | None = None) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url)
        self.dialect = self.engine.dialect.name
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        # SQLite has one writer at a time. Queueing our own threads on a lock is far cheaper than
        # letting them poll SQLite's busy handler, which sleeps for up to 100 ms between tries.
        # (Other processes on the same file still meet busy_timeout; correctness never rests on this lock.)
        self._write_lock = threading.Lock() if self.is_sqlite else None
        # Database work runs in a pool of our own: a plain executor hands work over faster than
        # anyio's default limiter (measured ~150 µs against ~250 µs a hop here), and for SQLite,
        # whose writes are serial anyway, one thread keeps its connection and caches warm. On
        # PostgreSQL, `threads` ([database] threads): 16 cost more than 4 or 8 in GIL hand-offs and in
        # PostgreSQL's own CPU, for no more transactions a second (docs/design-notes.md).
        self._local = threading.local()
        self._open: list[Connection] = []
        self._executor = ThreadPoolExecutor(max_workers=1 if self.is_sqlite else threads or DATABASE_THREADS,
                                            thread_name_prefix=_DB_THREAD)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction. Functions appended to on_rollback(conn) run if it does not commit."""
        hooks: list[Callable[[], None]] = []
        try:
            if self._write_lock is None:
                with self._pg_transaction() as conn:
                    conn.info[_ON_ROLLBACK] = hooks
                    driver.allow_at_commit(conn)   # what is kept for the commit goes with it
                    try:
                        yield conn
                        driver.commit_pending(conn)
                    finally:
                        driver.forget_pending(conn)
            elif threading.current_thread().name.startswith(_DB_THREAD):
                with self._write_lock, self._thread_connection().begin():
                    conn = self._local.conn
                    conn.info[_ON_ROLLBACK] = hooks
                    yield conn
            else:  # another thread (a command, a test): a pooled connection for this transaction only
                with self._write_lock, self.engine.begin() as conn:
                    conn.info[_ON_ROLLBACK] = hooks
                    yield conn
        except BaseException:
            for hook in hooks:
                hook()
            raise

    @contextmanager
    def _pg_transaction(self) -> Iterator[Connection]:
        if threading.current_thread().name.startswith(_DB_THREAD):
            conn = self._thread_connection()
            with conn.begin():
                yield conn
        else:   # another thread (a command, a test): a pooled connection for this transaction only
            with self.engine.begin() as conn:
                yield conn

    def _thread_connection(self) -> Connection:
        """A database thread keeps one open connection, which spares a pool check-out and check-in per
        transaction (~30 µs of the GIL a callback on PostgreSQL). One that was lost is replaced at its
        next transaction by SQLAlchemy (invalidated, it opens another from the pool)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = self.engine.connect()
            self._open.append(conn)
        return conn

    async def run(self, fn: Callable[..., T], *args) -> T:
        """Run fn(*args) in a database thread, with the caller's context (request id, log bindings)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, contextvars.copy_context().run, fn,
                                                                *args)

    def run_tx(self, fn: Callable[[Connection], T]) -> T:
        """fn(conn) in one transaction, run again (bounded) after a deadlock or serialization failure,
        or when the connection was lost before COMMIT was sent (nothing of it can have been committed;
        lost during COMMIT, the outcome is unknown and the error is raised)."""
        try:   # nearly every transaction commits at once: tried before any retry loop is built (~13 µs)
            return self._once(fn)
        except Exception as exc:  # noqa: BLE001  raised again unless worth another try
            if not _worth_again(exc):
                raise
            failed: Exception | None = exc
        for attempt in Retrying(retry=retry_if_exception(_worth_again), stop=stop_after_attempt(5),
                                wait=wait_random_exponential(multiplier=0.01, max=0.5), reraise=True):
            with attempt:
                if failed is not None:   # the try above, counted as tenacity's first: it waits, then tries again
                    exc, failed = failed, None
                    raise exc
                return self._once(fn)
        raise AssertionError("unreachable")

    def _once(self, fn: Callable[[Connection], T]) -> T:
        committing = False
        try:
            with self.transaction() as conn:
                result = fn(conn)
                committing = True
            return result
        except DBAPIError as exc:
            if exc.connection_invalidated and not committing:
                setattr(exc, _LOST_BEFORE_COMMIT, True)
            raise

    async def tx(self, fn: Callable[[Connection], T]) -> T:
        """Run fn(conn) inside one transaction, in a database thread."""
        return await self.run(self.run_tx, fn)

    @property
    def connectorx_url(self) -> str:
        """The same database as connectorx names it (bulk reads straight into Arrow)."""
        return _connectorx_url(self.url)

    def bulk_time(self, column: str) -> str:
        """SQL for a timestamp column in a bulk read: SQLite's stored text, cut to seconds (parsed
        column-wise later, faster than per value); PostgreSQL's timestamptz as it is (binary)."""
        if self.dialect == "sqlite":
            return f"substr({column}, 1, 19)"
        return column

    def literal_time(self, at: datetime) -> str:
        """An aware datetime as a SQL literal comparable with the stored timestamps (bulk queries only)."""
        utc = at.astimezone(UTC)
        if self.dialect == "sqlite":
            return f"'{utc.strftime('%Y-%m-%d %H:%M:%S.%f')}'"
        return f"'{utc.isoformat()}'::timestamptz"

    def dispose(self) -> None:
        self._executor.shutdown(wait=True)
        for conn in self._open:
            conn.close()
        self.engine.dispose()


def _connectorx_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        return "sqlite://" + str(Path(parsed.database or "").resolve())
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def on_rollback(conn: Connection, hook: Callable[[], None]) -> None:
    """Run hook if the transaction conn belongs to is rolled back instead of committed."""
    conn.info[_ON_ROLLBACK].append(hook)


def _worth_again(exc: BaseException) -> bool:
    return is_transient(exc) or getattr(exc, _LOST_BEFORE_COMMIT, False)


def is_transient(exc: BaseException) -> bool:
    """A failure that the same transaction, run again, may not meet: deadlock, serialization, lock."""
    if not isinstance(exc, DBAPIError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in ("40001", "40P01", "55P03"):
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


def make_url_safe(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return make_url(normalize_url(url)).render_as_string(hide_password=True)


def owned_row(conn: Connection, table: Table, merchant_id: str, what: str, ident: str, column: str = "id") -> Row:
    """The row of `table` whose `column` is `ident` and which belongs to the merchant, or a 404:
    another merchant's payment, refund, split or payout is as invisible as a missing one."""
    from sqlalchemy import and_, select

    from gateway.errors import not_found

    row = conn.execute(select(table).where(and_(table.c[column] == ident, table.c.merchant_id == merchant_id))).first()
    if row is None:
        raise not_found(what, ident)
    return row
