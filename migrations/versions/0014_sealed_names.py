"""who is paid is sealed: a payout's holder name, a receiver's name, account and bindings (AES-GCM, shown
masked, a receiver's account found by its keyed digest); kept callbacks and channel exchanges redacted
by what each field means

Existing rows are sealed with the secret key, which `paymux db upgrade` passes in (gateway.db.upgrade);
a database with payouts or receivers cannot be migrated without it.

Revision ID: 0014
Revises: 0013
"""
import json
from typing import Any, Sequence, Union

import sqlalchemy as sa
from alembic import context, op

revision: str = "0014"
down_revision: Union[str, None] = "0013"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

CHUNK = 1000
payouts = sa.table("payouts", sa.column("id", sa.String), sa.column("account_name", sa.String),
                   sa.column("account_name_sealed", sa.Text), sa.column("account_name_masked", sa.String))
receivers = sa.table("receivers", sa.column("id", sa.String), sa.column("name", sa.String),
                     sa.column("account", sa.String), sa.column("bindings", sa.JSON),
                     sa.column("name_sealed", sa.Text), sa.column("name_masked", sa.String),
                     sa.column("account_sealed", sa.Text), sa.column("account_masked", sa.String),
                     sa.column("account_digest", sa.String), sa.column("bindings_sealed", sa.Text))
callbacks = sa.table("channel_callbacks", sa.column("id", sa.Integer), sa.column("body", sa.LargeBinary))
exchanges = sa.table("channel_exchanges", sa.column("id", sa.Integer), sa.column("request_body", sa.Text),
                     sa.column("response_body", sa.Text))
RECEIVER_COLUMNS = (("name_sealed", sa.Text()), ("name_masked", sa.String(100)), ("account_sealed", sa.Text()),
                    ("account_masked", sa.String(64)), ("account_digest", sa.String(64)),
                    ("bindings_sealed", sa.Text()))


def _box() -> Any:
    from gateway.secretbox import SecretBox

    key = context.config.attributes.get("secret_key")
    if not key or key.startswith("file:"):
        raise RuntimeError("migration 0014 seals the names and account references that payouts and receivers "
                           "kept in the clear, and needs the secret key for it: run `paymux db upgrade`, which "
                           "reads it from the config or PAYMUX_SECRET_KEY")
    return SecretBox(key)


def _bindings(value: Any) -> dict:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


def upgrade() -> None:
    from gateway.redact import masked, masked_name

    bind = op.get_bind()
    held = bind.execute(sa.select(payouts.c.id, payouts.c.account_name)).all()
    registered = bind.execute(sa.select(receivers.c.id, receivers.c.name, receivers.c.account,
                                        receivers.c.bindings)).all()
    box = _box() if held or registered else None   # before any change: SQLite's DDL is not rolled back
    with op.batch_alter_table("payouts") as batch:
        batch.add_column(sa.Column("account_name_sealed", sa.Text(), nullable=True))
        batch.add_column(sa.Column("account_name_masked", sa.String(100), nullable=True))
    with op.batch_alter_table("receivers") as batch:
        for name, type_ in RECEIVER_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    for p in held:
        bind.execute(payouts.update().where(payouts.c.id == p.id).values(
            account_name_sealed=box.seal(p.account_name, f"{p.id}:name"),
            account_name_masked=masked_name(p.account_name)))
    for r in registered:   # as gateway.splits.sealed_receiver writes them
        bindings = _bindings(r.bindings)
        bind.execute(receivers.update().where(receivers.c.id == r.id).values(
            name_sealed=box.seal(r.name, f"{r.id}:name"), name_masked=masked_name(r.name),
            account_sealed=box.seal(r.account, f"{r.id}:account"), account_masked=masked(r.account),
            account_digest=box.fingerprint(r.account),
            bindings_sealed=box.seal(json.dumps(bindings, sort_keys=True), f"{r.id}:bindings"),
            bindings={k: masked(v) for k, v in bindings.items()}))
    _redact_kept(bind)

    with op.batch_alter_table("payouts") as batch:
        batch.alter_column("account_name_sealed", existing_type=sa.Text(), nullable=False)
        batch.alter_column("account_name_masked", existing_type=sa.String(100), nullable=False)
        batch.drop_column("account_name")
    with op.batch_alter_table("receivers") as batch:
        batch.drop_constraint("uq_receivers_merchant_account", type_="unique")
        for name, type_ in RECEIVER_COLUMNS:
            batch.alter_column(name, existing_type=type_, nullable=False)
        batch.drop_column("name")
        batch.drop_column("account")
        batch.create_unique_constraint("uq_receivers_merchant_account", ["merchant_id", "account_digest"])


def _redact_kept(bind: Any) -> None:
    """What earlier versions kept of callbacks (the raw body) and exchanges, redacted as now."""
    from gateway.redact import redacted_body

    for rows in _chunks(bind, sa.select(callbacks.c.id, callbacks.c.body).where(callbacks.c.body.is_not(None)),
                        callbacks.c.id):
        bind.execute(callbacks.update().where(callbacks.c.id == sa.bindparam("row_id"))
                     .values(body=sa.bindparam("kept")),
                     [{"row_id": r.id, "kept": redacted_body(r.body).encode()} for r in rows])
    for rows in _chunks(bind, sa.select(exchanges), exchanges.c.id):
        bind.execute(exchanges.update().where(exchanges.c.id == sa.bindparam("row_id"))
                     .values(request_body=sa.bindparam("sent"), response_body=sa.bindparam("answered")),
                     [{"row_id": r.id, "sent": redacted_body(r.request_body),
                       "answered": redacted_body(r.response_body)} for r in rows])


def _chunks(bind: Any, query: Any, key: Any) -> Any:
    """The rows of query, CHUNK at a time, in key order."""
    last = None
    while rows := bind.execute((query if last is None else query.where(key > last)).order_by(key).limit(CHUNK)).all():
        yield rows
        last = rows[-1].id


def downgrade() -> None:
    bind = op.get_bind()
    held = bind.execute(sa.select(payouts.c.id, payouts.c.account_name_sealed)).all()
    registered = bind.execute(sa.select(receivers.c.id, receivers.c.name_sealed, receivers.c.account_sealed,
                                        receivers.c.bindings_sealed)).all()
    box = _box() if held or registered else None
    with op.batch_alter_table("payouts") as batch:
        batch.add_column(sa.Column("account_name", sa.String(100), nullable=True))
    with op.batch_alter_table("receivers") as batch:
        batch.add_column(sa.Column("name", sa.String(100), nullable=True))
        batch.add_column(sa.Column("account", sa.String(64), nullable=True))
    for p in held:
        bind.execute(payouts.update().where(payouts.c.id == p.id).values(
            account_name=box.open(p.account_name_sealed, f"{p.id}:name")))
    for r in registered:
        bind.execute(receivers.update().where(receivers.c.id == r.id).values(
            name=box.open(r.name_sealed, f"{r.id}:name"), account=box.open(r.account_sealed, f"{r.id}:account"),
            bindings=json.loads(box.open(r.bindings_sealed, f"{r.id}:bindings"))))
    with op.batch_alter_table("payouts") as batch:
        batch.alter_column("account_name", existing_type=sa.String(100), nullable=False)
        batch.drop_column("account_name_sealed")
        batch.drop_column("account_name_masked")
    with op.batch_alter_table("receivers") as batch:
        batch.drop_constraint("uq_receivers_merchant_account", type_="unique")
        batch.alter_column("name", existing_type=sa.String(100), nullable=False)
        batch.alter_column("account", existing_type=sa.String(64), nullable=False)
        for name, _ in RECEIVER_COLUMNS:
            batch.drop_column(name)
        batch.create_unique_constraint("uq_receivers_merchant_account", ["merchant_id", "account"])
