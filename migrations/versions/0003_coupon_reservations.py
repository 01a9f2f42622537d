"""coupon uses reserved by open invoices (coupons.reserved_count, orders.coupon_reserved)

A coupon's use is now reserved when an invoice is opened with it, so `uses=N` holds when
learners pay at the same moment. Existing pending orders hold no reservation: they are
checked again at pre-checkout and take one then if the code still has room.

Revision ID: 0003_coupons
Revises: 0002
Create Date: 2026-12-08 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_coupons"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The server defaults fill existing rows; the models set the value on insert, so the
    # defaults are dropped again (models and migrations must agree).
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reserved_count", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.alter_column("reserved_count", server_default=None)
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("coupon_reserved", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index(
            "ix_orders_coupon_reserved", ["coupon_reserved", "expires_at"], unique=False
        )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column("coupon_reserved", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_coupon_reserved")
        batch_op.drop_column("coupon_reserved")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_column("reserved_count")
