"""match evidence: which verdict head decided (the seed's own or the stream head) and its cut

Revision ID: 0009_match_deciding_head
Revises: 0008_counts_by_subject
Create Date: 2026-12-07 06:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_match_deciding_head"
down_revision: str | None = "0008_counts_by_subject"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Tables whose data downgrade() drops (columns here): `narrwatch db downgrade` refuses while they hold rows.
DOWNGRADE_DROPS = ("matches",)


def upgrade() -> None:
    with op.batch_alter_table("matches") as batch:
        batch.add_column(sa.Column("head_kind", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("head_cut", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("matches") as batch:
        batch.drop_column("head_cut")
        batch.drop_column("head_kind")
