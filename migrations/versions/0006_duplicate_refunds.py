"""refunds paymux starts itself: kind (merchant | duplicate) and whether it reached the channel yet

Revision ID: 0006
Revises: 0005
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: Union[str, None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("refunds") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="merchant"))
        batch.add_column(sa.Column("submitted", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("refunds") as batch:
        batch.drop_column("submitted")
        batch.drop_column("kind")
