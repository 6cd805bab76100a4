"""an index on daily counts by subject, so a subject's counts over a span are read without scanning
every subject's rows of those days

Revision ID: 0008_counts_by_subject
Revises: 0007_volumes
Create Date: 2026-12-06 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008_counts_by_subject"
down_revision: str | None = "0007_volumes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOWNGRADE_DROPS: tuple[str, ...] = ()


def upgrade() -> None:
    op.create_index("ix_daily_counts_subject_day", "daily_counts", ["subject_kind", "subject_id", "day"])


def downgrade() -> None:
    op.drop_index("ix_daily_counts_subject_day", table_name="daily_counts")
