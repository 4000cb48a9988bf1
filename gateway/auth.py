"""Merchant request verification: the signature (gateway/signing.py says how it is made), the time
window, the merchant's status and the nonce that makes a request impossible to replay.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from gateway.db import on_rollback
from gateway.errors import authentication_error
from gateway.models import Merchant, RequestNonce
from gateway.secretbox import SecretBox
from gateway.signing import (SCHEME, MalformedAuthorization, SignedRequest, authorization_header,  # noqa: F401
                             canonical_string, sign, signature_matches)
from gateway.signing import parse_authorization as parse_header

merchants = Merchant.__table__
nonces = RequestNonce.__table__


def parse_authorization(header: str | None) -> SignedRequest:
    """Read an Authorization header; a malformed one is a 401 naming what is wrong."""
    try:
        return parse_header(header)
    except MalformedAuthorization as exc:
        raise authentication_error(exc.code, str(exc)) from None


@dataclass(frozen=True)
class AuthenticatedMerchant:
    id: str
    name: str
    notify_url: str | None


class Caller(Protocol):
    """Who a service call acts for. verify(conn) runs inside the call's first transaction, so a
    request costs no separate round trip for its signature check and nonce."""

    merchant_id: str

    def verify(self, conn: Connection) -> None: ...


@dataclass
class SignedCaller:
    """A merchant request whose signature is checked (and nonce recorded) on first use of the database."""

    authenticator: "MerchantAuthenticator"
    signed: SignedRequest
    method: str
    path_and_query: str
    body: bytes
    now: datetime
    merchant: AuthenticatedMerchant | None = None
    nonce_recorded: bool = False

    @property
    def merchant_id(self) -> str:
        return self.signed.merchant_id

    @property
    def verified(self) -> bool:
        return self.merchant is not None

    def verify(self, conn: Connection) -> None:
        if self.merchant is None:
            self.merchant = self.authenticator.verify(conn, self.signed, self.method, self.path_and_query,
                                                      self.body, self.now)
            self.nonce_recorded = True
            # If the request's transaction rolls back (a duplicate order, say), so does the nonce:
            # the endpoint then records it on its own, so the request still cannot be replayed.
            on_rollback(conn, self._nonce_lost)
        elif not self.nonce_recorded:
            self.authenticator.record_nonce(conn, self.merchant, self.signed.nonce, self.now)
            self.nonce_recorded = True
            on_rollback(conn, self._nonce_lost)

    def _nonce_lost(self) -> None:
        self.nonce_recorded = False

    @property
    def settled(self) -> bool:
        """Verified, and its nonce committed."""
        return self.verified and self.nonce_recorded


class MerchantAuthenticator:
    # A merchant's decrypted secret is kept this long per process: a disabled merchant or a rotated
    # secret takes at most this long to be refused everywhere. Nonces are never cached.
    CACHE_SECONDS = 10.0

    def __init__(self, box: SecretBox, window_seconds: int) -> None:
        self.box = box
        self.window = window_seconds
        self._cache: dict[str, tuple[float, AuthenticatedMerchant, str]] = {}

    def _merchant(self, conn: Connection, merchant_id: str) -> tuple[AuthenticatedMerchant, str] | None:
        hit = self._cache.get(merchant_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1], hit[2]
        row = conn.execute(select(merchants).where(merchants.c.id == merchant_id)).first()
        if row is None or row.status != "active":
            self._cache.pop(merchant_id, None)
            return None
        merchant = AuthenticatedMerchant(row.id, row.name, row.notify_url)
        secret = self.box.open(row.secret_sealed, row.id)
        self._cache[merchant_id] = (time.monotonic() + self.CACHE_SECONDS, merchant, secret)
        return merchant, secret

    def verify(self, conn: Connection, signed: SignedRequest, method: str, path_and_query: str, body: bytes,
               now: datetime) -> AuthenticatedMerchant:
        """Check window, merchant, signature, then record the nonce (a forged request burns no nonce)."""
        if abs(now.timestamp() - signed.timestamp) > self.window:
            raise authentication_error("timestamp_out_of_window",
                                       f"timestamp is more than {self.window} s away from the server's clock")
        found = self._merchant(conn, signed.merchant_id)
        if found is None:
            raise authentication_error("unknown_merchant", "No active merchant with that merchant_id")
        merchant, secret = found
        expected = sign(secret, method, path_and_query, str(signed.timestamp), signed.nonce, body)
        if not signature_matches(expected, signed.signature):
            raise authentication_error("invalid_signature", "The signature does not match the request")
        self.record_nonce(conn, merchant, signed.nonce, now)
        return merchant

    @staticmethod
    def record_nonce(conn: Connection, merchant: AuthenticatedMerchant, nonce: str, now: datetime) -> None:
        try:  # the primary key (merchant_id, nonce) makes a replay fail here, across processes
            conn.execute(insert(nonces), {"merchant_id": merchant.id, "nonce": nonce, "created_at": now})
        except IntegrityError:
            raise authentication_error("replayed_nonce", "This nonce was already used") from None

    def purge(self, conn: Connection, now: datetime) -> int:
        """Nonces older than twice the window can never be accepted again; forget them."""
        cutoff = now - timedelta(seconds=2 * self.window)
        return conn.execute(delete(nonces).where(nonces.c.created_at < cutoff)).rowcount
