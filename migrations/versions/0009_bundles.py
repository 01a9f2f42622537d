"""bundles: several courses of one creator sold as one product

Revision ID: 0009_bundles
Revises: 0008_marketplace
Create Date: 2026-12-03 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_bundles"
down_revision: str | None = "0008_marketplace"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bundles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("creator_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("price_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("stars_price", sa.Integer(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["creator_id"],
            ["creators.id"],
            name=op.f("fk_bundles_creator_id_creators"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bundles")),
    )
    with op.batch_alter_table("bundles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bundles_creator_id"), ["creator_id"])
    op.create_table(
        "bundle_courses",
        sa.Column("bundle_id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bundle_id"],
            ["bundles.id"],
            name=op.f("fk_bundle_courses_bundle_id_bundles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_bundle_courses_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("bundle_id", "course_id", name=op.f("pk_bundle_courses")),
    )
    with op.batch_alter_table("bundle_courses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bundle_courses_course_id"), ["course_id"])


def downgrade() -> None:
    with op.batch_alter_table("bundle_courses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bundle_courses_course_id"))
    op.drop_table("bundle_courses")
    with op.batch_alter_table("bundles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bundles_creator_id"))
    op.drop_table("bundles")
