"""accounts, audit trail, seeds edited in the app, full-text search over articles

Revision ID: 0004_web
Revises: 0003_match_evidence
Create Date: 2026-12-06 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import narrwatch.db.models
from narrwatch.db.search import create_search_index, drop_search_index

revision: str = "0004_web"
down_revision: str | None = "0003_match_evidence"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Tables downgrade() drops: `narrwatch db downgrade` refuses while they hold rows.
DOWNGRADE_DROPS = ("seed_revisions", "seed_heads", "audit_events", "users")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", narrwatch.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", narrwatch.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", narrwatch.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_username"), ["username"], unique=False)
    op.create_table(
        "seed_heads",
        sa.Column("narrative_id", sa.String(length=100), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("file_sha", sa.String(length=64), nullable=True),
        sa.Column("synced_revision", sa.Integer(), nullable=True),
        sa.Column("updated_at", narrwatch.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("narrative_id", name=op.f("pk_seed_heads")),
    )
    op.create_table(
        "seed_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("narrative_id", sa.String(length=100), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("author", sa.String(length=100), nullable=False),
        sa.Column("created_at", narrwatch.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seed_revisions")),
        sa.UniqueConstraint("narrative_id", "revision", name=op.f("uq_seed_revisions_narrative_id_revision")),
    )
    with op.batch_alter_table("seed_revisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_seed_revisions_narrative_id"), ["narrative_id"], unique=False)
    create_search_index(op.get_bind())


def downgrade() -> None:
    drop_search_index(op.get_bind())
    with op.batch_alter_table("seed_revisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_seed_revisions_narrative_id"))
    op.drop_table("seed_revisions")
    op.drop_table("seed_heads")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_username"))
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))
    op.drop_table("audit_events")
    op.drop_table("users")
