"""the script of each article's text (Serbian is written in Cyrillic and Latin)

Revision ID: 0006_script
Revises: 0005_scale
Create Date: 2026-12-06 05:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_script"
down_revision: str | None = "0005_scale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Articles stored before this revision keep NULL: calibration reads the script off the text.
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("script", sa.String(length=4), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("script")
