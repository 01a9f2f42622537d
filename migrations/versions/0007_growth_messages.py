"""growth messages: abandoned-checkout reminders, reminder coupons, win-back offers

Revision ID: 0007_growth_messages
Revises: 0006_growth_money
Create Date: 2026-12-10 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_growth_messages"
down_revision: str | None = "0006_growth_money"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reminders_off", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("winback_percent", sa.Integer(), nullable=True))

    op.create_table(
        "growth_reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("product_kind", sa.String(length=16), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("queued_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_growth_reminders_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_growth_reminders")),
        sa.UniqueConstraint("order_id", name=op.f("uq_growth_reminders_order_id")),
    )
    with op.batch_alter_table("growth_reminders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_growth_reminders_user_product",
            ["user_id", "product_kind", "product_id"],
            unique=False,
        )

    op.create_table(
        "growth_reminder_coupons",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("creator_id", sa.Integer(), nullable=False),
        sa.Column("product_kind", sa.String(length=16), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("coupon_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["coupons.id"],
            name=op.f("fk_growth_reminder_coupons_coupon_id_coupons"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["creator_id"],
            ["creators.id"],
            name=op.f("fk_growth_reminder_coupons_creator_id_creators"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_growth_reminder_coupons")),
        sa.UniqueConstraint(
            "creator_id", "product_kind", "product_id", name="uq_growth_reminder_coupons_key"
        ),
    )

    op.create_table(
        "growth_winbacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("coupon_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("offered_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["coupon_id"],
            ["coupons.id"],
            name=op.f("fk_growth_winbacks_coupon_id_coupons"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name=op.f("fk_growth_winbacks_plan_id_plans"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_growth_winbacks_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_growth_winbacks")),
        sa.UniqueConstraint("user_id", "plan_id", name="uq_growth_winbacks_key"),
    )


def downgrade() -> None:
    op.drop_table("growth_winbacks")
    op.drop_table("growth_reminder_coupons")
    with op.batch_alter_table("growth_reminders", schema=None) as batch_op:
        batch_op.drop_index("ix_growth_reminders_user_product")
    op.drop_table("growth_reminders")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_column("winback_percent")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("reminders_off")
