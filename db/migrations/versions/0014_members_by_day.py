"""an index on cluster members by publication time, so a day's members of every collection are an
index range (detection and the report read them every run)

Revision ID: 0014_members_by_day
Revises: 0013_group_counts
Create Date: 2026-12-07 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014_members_by_day"
down_revision: str | None = "0013_group_counts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOWNGRADE_DROPS: tuple[str, ...] = ()


def upgrade() -> None:
    op.create_index("ix_cluster_members_published_at", "cluster_members", ["published_at"])


def downgrade() -> None:
    op.drop_index("ix_cluster_members_published_at", table_name="cluster_members")
