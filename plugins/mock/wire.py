"""The sandbox channel's wire protocol: HMAC-SHA256-signed JSON both ways, and signed checkout tokens.

Message signature = hex HMAC-SHA256(secret, "TIMESTAMP\\nNONCE\\nBODY\\n"), in headers
Sandbox-Timestamp, Sandbox-Nonce, Sandbox-Signature. A message more than 300 s off is refused.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any, Mapping

WINDOW_SECONDS = 300
TIMESTAMP, NONCE, SIGNATURE = "sandbox-timestamp", "sandbox-nonce", "sandbox-signature"


class WireError(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _mac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, now: int) -> dict[str, str]:
    nonce = secrets.token_hex(12)
    message = f"{now}\n{nonce}\n".encode() + body + b"\n"
    return {"Sandbox-Timestamp": str(now), "Sandbox-Nonce": nonce, "Sandbox-Signature": _mac(secret, message),
            "Content-Type": "application/json"}


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: int) -> dict[str, Any]:
    """Check signature and freshness of a message; return its decoded JSON object."""
    lower = {k.lower(): v for k, v in headers.items()}
    timestamp, nonce, signature = lower.get(TIMESTAMP), lower.get(NONCE), lower.get(SIGNATURE)
    if not (timestamp and nonce and signature):
        raise WireError("missing_signature", "Sandbox-Timestamp, Sandbox-Nonce and Sandbox-Signature are required")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12 or \
            abs(now - int(timestamp)) > WINDOW_SECONDS:
        raise WireError("stale_timestamp", "Sandbox-Timestamp is missing or more than 300 s off")
    expected = _mac(secret, f"{timestamp}\n{nonce}\n".encode() + body + b"\n")
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "surrogatepass")):
        raise WireError("bad_signature", "Sandbox-Signature does not match the body")
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise WireError("malformed_body", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise WireError("malformed_body", "the body is not a JSON object")
    return data


def encode(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def make_token(secret: str, order: Mapping[str, Any]) -> str:
    """A checkout token: the order itself, signed, so the checkout page needs no prior call."""
    payload = base64.urlsafe_b64encode(encode(order)).decode().rstrip("=")
    return f"{payload}.{_mac(secret, payload.encode())}"


def read_token(secret: str, token: str) -> dict[str, Any]:
    payload, _, mac = token.partition(".")
    if not payload or not hmac.compare_digest(_mac(secret, payload.encode()).encode(),
                                              mac.encode("utf-8", "surrogatepass")):
        raise WireError("bad_token", "the checkout link is not genuine")
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
