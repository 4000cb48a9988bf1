"""The risk hook: plugins judge a payment before it is created, within a latency budget."""
from __future__ import annotations

import asyncio
from typing import Any, Mapping

import pluggy

from gateway.errors import PaymuxError
from gateway.hookspecs import RiskDecision, RiskRequest, rules_key

__all__ = ["RiskDecision", "RiskGate", "RiskRequest"]   # the types live in the contract (hookspecs)


class RiskGate:
    def __init__(self, pm: pluggy.PluginManager, config: Mapping[str, Any], log: Any) -> None:
        # A rule plugin with no rules configured is not asked (it would only cost a thread hop).
        idle = [plugin for plugin in pm.get_plugins()
                if (key := rules_key(plugin)) and not config.get(key)]
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
