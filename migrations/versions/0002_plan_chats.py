"""plans and chats many to many (plan_chats)

A chat was sold by one plan (groups.plan_id); now by any number (monthly, yearly, lifetime).
Upgrade moves every groups.plan_id into plan_chats. Downgrade moves links back, keeping
the lowest plan id of a chat sold by several plans: the others' links are lost, their
entitlements are not.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 16:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan_chats",
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["groups.id"],
            name=op.f("fk_plan_chats_group_id_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["plans.id"],
            name=op.f("fk_plan_chats_plan_id_plans"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("plan_id", "group_id", name=op.f("pk_plan_chats")),
    )
    with op.batch_alter_table("plan_chats", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plan_chats_group_id"), ["group_id"], unique=False)

    op.execute(
        "INSERT INTO plan_chats (plan_id, group_id, created_at) "
        "SELECT plan_id, id, created_at FROM groups WHERE plan_id IS NOT NULL"
    )
    # On SQLite this recreates `groups`; migrations run with foreign keys off there
    # (migrations/env.py), so the copy does not cascade into plan_chats or group_members.
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_groups_plan_id_plans"), type_="foreignkey")
        batch_op.drop_column("plan_id")


def downgrade() -> None:
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_groups_plan_id_plans"),
            "plans",
            ["plan_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.execute(
        "UPDATE groups SET plan_id = (SELECT MIN(plan_chats.plan_id) FROM plan_chats "
        "WHERE plan_chats.group_id = groups.id)"
    )
    with op.batch_alter_table("plan_chats", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_chats_group_id"))

    op.drop_table("plan_chats")
