"""count_changes: seeds' stored daily counts go stale by marks too; each day they were counted on is marked

Detection used to count every seed over its whole span on each run, so a match whose level moved
needed no mark. It now reads seeds' past days back as stored, like clusters'; the days stored so far
are counted once more, under the rule that marks them. Days with rows written before 0011 (which
keep no outlets) are marked too, so detection no longer scans its span for such rows on every run.

Revision ID: 0012_seed_counts_marks
Revises: 0011_count_outlets
Create Date: 2026-12-07 18:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012_seed_counts_marks"
down_revision: str | None = "0011_count_outlets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Tables whose data downgrade() drops: none (the marks are derived: detection counts their days).
DOWNGRADE_DROPS: tuple[str, ...] = ()


def upgrade() -> None:
    op.execute(
        "INSERT INTO count_changes (day) "
        "SELECT DISTINCT day FROM daily_counts WHERE subject_kind = 'narrative' OR outlets IS NULL"
    )


def downgrade() -> None:
    """Nothing to undo: a mark only makes detection count a day again."""
