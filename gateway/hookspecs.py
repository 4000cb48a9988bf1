"""The plugin contract. This is the one file a channel-plugin author must read.

A plugin is a module or object listed under the `paymux` entry-point group, e.g. in its
pyproject.toml:

    [project.entry-points.paymux]
    mychannel = "paymux_mychannel"

and implements the hooks below with `@gateway.hookspecs.hookimpl`. The channel types it
registers subclass `gateway.channel.Channel` (read that module for the normalized types).
"""
from __future__ import annotations

from typing import Callable

import pluggy

PROJECT = "paymux"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_channels(register: Callable[[type], None]) -> None:
    """Called once at start-up: call register(ChannelSubclass) for each channel type offered."""


@hookspec
def assess_payment(request: "RiskRequest") -> "RiskDecision | None":
    """Called before a payment is created: return RiskDecision.deny(reason) or .review(reason) to stop
    it, or None to let it through. Every implementation is asked; any deny wins, then any review."""


from gateway.risk import RiskDecision, RiskRequest  # noqa: E402  (the types a risk plugin sees)
