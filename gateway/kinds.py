"""The operation kinds paymux has (gateway/operations.py), in the order the janitor visits them. A new
kind is one module with its OperationKind, listed here, the migration of its table and its ledger
templates in conf/ledger.toml (start-up refuses a chart without them); docs/design-notes.md walks one."""
from __future__ import annotations

from gateway.operations import OperationKind
from gateway.payouts import PayoutKind
from gateway.refunds import RefundKind
from gateway.split_kinds import SplitKind, SplitReturnKind
from gateway.split_releases import SplitReleaseKind

BUILTIN_KINDS: tuple[type[OperationKind], ...] = (RefundKind, PayoutKind, SplitKind, SplitReturnKind,
                                                  SplitReleaseKind)
