"""Merchant accounts: an id and a secret, the secret sealed at rest."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select

from gateway.clock import Clock
from gateway.ids import public_id
from gateway.models import Merchant
from gateway.secretbox import SecretBox

merchants = Merchant.__table__


@dataclass(frozen=True)
class MerchantCredentials:
    merchant_id: str
    secret: str


def create_merchant(conn: Connection, box: SecretBox, clock: Clock, name: str,
                    notify_url: str | None = None) -> MerchantCredentials:
    merchant_id = public_id("mch")
    secret = "sk_" + secrets.token_urlsafe(32)
    conn.execute(insert(merchants).values(id=merchant_id, name=name, secret_sealed=box.seal(secret, merchant_id),
                                          status="active", notify_url=notify_url, created_at=clock.now()))
    return MerchantCredentials(merchant_id, secret)


def first_merchant(conn: Connection, box: SecretBox, name: str) -> MerchantCredentials | None:
    row = conn.execute(select(merchants).where(merchants.c.name == name).order_by(merchants.c.created_at)).first()
    return None if row is None else MerchantCredentials(row.id, box.open(row.secret_sealed, row.id))
