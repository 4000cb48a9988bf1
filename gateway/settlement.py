"""Moved: settlement is gateway/reconciliation/settlement.py, the daily report gateway/reports.py.
These names stay importable from here until the CLI imports them from their homes."""
from __future__ import annotations

from gateway.reconciliation.settlement import BLOCKING, SettlementRefused, SettleReport, Settler
from gateway.reports import daily_report

__all__ = ["BLOCKING", "SettleReport", "SettlementRefused", "Settler", "daily_report"]
