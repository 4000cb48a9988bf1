"""payouts.submitted now means "its request may have reached the channel" (written before the send):
a payout still processing from before this revision may have reached it, so it is marked submitted

Revision ID: 0016
Revises: 0015
"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: Union[str, None] = "0015"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # Never "not sent" unless proven: such a payout is only asked about, never sent afresh.
    op.execute(sa.text("UPDATE payouts SET submitted = true WHERE status = 'processing'"))


def downgrade() -> None:
    pass   # the old meaning ("sent at least once") holds for these rows too
