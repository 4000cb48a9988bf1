"""The two signatures of paymux, both HMAC-SHA256 keyed by the merchant's secret. Pure: nothing from
the project, no I/O, so the server (auth.py), the notifier and the merchant client share one copy.

A merchant request (PAYMUX-HMAC-SHA256):
    signature = hex(HMAC-SHA256(secret, "METHOD\\nPATH_AND_QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n"))
    Authorization: PAYMUX-HMAC-SHA256 merchant_id="…",timestamp="…",nonce="…",signature="…"

An event paymux POSTs to a merchant's notify_url:
    Paymux-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

SCHEME = "PAYMUX-HMAC-SHA256"
EVENT_SIGNATURE_HEADER = "Paymux-Signature"
_PARAM = re.compile(r'\s*([a-z_]+)="([^"]*)"\s*')


# ---- merchant requests ----

def canonical_string(method: str, path_and_query: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    return b"%s\n%s\n%s\n%s\n%s\n" % (method.upper().encode(), path_and_query.encode(), timestamp.encode(),
                                      nonce.encode(), body)


def sign(secret: str, method: str, path_and_query: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = canonical_string(method, path_and_query, timestamp, nonce, body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def authorization_header(merchant_id: str, secret: str, method: str, path_and_query: str, body: bytes,
                         timestamp: int, nonce: str | None = None) -> str:
    nonce = nonce or secrets.token_hex(16)
    signature = sign(secret, method, path_and_query, str(timestamp), nonce, body)
    return f'{SCHEME} merchant_id="{merchant_id}",timestamp="{timestamp}",nonce="{nonce}",signature="{signature}"'


@dataclass(frozen=True)
class SignedRequest:
    merchant_id: str
    timestamp: int
    nonce: str
    signature: str


class MalformedAuthorization(ValueError):
    """An Authorization header that cannot be read; `code` is the merchant API's error code for it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def parse_authorization(header: str | None) -> SignedRequest:
    """Read an Authorization header; raise MalformedAuthorization saying what is wrong with it."""
    if not header:
        raise MalformedAuthorization("missing_authorization",
                                     f"An Authorization header with scheme {SCHEME} is required")
    scheme, _, params = header.strip().partition(" ")
    if scheme != SCHEME:
        raise MalformedAuthorization("invalid_authorization", f"Authorization scheme must be {SCHEME}")
    fields: dict[str, str] = {}
    for part in params.split(","):
        m = _PARAM.fullmatch(part)
        if not m:
            raise MalformedAuthorization("invalid_authorization",
                                         "Authorization parameters must be name=\"value\" pairs")
        fields[m.group(1)] = m.group(2)
    missing = {"merchant_id", "timestamp", "nonce", "signature"} - fields.keys()
    if missing:
        raise MalformedAuthorization("invalid_authorization", f"Authorization lacks {', '.join(sorted(missing))}")
    if not (fields["timestamp"].isascii() and fields["timestamp"].isdigit()) or len(fields["timestamp"]) > 12:
        raise MalformedAuthorization("invalid_authorization", "timestamp must be Unix seconds")
    if not 8 <= len(fields["nonce"]) <= 128:
        raise MalformedAuthorization("invalid_authorization", "nonce must be 8 to 128 characters")
    return SignedRequest(fields["merchant_id"], int(fields["timestamp"]), fields["nonce"], fields["signature"])


def signature_matches(expected: str, given: str) -> bool:
    """Constant-time comparison that takes any text (a lone surrogate, say) without raising."""
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))


# ---- merchant events ----

def sign_event(secret: str, body: bytes, timestamp: int) -> str:
    """The Paymux-Signature header: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body" with the secret>."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class EventSignatureError(ValueError):
    pass


def verify_event(body: bytes, header: str | None, secret: str, tolerance_seconds: int = 300,
                 now: int | None = None) -> dict[str, Any]:
    """Check a delivered event's signature and age on the raw body; returns the event.
    Deduplicate on event["id"]: delivery is at least once."""
    parts = dict(p.split("=", 1) for p in (header or "").split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts or not (parts["t"].isascii() and parts["t"].isdigit()) \
            or len(parts["t"]) > 12:
        raise EventSignatureError("Paymux-Signature must be t=…,v1=…")
    if abs((now or int(time.time())) - int(parts["t"])) > tolerance_seconds:
        raise EventSignatureError("the event's timestamp is too old or too new")
    expected = sign_event(secret, body, int(parts["t"])).split("v1=", 1)[1]
    if not signature_matches(expected, parts["v1"]):
        raise EventSignatureError("the signature does not match the body")
    return json.loads(body)
