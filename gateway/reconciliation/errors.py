"""Reconciliation's one error: a code an operator can act on (HTTP 400 where an API shows it)."""
from __future__ import annotations

from gateway.errors import PaymuxError


class ReconError(PaymuxError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(400, "invalid_request_error", code, message)
