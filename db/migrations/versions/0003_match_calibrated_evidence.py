"""match evidence: raw score before calibration, stance, verdict head

Revision ID: 0003_match_evidence
Revises: 0002_rising_runs
Create Date: 2026-12-06 02:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_match_evidence"
down_revision: str | None = "0002_rising_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Tables whose data downgrade() drops (columns here): `narrwatch db downgrade` refuses while they hold rows.
DOWNGRADE_DROPS = ("matches",)


def upgrade() -> None:
    with op.batch_alter_table("matches") as batch:
        batch.add_column(sa.Column("raw_score", sa.Float(), nullable=True))
        batch.add_column(sa.Column("stance", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("stance_cues", sa.Text(), nullable=True))
        batch.add_column(sa.Column("head_probability", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("matches") as batch:
        batch.drop_column("head_probability")
        batch.drop_column("stance_cues")
        batch.drop_column("stance")
        batch.drop_column("raw_score")
