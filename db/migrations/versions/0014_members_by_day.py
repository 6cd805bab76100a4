"""indexes for what detection and the report read every run: cluster members by publication time
(a day's members of every collection are an index range) and matches by seed and publication time
(a seed's first match is the index's first entry)

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
    op.create_index("ix_matches_narrative_id_published_at", "matches", ["narrative_id", "published_at"])


def downgrade() -> None:
    op.drop_index("ix_matches_narrative_id_published_at", table_name="matches")
    op.drop_index("ix_cluster_members_published_at", table_name="cluster_members")
