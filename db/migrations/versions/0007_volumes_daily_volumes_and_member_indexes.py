"""daily volumes per outlet (stored once per day for rising detection) and indexes for merges and
members by publication time

Revision ID: 0007_volumes
Revises: 0006_script
Create Date: 2026-12-06 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_volumes"
down_revision: str | None = "0006_script"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# daily_volumes is derived from the articles: detection refills it, so dropping it loses nothing
DOWNGRADE_DROPS: tuple[str, ...] = ()


def upgrade() -> None:
    op.create_table(
        "daily_volumes",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("outlet", sa.String(length=100), nullable=False),
        sa.Column("n_articles", sa.Integer(), nullable=False),
        sa.Column("n_stories", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "outlet", name=op.f("pk_daily_volumes")),
    )
    op.create_index(op.f("ix_clusters_merged_into"), "clusters", ["merged_into"])
    op.create_index(
        "ix_cluster_members_collection_published_at", "cluster_members", ["collection", "published_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_cluster_members_collection_published_at", table_name="cluster_members")
    op.drop_index(op.f("ix_clusters_merged_into"), table_name="clusters")
    op.drop_table("daily_volumes")
