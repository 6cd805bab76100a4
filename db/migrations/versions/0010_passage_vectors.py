"""passages: the vector of each passage, kept in SQL beside its point

Revision ID: 0010_passage_vectors
Revises: 0009_match_deciding_head
Create Date: 2026-12-07 10:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_passage_vectors"
down_revision: str | None = "0009_match_deciding_head"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Tables whose data downgrade() drops (columns here): `narrwatch db downgrade` refuses while they hold rows.
DOWNGRADE_DROPS = ("passages",)


def upgrade() -> None:
    with op.batch_alter_table("passages") as batch:
        batch.add_column(sa.Column("vector", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("passages") as batch:
        batch.drop_column("vector")
