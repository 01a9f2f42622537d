"""jobs claim: the scheduler's claim of due jobs reads an index in order

The claim asks for due pending jobs ordered by (run_at, id), LIMIT a batch, FOR UPDATE
SKIP LOCKED. With the index on (status, run_at) only, PostgreSQL scanned the whole table
and sorted it for every claim (a paid broadcast's 100,000 messages share one run_at: a
40 ms sort per 500-row claim); with id in the index the rows come in order and the
claim stops after its batch.

Revision ID: 0019_jobs_claim
Revises: 0018_paid_broadcast
Create Date: 2026-12-03 15:10:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019_jobs_claim"
down_revision: str | None = "0018_paid_broadcast"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The old index is a prefix of the new one: every query it served, this one serves.
    op.create_index("ix_jobs_status_run_at_id", "jobs", ["status", "run_at", "id"])
    op.drop_index("ix_jobs_status_run_at", table_name="jobs")


def downgrade() -> None:
    op.create_index("ix_jobs_status_run_at", "jobs", ["status", "run_at"])
    op.drop_index("ix_jobs_status_run_at_id", table_name="jobs")
