"""The migrations build exactly the tables the models describe, on both databases."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from gateway.models import SQLModel


def test_the_migrated_schema_matches_the_models(db_url: str) -> None:
    from gateway.db import normalize_url

    engine = create_engine(normalize_url(db_url))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    engine.dispose()
    ledger_tables = {"ledger_accounts", "ledger_entries", "ledger_postings"}
    diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name in ledger_tables)]
    assert diff == []


def test_integer_keys_are_64_bit_and_stay_rowids_on_sqlite(db_url: str) -> None:
    """Ids and cursors past 2^31 fit (PostgreSQL BIGINT); SQLite keys stay INTEGER, the 64-bit rowid."""
    from gateway.db import normalize_url

    engine = create_engine(normalize_url(db_url))
    found = inspect(engine)
    keys = [(table, column) for table in found.get_table_names() if table != "alembic_version"
            for column in found.get_columns(table)
            if "INT" in str(column["type"]).upper() and (
                column["name"] in found.get_pk_constraint(table)["constrained_columns"]
                or any(column["name"] in fk["constrained_columns"] for fk in found.get_foreign_keys(table)))]
    engine.dispose()
    assert len(keys) >= 14
    expected = "INTEGER" if engine.dialect.name == "sqlite" else "BIGINT"
    assert [(table, column["name"], str(column["type"])) for table, column in keys
            if str(column["type"]) != expected] == []


def test_a_postgresql_session_open_across_the_64_bit_migration_still_books() -> None:
    """The ledger's balance trigger, planned with 32-bit ids before migration 0013, is compiled again
    after it: a gateway connection kept across the upgrade books its next entry, past 2^31."""
    import secrets

    import pytest
    from alembic import command
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from gateway.db import alembic_config, normalize_url
    from tests.conftest import NO_PG, PG_URL

    if not PG_URL:
        pytest.skip(NO_PG)
    server = make_url(normalize_url(PG_URL))
    name = "paymux_mig_" + secrets.token_hex(4)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    entry = ("INSERT INTO ledger_entries (id, key, event_type, business_date, postings_hash, created_at) "
             "VALUES (:id, :key, 't', current_date, 'h', now())")
    postings = ("INSERT INTO ledger_postings (entry_id, account_id, currency, amount, balance_after) "
                "VALUES (:id, 1, 'CNY', 5, 5), (:id, 2, 'CNY', -5, -5)")
    try:
        command.upgrade(alembic_config(url), "0011")
        with engine.connect() as kept:   # a gateway's pooled connection, open across the upgrade
            with kept.begin():
                kept.execute(text("INSERT INTO ledger_accounts (code, owner_type, owner_id, currency, normal_side, "
                                  "no_negative, balance, created_at) VALUES ('a', 'platform', '', 'CNY', 'debit', "
                                  "false, 0, now()), ('b', 'platform', '', 'CNY', 'credit', false, 0, now())"))
                kept.execute(text(entry), {"id": 1, "key": "before"})
                kept.execute(text(postings), {"id": 1})
            command.upgrade(alembic_config(url), "0013")
            with kept.begin():
                kept.execute(text(entry), {"id": 2**40, "key": "after"})
                kept.execute(text(postings), {"id": 2**40})
            assert kept.execute(text("SELECT count(*) FROM ledger_postings WHERE entry_id > 2147483647")).scalar() == 2
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
