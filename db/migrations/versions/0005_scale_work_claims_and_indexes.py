"""work claims (leases for N embed/match workers) and indexes for the daily steps at scale

Revision ID: 0005_scale
Revises: 0004_web
Create Date: 2026-12-06 02:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import narrwatch.db.models

revision: str = "0005_scale"
down_revision: str | None = "0004_web"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "work_claims",
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("collection", sa.String(length=200), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("expires_at", narrwatch.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name=op.f("fk_work_claims_article_id_articles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("kind", "collection", "article_id", name=op.f("pk_work_claims")),
    )
    op.create_index("ix_clusters_collection_last_seen_at", "clusters", ["collection", "last_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_clusters_collection_last_seen_at", table_name="clusters")
    op.drop_table("work_claims")
