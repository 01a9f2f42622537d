"""chart_cache: the file_id of every chart picture already sent, by what it shows

Revision ID: 0004_chart_cache
Revises: 0003_coupons
Create Date: 2026-12-03 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_chart_cache"
down_revision: str | None = "0003_coupons"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chart_cache",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("file_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chart_cache")),
        sa.UniqueConstraint("key", name=op.f("uq_chart_cache_key")),
    )


def downgrade() -> None:
    op.drop_table("chart_cache")
