"""Paid broadcasts: a message job records the Stars it cost, in tenths of a Star.

Revision ID: 0018_paid_broadcast
Revises: 0017_both_languages
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_paid_broadcast"
down_revision: str | None = "0017_both_languages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.add_column(sa.Column("stars_tenths", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch_op:
        batch_op.drop_column("stars_tenths")
