"""Alembic migrations of the paymux schema (`paymux db upgrade`)."""
