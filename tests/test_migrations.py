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
