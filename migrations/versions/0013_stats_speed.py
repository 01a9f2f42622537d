"""stats speed: plan card views in the daily views rollup, creator-bounded dashboard reads

stats_views_daily counted course cards only; it now keys on (product_kind, product_id) as
stats_money_daily does, so a plan card's views count per source too. Plan views recorded
before this revision are added by `python -m bot stats-rebuild`.

Every read of the /stats dashboard gets an index that bounds it to the creator (their
products) and the period and covers the columns it reads, so it never visits the table
rows: its cost follows the period's activity, not the length of the history.

Revision ID: 0013_stats_speed
Revises: 0012_quizzes
Create Date: 2026-12-03 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_stats_speed"
down_revision: str | None = "0012_quizzes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# (table, index, new columns, old columns): the old index is a prefix of the new one.
INDEXES = [
    (
        "stats_money_daily",
        "ix_stats_money_daily_creator_day",
        [
            "creator_id",
            "day",
            "product_kind",
            "product_id",
            "currency",
            "source",
            "sales",
            "sales_gross",
            "refunds",
            "refunds_gross",
            "gross",
            "fee",
            "net",
        ],
        ["creator_id", "day"],
    ),
    (
        "stats_funnel",
        "ix_stats_funnel_creator_entered",
        [
            "creator_id",
            "entered_at",
            "product_kind",
            "product_id",
            "user_id",
            "viewed_at",
            "buy_at",
            "invoice_at",
            "paid_at",
            "first_done_at",
            "completed_at",
        ],
        ["creator_id", "entered_at"],
    ),
    (
        "stats_funnel",
        "ix_stats_funnel_creator_paid",
        ["creator_id", "paid_at", "product_kind", "product_id", "paid_source", "user_id"],
        ["creator_id", "paid_at"],
    ),
]
RENAMED = [
    (
        "entitlements",
        "ix_entitlements_product",
        ["product_kind", "product_id"],
        "ix_entitlements_product_expires",
        [
            "product_kind",
            "product_id",
            "expires_at",
            "starts_at",
            "revoked_at",
            "source_order_id",
        ],
    ),
    (
        "deliveries",
        "ix_deliveries_sent_at",
        ["sent_at"],
        "ix_deliveries_lesson_sent",
        ["lesson_id", "sent_at", "done_at", "enrollment_id"],
    ),
]


def upgrade() -> None:
    for table, name, columns, _old in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
            batch_op.create_index(name, columns, unique=False)
    for table, old_name, _old, name, columns in RENAMED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(old_name)
            batch_op.create_index(name, columns, unique=False)
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_enrollment_done", ["enrollment_id", "done_at"], unique=False
        )

    with op.batch_alter_table("stats_views_daily", schema=None) as batch_op:
        batch_op.drop_constraint("uq_stats_views_daily_key", type_="unique")
        batch_op.add_column(
            sa.Column("product_kind", sa.String(length=16), nullable=False, server_default="course")
        )
        batch_op.alter_column("course_id", new_column_name="product_id", existing_type=sa.Integer())
    # The default only filled the rows that existed; the rollup writes the kind itself.
    with op.batch_alter_table("stats_views_daily", schema=None) as batch_op:
        batch_op.alter_column("product_kind", existing_type=sa.String(16), server_default=None)
        batch_op.create_unique_constraint(
            "uq_stats_views_daily_key",
            ["day", "creator_id", "product_kind", "product_id", "source"],
        )
        batch_op.drop_index("ix_stats_views_daily_creator_day")
        batch_op.create_index(
            "ix_stats_views_daily_creator_day",
            ["creator_id", "day", "product_kind", "product_id", "source", "views"],
            unique=False,
        )


def downgrade() -> None:
    op.execute("DELETE FROM stats_views_daily WHERE product_kind <> 'course'")
    with op.batch_alter_table("stats_views_daily", schema=None) as batch_op:
        batch_op.drop_index("ix_stats_views_daily_creator_day")
        batch_op.drop_constraint("uq_stats_views_daily_key", type_="unique")
        batch_op.drop_column("product_kind")
        batch_op.alter_column("product_id", new_column_name="course_id", existing_type=sa.Integer())
    with op.batch_alter_table("stats_views_daily", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            "uq_stats_views_daily_key", ["day", "creator_id", "course_id", "source"]
        )
        batch_op.create_index(
            "ix_stats_views_daily_creator_day", ["creator_id", "day"], unique=False
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_enrollment_done")
    for table, old_name, old_columns, name, _columns in RENAMED:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
            batch_op.create_index(old_name, old_columns, unique=False)
    for table, name, _columns, old_columns in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
            batch_op.create_index(name, old_columns, unique=False)
