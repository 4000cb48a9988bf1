"""Identifiers: prefixed public ids, and out-trade-numbers channels accept (8–40 alphanumerics)."""
from __future__ import annotations

import base64
import os
import secrets
import time


def public_id(prefix: str) -> str:
    """e.g. pay_01a2014cd0k2x9…: a time-ordered head (ms, hex), so ids sort roughly by creation,
    then 65 random bits in lower-case base32."""
    tail = base64.b32encode(os.urandom(8)).decode().rstrip("=").lower()
    return f"{prefix}_{int(time.time() * 1000):011x}{tail}"


def out_trade_no() -> str:
    """32 alphanumerics, unique per channel call; channels refuse reuse, so never recycle one."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"
