"""group_counts and group_members: detection's folded counts of cluster groups

Revision ID: 0013_group_counts
Revises: 0012_seed_counts_marks
Create Date: 2026-12-07 18:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from narrwatch.db.models import UTCDateTime

revision: str = "0013_group_counts"
down_revision: str | None = "0012_seed_counts_marks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Tables whose data downgrade() drops: none that is not derived (detection folds the groups again).
DOWNGRADE_DROPS: tuple[str, ...] = ()


def upgrade() -> None:
    op.create_table(
        "group_counts",
        sa.Column("survivor_id", sa.String(100), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("dimension", sa.String(10), primary_key=True),
        sa.Column("dimension_value", sa.String(16), primary_key=True),
        sa.Column("n_articles", sa.Integer(), nullable=False),
        sa.Column("n_stories", sa.Integer(), nullable=False),
        sa.Column("outlets", sa.Text(), nullable=False),
    )
    op.create_table(
        "group_members",
        sa.Column("cluster_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("survivor_id", sa.String(100), nullable=False),
        sa.Column("folded_for", UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_group_members_survivor_id", "group_members", ["survivor_id"])
    op.create_index("ix_group_members_folded_for", "group_members", ["folded_for"])


def downgrade() -> None:
    op.drop_index("ix_group_members_folded_for", table_name="group_members")
    op.drop_index("ix_group_members_survivor_id", table_name="group_members")
    op.drop_table("group_members")
    op.drop_table("group_counts")
