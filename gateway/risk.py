"""The risk hook: plugins judge a payment before it is created, within a latency budget."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping

from gateway.errors import PaymuxError


@dataclass(frozen=True)
class RiskDecision:
    verdict: str           # deny | review
    reason: str

    @classmethod
    def deny(cls, reason: str) -> "RiskDecision":
        return cls("deny", reason)

    @classmethod
    def review(cls, reason: str) -> "RiskDecision":
        return cls("review", reason)


@dataclass(frozen=True)
class RiskRequest:
    merchant_id: str
    amount: int
    currency: str
    method: str | None
    channel: str | None
    client_ip: str | None
    metadata: Mapping[str, str]
    config: Mapping[str, Any]                     # the [risk] table of the gateway config
    now: datetime
    # history(key, value, since) -> (count, amount) of this merchant's payments created since `since`
    # whose key is value: key "merchant" (value ignored) or a metadata key such as "payer_id".
    history: Callable[[str, str, datetime], tuple[int, int]] = field(repr=False, default=lambda *a: (0, 0))


class RiskGate:
    def __init__(self, pm: Any, config: Mapping[str, Any], log: Any) -> None:
        # A rule plugin with no rules configured is not asked (it would only cost a thread hop).
        idle = [plugin for plugin in pm.get_plugins()
                if getattr(plugin, "RULES_KEY", None) and not config.get(plugin.RULES_KEY)]
        self.assess = pm.subset_hook_caller("assess_payment", remove_plugins=idle)
        self.enabled = bool(self.assess.get_hookimpls())
        self.config = config
        self.budget = float(config.get("budget_ms", 100)) / 1000
        self.on_timeout = str(config.get("on_timeout", "allow"))   # allow | deny
        self.log = log

    async def check(self, request: RiskRequest) -> None:
        """Raise 403 payment_denied / payment_review when a plugin says so."""
        if not self.enabled:
            return
        try:
            decisions = await asyncio.wait_for(asyncio.to_thread(self.assess, request=request), self.budget)
        except asyncio.TimeoutError:
            self.log.warning("risk.timeout", merchant_id=request.merchant_id, policy=self.on_timeout)
            if self.on_timeout == "deny":
                raise PaymuxError(403, "invalid_request_error", "payment_denied",
                                  "Risk checks did not answer in time") from None
            return
        decisions = [d for d in decisions if d is not None]
        for verdict, code in (("deny", "payment_denied"), ("review", "payment_review")):
            found = [d for d in decisions if d.verdict == verdict]
            if found:
                self.log.info("risk.decision", merchant_id=request.merchant_id, verdict=verdict,
                              reason=found[0].reason)
                raise PaymuxError(403, "invalid_request_error", code, found[0].reason)
