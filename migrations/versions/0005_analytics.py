"""creator analytics: daily rollups, funnel progress, nudges, order sources

The tables start empty; `python -m bot stats-rebuild` fills them from the history
(ledger, orders, events, deliveries), and the bot keeps them up to date from then on.

Revision ID: 0005_analytics
Revises: 0004_chart_cache
Create Date: 2026-12-03 08:23:33.154404
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_analytics"
down_revision: str | None = "0004_chart_cache"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stats_funnel",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_kind", sa.String(length=16), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("creator_id", sa.Integer(), nullable=False),
        sa.Column("entered_at", sa.DateTime(), nullable=False),
        sa.Column("viewed_at", sa.DateTime(), nullable=True),
        sa.Column("buy_at", sa.DateTime(), nullable=True),
        sa.Column("invoice_at", sa.DateTime(), nullable=True),
        sa.Column("paid_at", sa.DateTime(), nullable=True),
        sa.Column("first_done_at", sa.DateTime(), nullable=True),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=True),
        sa.Column("paid_source", sa.String(length=8), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_funnel")),
        sa.UniqueConstraint("product_kind", "product_id", "user_id", name="uq_stats_funnel_key"),
    )
    with op.batch_alter_table("stats_funnel", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stats_funnel_creator_entered", ["creator_id", "entered_at"], unique=False
        )
        batch_op.create_index(
            "ix_stats_funnel_creator_paid", ["creator_id", "paid_at"], unique=False
        )

    op.create_table(
        "stats_money_daily",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("creator_id", sa.Integer(), nullable=False),
        sa.Column("product_kind", sa.String(length=16), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("sales", sa.Integer(), nullable=False),
        sa.Column("sales_gross", sa.BigInteger(), nullable=False),
        sa.Column("refunds", sa.Integer(), nullable=False),
        sa.Column("refunds_gross", sa.BigInteger(), nullable=False),
        sa.Column("gross", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("net", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_money_daily")),
        sa.UniqueConstraint(
            "day",
            "creator_id",
            "product_kind",
            "product_id",
            "currency",
            "source",
            name="uq_stats_money_daily_key",
        ),
    )
    with op.batch_alter_table("stats_money_daily", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stats_money_daily_creator_day", ["creator_id", "day"], unique=False
        )

    op.create_table(
        "stats_nudges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_nudges")),
        sa.UniqueConstraint("user_id", "course_id", name="uq_stats_nudges_key"),
    )
    op.create_table(
        "stats_plan_daily",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("creator_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("joined", sa.Integer(), nullable=False),
        sa.Column("renewed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_plan_daily")),
        sa.UniqueConstraint("day", "creator_id", "plan_id", name="uq_stats_plan_daily_key"),
    )
    with op.batch_alter_table("stats_plan_daily", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stats_plan_daily_creator_day", ["creator_id", "day"], unique=False
        )

    op.create_table(
        "stats_views_daily",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("creator_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stats_views_daily")),
        sa.UniqueConstraint(
            "day", "creator_id", "course_id", "source", name="uq_stats_views_daily_key"
        ),
    )
    with op.batch_alter_table("stats_views_daily", schema=None) as batch_op:
        batch_op.create_index(
            "ix_stats_views_daily_creator_day", ["creator_id", "day"], unique=False
        )

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_sent_at", ["sent_at"], unique=False)

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("source")

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_sent_at")

    with op.batch_alter_table("stats_views_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_stats_views_daily_creator_day")

    op.drop_table("stats_views_daily")
    with op.batch_alter_table("stats_plan_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_stats_plan_daily_creator_day")

    op.drop_table("stats_plan_daily")
    op.drop_table("stats_nudges")
    with op.batch_alter_table("stats_money_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_stats_money_daily_creator_day")

    op.drop_table("stats_money_daily")
    with op.batch_alter_table("stats_funnel", schema=None) as batch_op:
        batch_op.drop_index("ix_stats_funnel_creator_paid")
        batch_op.drop_index("ix_stats_funnel_creator_entered")

    op.drop_table("stats_funnel")
