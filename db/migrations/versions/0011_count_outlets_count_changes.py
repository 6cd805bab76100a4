"""daily_counts: the outlets behind each count; count_changes: days whose cluster counts went stale

Revision ID: 0011_count_outlets
Revises: 0010_passage_vectors
Create Date: 2026-12-07 13:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_count_outlets"
down_revision: str | None = "0010_passage_vectors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Tables whose data downgrade() drops (columns here): `narrwatch db downgrade` refuses while they hold rows.
#: The outlets column and the marks are derived: detection counts their days again.
DOWNGRADE_DROPS: tuple[str, ...] = ()


def upgrade() -> None:
    with op.batch_alter_table("daily_counts") as batch:
        batch.add_column(sa.Column("outlets", sa.Text(), nullable=True))
    op.create_table(
        "count_changes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("day", sa.Date(), nullable=False),
    )
    op.create_index("ix_count_changes_day", "count_changes", ["day"])


def downgrade() -> None:
    op.drop_index("ix_count_changes_day", table_name="count_changes")
    op.drop_table("count_changes")
    with op.batch_alter_table("daily_counts") as batch:
        batch.drop_column("outlets")
