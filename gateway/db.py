"""Engine and transactions. SQLite (WAL) is the embedded default; PostgreSQL by URL.

The HTTP layer is async; database work runs in worker threads through `Database.run`, so
the event loop never waits on a disk or a socket to the database.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import anyio.to_thread
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

import migrations

T = TypeVar("T")
MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent


def normalize_url(url: str) -> str:
    """Accept the plain `postgresql://` form and use the psycopg 3 driver for it."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
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
    return create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True)


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(url), "head")


def schema_state(engine: Engine) -> tuple[str | None, str]:
    """(current revision in the database, head revision of the code)."""
    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head


class Database:
    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    async def run(self, fn: Callable[..., T], *args) -> T:
        return await anyio.to_thread.run_sync(fn, *args)

    async def tx(self, fn: Callable[[Connection], T]) -> T:
        """Run fn(conn) inside one transaction, in a worker thread."""

        def work() -> T:
            with self.transaction() as conn:
                return fn(conn)

        return await anyio.to_thread.run_sync(work)

    def dispose(self) -> None:
        self.engine.dispose()


def make_url_safe(url: str) -> str:
    """The URL with any password hidden, for messages."""
    return make_url(normalize_url(url)).render_as_string(hide_password=True)
