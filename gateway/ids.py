"""Identifiers: prefixed public ids, and out-trade-numbers channels accept (8–40 alphanumerics)."""
from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def public_id(prefix: str) -> str:
    """e.g. pay_0lq3k2x9… : a time-ordered head, so ids sort roughly by creation."""
    return f"{prefix}_{int(time.time() * 1000):011x}{_random(13)}"


def out_trade_no() -> str:
    """32 alphanumerics, unique per channel call; channels refuse reuse, so never recycle one."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"
