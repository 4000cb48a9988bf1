"""console identities: server-side console sessions, sign-in guards counted before a password is
checked, proposals and audit rows that name operators by id

Revision ID: 0012
Revises: 0011
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: Union[str, None] = "0011"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("operator_id", sa.String(40), sa.ForeignKey("operators.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("client_ip", sa.String(64), nullable=True),
    )
    op.create_index("ix_console_sessions_operator_id", "console_sessions", ["operator_id"])
    op.create_index("ix_console_sessions_expires_at", "console_sessions", ["expires_at"])
    op.create_table(
        "sign_in_guards",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
    )
    op.create_index("ix_sign_in_guards_window_started_at", "sign_in_guards", ["window_started_at"])
    # Proposals made so far named their proposer in free text (`--by`): they keep no proposer id,
    # and approving one is refused until an operator who signed in proposes it again.
    with op.batch_alter_table("recon_proposals") as batch:
        batch.add_column(sa.Column("proposed_by_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("decided_by_id", sa.String(40), nullable=True))
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("operator_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("source", sa.String(20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("source")
        batch.drop_column("operator_id")
    with op.batch_alter_table("recon_proposals") as batch:
        batch.drop_column("decided_by_id")
        batch.drop_column("proposed_by_id")
    op.drop_table("sign_in_guards")
    op.drop_table("console_sessions")
