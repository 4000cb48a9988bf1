"""Every call the core makes to a channel goes through `ChannelCalls`: whatever goes wrong in a plugin
is UNKNOWN, never FAILED. Its health is recorded (the router's circuit breaker), its latency and
outcome counted (metrics), its HTTP exchanges kept under a reference (gateway/exchanges.py), and it is
logged with the request's id (`channel.call`)."""
from __future__ import annotations

import time
from typing import Awaitable, Callable, TypeVar

import httpx
from structlog.typing import FilteringBoundLogger

from gateway.channel import Outcome, PaymentResult, PayoutResult, RefundResult, SplitResult, unstorable
from gateway.exchanges import ExchangeRecorder, exchange_context
from gateway.health import HealthBoard
from gateway.metrics import Metrics
from gateway.plugins import ChannelAccount

R = TypeVar("R", PaymentResult, RefundResult, PayoutResult, SplitResult)
Unknown = Callable[[str, str], R]


class ChannelCalls:
    def __init__(self, health: HealthBoard, log: FilteringBoundLogger, metrics: Metrics | None = None,
                 exchanges: ExchangeRecorder | None = None) -> None:
        self.health, self.log, self.metrics, self.exchanges = health, log, metrics, exchanges

    async def call(self, account: ChannelAccount, operation: str, fn: Callable[[], Awaitable[R]],
                   unknown: Unknown[R], local: bool = False, reference: str | None = None) -> R:
        """Call the channel. `local`: a create the plugin answers without calling out (a signed link),
        recorded but not logged."""
        started = time.perf_counter()
        try:
            with exchange_context(account.id, operation, reference):
                result = await fn()
        except Exception as exc:  # noqa: BLE001  a plugin's failure must not decide money
            seconds = time.perf_counter() - started
            if self.exchanges is not None and not local:
                self.exchanges.failed(account.id, operation, reference, f"{type(exc).__name__}: {exc}", seconds)
            self.health.record(account.id, operation, ok=False, timeout=isinstance(exc, httpx.TimeoutException),
                               seconds=seconds)
            if self.metrics is not None:
                self.metrics.channel_call(account.id, operation, "error", seconds)
            self.log.warning("channel.call_failed", channel_account=account.id, operation=operation,
                             error=type(exc).__name__, detail=str(exc)[:200])
            return unknown("channel_unreachable", f"{type(exc).__name__}: {str(exc)[:200]}")
        seconds = time.perf_counter() - started
        if unstorable(result):   # verified or not, no record can keep it: as good as no answer
            self.log.error("channel.unstorable_answer", channel_account=account.id, operation=operation)
            result = unknown("unstorable_answer", "the channel's answer holds a NUL or a lone surrogate")
        self.health.record(account.id, operation, ok=result.outcome is not Outcome.UNKNOWN, timeout=False,
                           seconds=seconds)
        if self.metrics is not None:
            self.metrics.channel_call(account.id, operation, result.outcome.value, seconds)
        if not local:   # a query is routine (the janitor asks every open payment): debug; what it changes is info
            (self.log.debug if operation.startswith("query") else self.log.info)(
                "channel.call", channel_account=account.id, operation=operation, outcome=result.outcome.value,
                ms=round(seconds * 1000, 1))
        return result

    def payment(self, account: ChannelAccount, operation: str, fn: Callable[[], Awaitable[PaymentResult]],
                reference: str, local: bool = False) -> Awaitable[PaymentResult]:
        return self.call(account, operation, fn, unknown_payment, local, reference)

    def refund(self, account: ChannelAccount, operation: str, fn: Callable[[], Awaitable[RefundResult]],
               reference: str) -> Awaitable[RefundResult]:
        return self.call(account, operation, fn, unknown_refund, reference=reference)

    def payout(self, account: ChannelAccount, operation: str, fn: Callable[[], Awaitable[PayoutResult]],
               reference: str) -> Awaitable[PayoutResult]:
        return self.call(account, operation, fn, unknown_payout, reference=reference)

    def split(self, account: ChannelAccount, operation: str, fn: Callable[[], Awaitable[SplitResult]],
              reference: str) -> Awaitable[SplitResult]:
        return self.call(account, operation, fn, unknown_split, reference=reference)


def unknown_payment(code: str, message: str) -> PaymentResult:
    return PaymentResult(Outcome.UNKNOWN, error_code=code, error_message=message)


def unknown_refund(code: str, message: str) -> RefundResult:
    return RefundResult(Outcome.UNKNOWN, error_code=code, error_message=message)


def unknown_payout(code: str, message: str) -> PayoutResult:
    return PayoutResult(Outcome.UNKNOWN, error_code=code, error_message=message)


def unknown_split(code: str, message: str) -> SplitResult:
    return SplitResult(Outcome.UNKNOWN, error_code=code, error_message=message)
