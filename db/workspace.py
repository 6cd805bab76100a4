"""Tables of the analysts' workspace in the served app: accounts, the audit trail, seeds edited there.

Re-exported by ``narrwatch.db.models``, so ``Base.metadata`` (and Alembic) always sees these tables.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from narrwatch.db.base import Base

# --- analysts' workspace: accounts, audit trail, seeds edited in the app ------------------------


class User(Base):
    """An account of the served app. ``password_hash`` is an argon2 hash; None for SSO-only accounts."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(20))  # reader | analyst | operator | admin
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime]
    last_login_at: Mapped[dt.datetime | None]


class AuditEvent(Base):
    """Who did what and when: every verdict, seed change, feed action and account change."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    username: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(40))  # e.g. verdict.confirm, seed.save, feed.pause
    subject: Mapped[str] = mapped_column(String(200))  # e.g. match:12, seed:nato-aggressor
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SeedHead(Base):
    """The current text of a seed narrative: SQL is its source of truth once seeds were imported.

    ``file_sha`` is the sha256 of the YAML file as last imported or exported, so a file edited on disk
    since then is noticed (and imported unless the seed was also edited in the app).
    """

    __tablename__ = "seed_heads"

    narrative_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column()
    source: Mapped[str] = mapped_column(String(20))  # import | web | promote
    file_sha: Mapped[str | None] = mapped_column(String(64))
    # the revision the file held at that import or export: a newer revision is an unexported app edit
    synced_revision: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime]
    updated_by: Mapped[str] = mapped_column(String(100))


class SeedRevision(Base):
    """Every saved text of a seed, with its author: the seed editor's history."""

    __tablename__ = "seed_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    narrative_id: Mapped[str] = mapped_column(String(100), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column()
    source: Mapped[str] = mapped_column(String(20))
    author: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime]

    __table_args__ = (UniqueConstraint("narrative_id", "revision"),)
