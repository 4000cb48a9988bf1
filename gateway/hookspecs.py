"""The plugin contract. This is the one file a channel-plugin author must read.

A plugin is a module or object listed under the `paymux` entry-point group, e.g. in its
pyproject.toml:

    [project.entry-points.paymux]
    mychannel = "paymux_mychannel"

and implements the hooks below with `@gateway.hookspecs.hookimpl`. The channel types it
registers subclass `gateway.channel.Channel` (read that package for the normalized types). The
built-in plugins (plugins/) are found and registered exactly the same way.

This module imports nothing from the rest of paymux: a plugin depends on the contract, not the core.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping

import pluggy

PROJECT = "paymux"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_channels(register: Callable[[type], None]) -> None:
    """Called once at start-up: call register(ChannelSubclass) for each channel type offered."""


@hookspec
def assess_payment(request: RiskRequest) -> RiskDecision | None:
    """Called before a payment is created: return RiskDecision.deny(reason) or .review(reason) to stop
    it, or None to let it through. Every implementation is asked; any deny wins, then any review."""


# ---- what a risk plugin sees and answers ----

# A risk plugin may name the table of [risk] its rules are read from with a module-level
# RULES_KEY = "name" ([risk.name]); while that table is empty or missing, the plugin is not asked.
RULES_ATTRIBUTE = "RULES_KEY"


def rules_key(plugin: object) -> str | None:
    """The [risk] table a registered plugin declares with RULES_KEY, or None (asked always).
    Discovery refuses a plugin whose RULES_KEY is not a non-empty string."""
    return getattr(plugin, RULES_ATTRIBUTE, None)


@dataclass(frozen=True)
class RiskDecision:
    verdict: str           # deny | review
    reason: str

    @classmethod
    def deny(cls, reason: str) -> RiskDecision:
        return cls("deny", reason)

    @classmethod
    def review(cls, reason: str) -> RiskDecision:
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
