"""Moved: reconciliation's matching core is gateway/reconciliation/match.py (it matches statements
against the gateway's attempts, refunds and payouts; the ledger keeps only the books).

TRANSITIONAL, and the one place the ledger reaches into gateway/: gateway/testing/conformance.py still
imports `totals_disagree` from here. Delete this module once it imports gateway.reconciliation.match.
"""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    from gateway.reconciliation import match

    return getattr(match, name)
