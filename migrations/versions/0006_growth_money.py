"""growth money: affiliates, commissions in the ledger, gifts

Existing ledger rows carry no commission (0) and existing orders are no gifts.

Revision ID: 0006_growth_money
Revises: 0005_analytics
Create Date: 2026-12-03 09:05:47.364526
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_growth_money"
down_revision: str | None = "0005_analytics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "affiliate_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=24), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("creator_id", sa.Integer(), nullable=False),
        sa.Column("product_kind", sa.String(length=16), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["creator_id"],
            ["creators.id"],
            name=op.f("fk_affiliate_links_creator_id_creators"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_affiliate_links_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_affiliate_links")),
        sa.UniqueConstraint("code", name=op.f("uq_affiliate_links_code")),
        sa.UniqueConstraint(
            "user_id",
            "product_kind",
            "product_id",
            name=op.f("uq_affiliate_links_user_id_product_kind_product_id"),
        ),
    )
    op.create_table(
        "affiliate_programs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("creator_id", sa.Integer(), nullable=False),
        sa.Column("product_kind", sa.String(length=16), nullable=True),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("hold_days", sa.Integer(), nullable=False),
        sa.Column("min_payout_minor", sa.Integer(), nullable=False),
        sa.Column("min_currency", sa.String(length=3), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["creator_id"],
            ["creators.id"],
            name=op.f("fk_affiliate_programs_creator_id_creators"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_affiliate_programs")),
    )
    with op.batch_alter_table("affiliate_programs", schema=None) as batch_op:
        batch_op.create_index("ix_affiliate_programs_creator", ["creator_id"], unique=False)

    op.create_table(
        "affiliate_attributions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("product_kind", sa.String(length=16), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("affiliate_id", sa.BigInteger(), nullable=False),
        sa.Column("clicked_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["affiliate_links.id"],
            name=op.f("fk_affiliate_attributions_link_id_affiliate_links"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_affiliate_attributions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_affiliate_attributions")),
        sa.UniqueConstraint(
            "user_id",
            "product_kind",
            "product_id",
            name=op.f("uq_affiliate_attributions_user_id_product_kind_product_id"),
        ),
    )
    op.create_table(
        "gifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("buyer_id", sa.BigInteger(), nullable=False),
        sa.Column("creator_id", sa.Integer(), nullable=False),
        sa.Column("product_kind", sa.String(length=16), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_by", sa.BigInteger(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["creator_id"],
            ["creators.id"],
            name=op.f("fk_gifts_creator_id_creators"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_gifts_order_id_orders"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gifts")),
        sa.UniqueConstraint("order_id", name=op.f("uq_gifts_order_id")),
        sa.UniqueConstraint("token", name=op.f("uq_gifts_token")),
    )
    op.create_table(
        "affiliate_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("creator_id", sa.Integer(), nullable=False),
        sa.Column("affiliate_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("base_minor", sa.Integer(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("buyer_id", sa.BigInteger(), nullable=True),
        sa.Column("payable_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["creator_id"],
            ["creators.id"],
            name=op.f("fk_affiliate_entries_creator_id_creators"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["payment_id"],
            ["payments.id"],
            name=op.f("fk_affiliate_entries_payment_id_payments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_affiliate_entries")),
        sa.UniqueConstraint(
            "payment_id", "kind", name=op.f("uq_affiliate_entries_payment_id_kind")
        ),
    )
    with op.batch_alter_table("affiliate_entries", schema=None) as batch_op:
        batch_op.create_index("ix_affiliate_entries_affiliate", ["affiliate_id"], unique=False)
        batch_op.create_index(
            "ix_affiliate_entries_creator_affiliate", ["creator_id", "affiliate_id"], unique=False
        )

    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("commission_minor", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.alter_column("commission_minor", server_default=None)

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("gift", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column("gift", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("gift")

    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_column("commission_minor")

    with op.batch_alter_table("affiliate_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_affiliate_entries_creator_affiliate")
        batch_op.drop_index("ix_affiliate_entries_affiliate")

    op.drop_table("affiliate_entries")
    op.drop_table("gifts")
    op.drop_table("affiliate_attributions")
    with op.batch_alter_table("affiliate_programs", schema=None) as batch_op:
        batch_op.drop_index("ix_affiliate_programs_creator")

    op.drop_table("affiliate_programs")
    op.drop_table("affiliate_links")
