"""Merchant request signing (PAYMUX-HMAC-SHA256) and its verification.

signature = hex(HMAC-SHA256(secret, "METHOD\\nPATH_AND_QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n"))
Authorization: PAYMUX-HMAC-SHA256 merchant_id="…",timestamp="…",nonce="…",signature="…"
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from gateway.errors import authentication_error
from gateway.models import Merchant, RequestNonce
from gateway.secretbox import SecretBox

SCHEME = "PAYMUX-HMAC-SHA256"
_PARAM = re.compile(r'\s*([a-z_]+)="([^"]*)"\s*')
merchants = Merchant.__table__
nonces = RequestNonce.__table__


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


def parse_authorization(header: str | None) -> SignedRequest:
    if not header:
        raise authentication_error("missing_authorization", f"An Authorization header with scheme {SCHEME} is required")
    scheme, _, params = header.strip().partition(" ")
    if scheme != SCHEME:
        raise authentication_error("invalid_authorization", f"Authorization scheme must be {SCHEME}")
    fields: dict[str, str] = {}
    for part in params.split(","):
        m = _PARAM.fullmatch(part)
        if not m:
            raise authentication_error("invalid_authorization", "Authorization parameters must be name=\"value\" pairs")
        fields[m.group(1)] = m.group(2)
    missing = {"merchant_id", "timestamp", "nonce", "signature"} - fields.keys()
    if missing:
        raise authentication_error("invalid_authorization", f"Authorization lacks {', '.join(sorted(missing))}")
    if not fields["timestamp"].isdigit() or len(fields["timestamp"]) > 12:
        raise authentication_error("invalid_authorization", "timestamp must be Unix seconds")
    if not 8 <= len(fields["nonce"]) <= 128:
        raise authentication_error("invalid_authorization", "nonce must be 8 to 128 characters")
    return SignedRequest(fields["merchant_id"], int(fields["timestamp"]), fields["nonce"], fields["signature"])


@dataclass(frozen=True)
class AuthenticatedMerchant:
    id: str
    name: str
    notify_url: str | None


class MerchantAuthenticator:
    def __init__(self, box: SecretBox, window_seconds: int) -> None:
        self.box = box
        self.window = window_seconds

    def verify(self, conn: Connection, signed: SignedRequest, method: str, path_and_query: str, body: bytes,
               now: datetime) -> AuthenticatedMerchant:
        """Check window, merchant, signature, then record the nonce (a forged request burns no nonce)."""
        if abs(now.timestamp() - signed.timestamp) > self.window:
            raise authentication_error("timestamp_out_of_window",
                                       f"timestamp is more than {self.window} s away from the server's clock")
        row = conn.execute(select(merchants).where(merchants.c.id == signed.merchant_id)).first()
        if row is None or row.status != "active":
            raise authentication_error("unknown_merchant", "No active merchant with that merchant_id")
        secret = self.box.open(row.secret_sealed, row.id)
        expected = sign(secret, method, path_and_query, str(signed.timestamp), signed.nonce, body)
        if not hmac.compare_digest(expected, signed.signature):
            raise authentication_error("invalid_signature", "The signature does not match the request")
        try:  # the primary key (merchant_id, nonce) makes a replay fail here, across processes
            conn.execute(insert(nonces).values(merchant_id=row.id, nonce=signed.nonce, created_at=now))
        except IntegrityError:
            raise authentication_error("replayed_nonce", "This nonce was already used") from None
        return AuthenticatedMerchant(row.id, row.name, row.notify_url)

    def purge(self, conn: Connection, now: datetime) -> int:
        """Nonces older than twice the window can never be accepted again; forget them."""
        cutoff = now - timedelta(seconds=2 * self.window)
        return conn.execute(delete(nonces).where(nonces.c.created_at < cutoff)).rowcount
