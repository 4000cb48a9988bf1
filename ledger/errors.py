"""Ledger errors: each names the invariant it protects."""
from __future__ import annotations


class LedgerError(Exception):
    code = "ledger_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnbalancedEntry(LedgerError):
    code = "unbalanced_entry"


class InvalidEntry(LedgerError):
    """Fewer than two postings, a zero amount, a currency that does not match its account."""

    code = "invalid_entry"


class EntryConflict(LedgerError):
    """The idempotency key exists with different postings."""

    code = "entry_conflict"


class InsufficientBalance(LedgerError):
    """A posting would take a must-not-go-negative account below zero."""

    code = "insufficient_balance"

    def __init__(self, message: str, account: str) -> None:
        super().__init__(message)
        self.account = account


class AlreadyReversed(LedgerError):
    code = "already_reversed"

