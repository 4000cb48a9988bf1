"""The migrations build exactly the tables the models describe, on both databases."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from gateway.models import SQLModel


def test_the_migrated_schema_matches_the_models(db_url: str) -> None:
    from gateway.db import normalize_url

    engine = create_engine(normalize_url(db_url))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), SQLModel.metadata)
    engine.dispose()
    ledger_tables = {"ledger_accounts", "ledger_entries", "ledger_postings"}
    diff = [d for d in diff if not (d[0] == "remove_table" and d[1].name in ledger_tables)]
    assert diff == []
