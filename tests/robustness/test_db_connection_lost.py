"""A pooled PostgreSQL connection that died while it sat in the pool (the server restarted, a proxy
cut it) costs a transaction one more try, not an error: the pool pings nothing before a check-out
(that is a round trip per transaction), so run_tx runs the transaction again when the connection was
lost before COMMIT was sent. Lost during COMMIT, whether it committed is unknown: that is raised."""
from __future__ import annotations

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import DBAPIError

from gateway import db as dbmod

pytestmark = pytest.mark.pg


def _terminate(url: str, pids: list[int]) -> None:
    admin = create_engine(dbmod.normalize_url(url), isolation_level="AUTOCOMMIT", poolclass=None)
    with admin.connect() as conn:
        for pid in pids:
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar_one()
    admin.dispose()


def _pooled_pids(db: dbmod.Database, n: int) -> list[int]:
    """Check n connections out at once (so the pool holds n), note their server pids, check them in."""
    conns = [db.engine.connect() for _ in range(n)]
    pids = [c.execute(text("SELECT pg_backend_pid()")).scalar_one() for c in conns]
    for c in conns:
        c.rollback()
        c.close()
    return pids


def test_a_transaction_on_a_connection_that_died_in_the_pool_is_run_again(pg_database: str) -> None:
    db = dbmod.Database(pg_database)
    try:
        _terminate(pg_database, _pooled_pids(db, 3))
        calls = []

        def work(conn):  # noqa: ANN001, ANN202
            calls.append(1)
            return conn.execute(text("SELECT 1")).scalar_one()

        assert db.run_tx(work) == 1
        assert len(calls) == 2          # the dead connection's try, then a fresh one's
        # The pool dropped its other dead connections too: the next transactions need no second try.
        for _ in range(3):
            calls.clear()
            db.run_tx(work)
            assert len(calls) == 1
    finally:
        db.dispose()


def test_a_connection_lost_during_commit_is_not_run_again(pg_database: str) -> None:
    db = dbmod.Database(pg_database)
    try:
        db.run_tx(lambda conn: conn.execute(text("CREATE TABLE IF NOT EXISTS lost_commit (n integer)")))

        def cut_before_commit(conn) -> None:  # noqa: ANN001
            _terminate(pg_database, [conn.info["pid"]])

        calls = []

        def work(conn):  # noqa: ANN001, ANN202
            calls.append(1)
            conn.info["pid"] = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            conn.execute(text("INSERT INTO lost_commit VALUES (1)"))

        event.listen(db.engine, "commit", cut_before_commit)
        with pytest.raises(DBAPIError) as raised:
            db.run_tx(work)
        event.remove(db.engine, "commit", cut_before_commit)
        assert raised.value.connection_invalidated
        assert len(calls) == 1          # not run again: it might have committed
        assert db.run_tx(lambda conn: conn.execute(text("SELECT count(*) FROM lost_commit")).scalar_one()) == 0
    finally:
        db.dispose()
