"""Moved: reconciliation is the package gateway/reconciliation/ (match, run, review, store,
settlement) and its reports are in gateway/reports.py. These names stay importable from here until
the CLI, the console and the tests import them from their homes."""
from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.reconciliation import run as _run
from gateway.reconciliation.errors import ReconError
from gateway.reconciliation.review import ACTIONS, Person, approve, propose
from gateway.reconciliation.store import items, proposals, read_frame, refresh_open, runs
from gateway.reports import item_object, open_items, run_report

if TYPE_CHECKING:
    from gateway.service import Gateway

QUERY_CONCURRENCY = _run.QUERY_CONCURRENCY


def Reconciler(gateway: Gateway) -> _run.Reconciler:  # noqa: N802  the old constructor's call shape
    """`Reconciler(gw)` as before: the reconciler a running gateway's services make up."""
    return _run.Reconciler.for_gateway(gateway)


__all__ = ["ACTIONS", "QUERY_CONCURRENCY", "Person", "ReconError", "Reconciler", "approve", "item_object", "items",
           "open_items", "propose", "proposals", "read_frame", "refresh_open", "run_report", "runs"]
