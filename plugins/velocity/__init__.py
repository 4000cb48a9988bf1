"""A built-in risk rule: per-merchant and per-payer amount and count limits over a time window.

    [risk.velocity]
    merchant_max_count_per_hour = 1000
    merchant_max_amount_per_hour = 10000000      # minor units
    payer_key = "payer_id"                        # the metadata key that names the payer
    payer_max_count_per_day = 20
    payer_max_amount_per_day = 500000
"""
from __future__ import annotations

from datetime import timedelta

from gateway.hookspecs import RiskDecision, RiskRequest, hookimpl

RULES_KEY = "velocity"   # [risk.velocity] in the config; without it this plugin is not asked


@hookimpl
def assess_payment(request: RiskRequest) -> RiskDecision | None:
    rules = request.config.get(RULES_KEY) or {}
    if not rules:
        return None
    checks = [("merchant", "", timedelta(hours=1), "merchant_max_count_per_hour", "merchant_max_amount_per_hour")]
    payer_key = rules.get("payer_key", "payer_id")
    if request.metadata.get(payer_key):
        checks.append((payer_key, request.metadata[payer_key], timedelta(days=1), "payer_max_count_per_day",
                       "payer_max_amount_per_day"))
    for key, value, span, count_rule, amount_rule in checks:
        if count_rule not in rules and amount_rule not in rules:
            continue
        count, amount = request.history(key, value, request.now - span)
        who = "this merchant" if key == "merchant" else "this payer"
        if count_rule in rules and count + 1 > rules[count_rule]:
            return RiskDecision.deny(f"{who} has made {count} payments in the last {span}; the limit is "
                                     f"{rules[count_rule]}")
        if amount_rule in rules and amount + request.amount > rules[amount_rule]:
            return RiskDecision.deny(f"{who} would pass {rules[amount_rule]} in the last {span}")
    return None
