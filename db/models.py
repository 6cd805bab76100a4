"""The SQL store: the source of truth. Qdrant only holds a projection of ``passages``.

The declarative base and its UTC time type live in ``narrwatch.db.base``, the analysts' workspace
tables in ``narrwatch.db.workspace``. They are re-exported here: importing this module registers
every table on ``Base.metadata`` (Alembic's env relies on that), callers import any model from here,
and the migrations name ``narrwatch.db.models.UTCDateTime``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from narrwatch.db.base import Base as Base
from narrwatch.db.base import UTCDateTime as UTCDateTime
from narrwatch.db.workspace import AuditEvent as AuditEvent
from narrwatch.db.workspace import SeedHead as SeedHead
from narrwatch.db.workspace import SeedRevision as SeedRevision
from narrwatch.db.workspace import User as User

# --- feeds --------------------------------------------------------------------------------------


class Feed(Base):
    """One feed of one outlet, synced from feeds.yaml, with its fetch state and health."""

    __tablename__ = "feeds"

    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    outlet: Mapped[str] = mapped_column(String(100), index=True)
    name: Mapped[str] = mapped_column(String(300))
    url: Mapped[str] = mapped_column(Text)
    country: Mapped[str] = mapped_column(String(8))
    languages: Mapped[list[Any]] = mapped_column(default=list)
    group: Mapped[str] = mapped_column(String(100), default="default")
    state_affiliated: Mapped[bool] = mapped_column(Boolean, default=False)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    full_text: Mapped[bool] = mapped_column(Boolean, default=False)
    poll_overrides: Mapped[dict[str, Any]] = mapped_column(default=dict)
    in_config: Mapped[bool] = mapped_column(Boolean, default=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)

    # conditional GET and change detection
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    body_hash: Mapped[str | None] = mapped_column(String(64))
    # entry keys: FreshRSS-style degradation from GUIDs to links when a feed's GUIDs are unusable
    guid_unreliable: Mapped[bool] = mapped_column(Boolean, default=False)

    # schedule and health
    next_poll_at: Mapped[dt.datetime | None]
    poll_interval_s: Mapped[int | None] = mapped_column(Integer)
    mean_item_gap_s: Mapped[float | None] = mapped_column(Float)
    last_attempt_at: Mapped[dt.datetime | None]
    last_success_at: Mapped[dt.datetime | None]
    last_new_item_at: Mapped[dt.datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status: Mapped[int | None] = mapped_column(Integer)
    retry_after_until: Mapped[dt.datetime | None]
    items_total: Mapped[int] = mapped_column(Integer, default=0)
    undated_items_total: Mapped[int] = mapped_column(Integer, default=0)


class FeedFetch(Base):
    """One attempt to poll a feed: the health log behind `narrwatch feeds health`."""

    __tablename__ = "feed_fetches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feed_id: Mapped[str] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[dt.datetime]
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(20))  # new | unchanged | not_modified | error
    http_status: Mapped[int | None] = mapped_column(Integer)
    n_entries: Mapped[int] = mapped_column(Integer, default=0)
    n_new: Mapped[int] = mapped_column(Integer, default=0)
    n_undated: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


# --- articles -----------------------------------------------------------------------------------


class Article(Base):
    """Every article once. ``canonical_url`` is the dedup key; ``point_ns`` the stable vector id seed."""

    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    canonical_url: Mapped[str] = mapped_column(String(2048), unique=True)
    url: Mapped[str] = mapped_column(Text)
    feed_id: Mapped[str] = mapped_column(ForeignKey("feeds.id"), index=True)
    outlet: Mapped[str] = mapped_column(String(100), index=True)
    country: Mapped[str] = mapped_column(String(8))
    language: Mapped[str | None] = mapped_column(String(16))
    language_detector: Mapped[str | None] = mapped_column(String(40))
    #: ISO 15924 script of the text ("Cyrl", "Latn"): Serbian is written in both
    script: Mapped[str | None] = mapped_column(String(4))
    title: Mapped[str] = mapped_column(Text)
    title_key: Mapped[str] = mapped_column(String(64), index=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    text_source: Mapped[str] = mapped_column(String(40), default="feed")  # feed | trafilatura-<ver>
    content_hash: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[dt.datetime] = mapped_column(index=True)
    published_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    fetched_at: Mapped[dt.datetime]
    story_key: Mapped[str] = mapped_column(String(64), index=True)  # groups copies across outlets

    sightings: Mapped[list[ArticleSighting]] = relationship(back_populates="article")

    __table_args__ = (Index("ix_articles_outlet_title_key", "outlet", "title_key"),)


class ArticleSighting(Base):
    """Every time an entry pointed at a stored article: its feed, entry key and the URL as seen."""

    __tablename__ = "article_sightings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    feed_id: Mapped[str] = mapped_column(ForeignKey("feeds.id"))
    entry_key: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text, default="")
    matched_by: Mapped[str] = mapped_column(String(20))  # new | entry_key | canonical_url | title
    seen_at: Mapped[dt.datetime]

    article: Mapped[Article] = relationship(back_populates="sightings")

    __table_args__ = (UniqueConstraint("feed_id", "entry_key"),)


class Tombstone(Base):
    """An article removed by retention: its URL is never stored again, its points are deleted."""

    __tablename__ = "tombstones"

    canonical_url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    article_id: Mapped[int] = mapped_column(Integer)
    deleted_at: Mapped[dt.datetime]
    reason: Mapped[str] = mapped_column(String(40), default="retention")


# --- vectors ------------------------------------------------------------------------------------


class Passage(Base):
    """A passage of an article as embedded for one collection (model + dimension).

    ``point_id`` is fixed at first insert and never recomputed; the row is the outbox entry for the
    Qdrant point.
    """

    __tablename__ = "passages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    collection: Mapped[str] = mapped_column(String(200))
    idx: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    point_id: Mapped[str] = mapped_column(String(36))
    #: The point's vector (unit length, float32 little-endian), written with the article's mark once
    #: the store acknowledged it: matching and clustering read vectors here without opening the
    #: store, and the store can be refilled from here. None: written before this column existed, or
    #: the text changed since.
    vector: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, default=None)

    __table_args__ = (
        UniqueConstraint("article_id", "collection", "idx"),
        UniqueConstraint("collection", "point_id"),
    )


class ArticleEmbedding(Base):
    """Marks an article embedded in a collection, written only after Qdrant acknowledged the upsert."""

    __tablename__ = "article_embeddings"

    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True)
    collection: Mapped[str] = mapped_column(String(200), primary_key=True)
    n_passages: Mapped[int] = mapped_column(Integer)
    model_name: Mapped[str] = mapped_column(Text)
    backend: Mapped[str] = mapped_column(String(20))
    model_fingerprint: Mapped[str] = mapped_column(String(64))
    embedded_at: Mapped[dt.datetime]


class WorkClaim(Base):
    """A lease on one article's work of one kind (embed, match) in one collection, held by a worker.

    Taken before the work and removed when its result is committed. Another worker skips an article
    while the lease is live; a lease that expired, or whose worker process on the same host died, is
    taken over. So N workers share one backlog without doing an article twice (narrwatch/claims.py).
    """

    __tablename__ = "work_claims"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    collection: Mapped[str] = mapped_column(String(200), primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True)
    worker: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[dt.datetime]


# --- narratives and matches ---------------------------------------------------------------------


class NarrativeVersion(Base):
    """A seed narrative as it was when used: editing a seed file creates a new version."""

    __tablename__ = "narrative_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    narrative_id: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    parent_id: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    definition: Mapped[dict[str, Any]] = mapped_column()
    source_file: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime]

    __table_args__ = (
        UniqueConstraint("narrative_id", "version"),
        UniqueConstraint("narrative_id", "content_hash"),
    )


class Match(Base):
    """An article matched to a seed, with the evidence and everything needed to reproduce it."""

    __tablename__ = "matches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    narrative_id: Mapped[str] = mapped_column(String(100), index=True)
    narrative_version_id: Mapped[int] = mapped_column(ForeignKey("narrative_versions.id"))
    collection: Mapped[str] = mapped_column(String(200))
    model_name: Mapped[str] = mapped_column(Text)
    score: Mapped[float] = mapped_column(Float)
    level: Mapped[str] = mapped_column(String(10))  # suggest | confirm
    evidence_text: Mapped[str] = mapped_column(Text)
    evidence_idx: Mapped[int] = mapped_column(Integer)
    evidence_score: Mapped[float] = mapped_column(Float)
    evidence_language: Mapped[str | None] = mapped_column(String(16))
    lexical_score: Mapped[float] = mapped_column(Float, default=0.0)
    # the seed phrasing (example or description) the evidence passage came closest to
    evidence_example: Mapped[str | None] = mapped_column(Text)
    threshold_suggest: Mapped[float] = mapped_column(Float)
    threshold_confirm: Mapped[float] = mapped_column(Float)
    published_at: Mapped[dt.datetime] = mapped_column(index=True)
    matched_at: Mapped[dt.datetime]
    # the score before per-language calibration (``score`` is calibrated)
    raw_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    # promoting | reporting | debunking, and the cue words that decided it (comma-separated)
    stance: Mapped[str | None] = mapped_column(String(16), nullable=True)
    stance_cues: Mapped[str | None] = mapped_column(Text, nullable=True)
    # the probability of the verdict head that decided, which head ("seed" or "stream") and the
    # probability at which it confirms; all None when the thresholds decided
    head_probability: Mapped[float | None] = mapped_column(Float, nullable=True)
    head_kind: Mapped[str | None] = mapped_column(String(8), nullable=True)
    head_cut: Mapped[float | None] = mapped_column(Float, nullable=True)

    # detection reads each seed's first match: the index's first entry, not a scan of the seed's matches
    __table_args__ = (
        UniqueConstraint("article_id", "narrative_id", "collection"),
        Index("ix_matches_narrative_id_published_at", "narrative_id", "published_at"),
    )


class MatchState(Base):
    """Which seeds (versions and thresholds) an article was last scored against in a collection.

    `match` skips articles whose state equals the current seeds, so a run rescoring a window only
    works on new articles and on all of them after a seed edit; an article with a state row and no
    match row was scored and matched nothing.
    """

    __tablename__ = "match_states"

    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True)
    collection: Mapped[str] = mapped_column(String(200), primary_key=True)
    seeds_key: Mapped[str] = mapped_column(String(64))
    matched_at: Mapped[dt.datetime]


class Verdict(Base):
    """An analyst's verdict on a match. Keyed by article and seed so it outlives a recomputed match."""

    __tablename__ = "verdicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    narrative_id: Mapped[str] = mapped_column(String(100), index=True)
    match_id: Mapped[int | None] = mapped_column(ForeignKey("matches.id", ondelete="SET NULL"))
    verdict: Mapped[str] = mapped_column(String(10))  # confirm | reject
    score: Mapped[float] = mapped_column(Float)
    collection: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime]

    __table_args__ = (UniqueConstraint("article_id", "narrative_id", "collection"),)


class Calibration(Base):
    """Thresholds calibrated from verdicts for one seed and collection."""

    __tablename__ = "calibrations"

    narrative_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    collection: Mapped[str] = mapped_column(String(200), primary_key=True)
    suggest: Mapped[float] = mapped_column(Float)
    confirm: Mapped[float] = mapped_column(Float)
    target_precision: Mapped[float] = mapped_column(Float)
    n_verdicts: Mapped[int] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime]


# --- clusters -----------------------------------------------------------------------------------


class Cluster(Base):
    """An emerging story among unmatched articles. Ids are stable; a merged cluster keeps the older id."""

    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(10), default="live")  # live | merged | promoted
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("clusters.id"), index=True)
    # publication time of the article whose arrival merged this cluster: counts for days before it
    # keep the two clusters apart, so re-detecting a past day gives the same flags after a merge
    merged_at: Mapped[dt.datetime | None]
    size: Mapped[int] = mapped_column(Integer, default=0)
    centroid: Mapped[list[Any]] = mapped_column(default=list)
    label: Mapped[str] = mapped_column(Text, default="")
    representative_title: Mapped[str] = mapped_column(Text, default="")
    representative_article_id: Mapped[int | None] = mapped_column(Integer)
    first_seen_at: Mapped[dt.datetime]
    last_seen_at: Mapped[dt.datetime]

    # cluster reads the live clusters of its window: a range on last_seen_at, not a scan of history
    __table_args__ = (Index("ix_clusters_collection_last_seen_at", "collection", "last_seen_at"),)


class ClusterMember(Base):
    __tablename__ = "cluster_members"

    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True)
    collection: Mapped[str] = mapped_column(String(200), primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id"), index=True)
    similarity: Mapped[float] = mapped_column(Float)
    published_at: Mapped[dt.datetime]

    # labels read the members published around a cluster, detection and the report a day's members
    # of every collection: ranges, not scans of every member
    __table_args__ = (
        Index("ix_cluster_members_collection_published_at", "collection", "published_at"),
        Index("ix_cluster_members_published_at", "published_at"),
    )


# --- rising detection ---------------------------------------------------------------------------


class DailyCount(Base):
    """Per day and subject (seed or cluster), overall and per country and language."""

    __tablename__ = "daily_counts"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(10), primary_key=True)  # narrative | cluster
    subject_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    dimension: Mapped[str] = mapped_column(String(10), primary_key=True)  # all | country | language
    dimension_value: Mapped[str] = mapped_column(String(16), primary_key=True)
    n_articles: Mapped[int] = mapped_column(Integer)
    n_stories: Mapped[int] = mapped_column(Integer)
    n_outlets: Mapped[int] = mapped_column(Integer)
    #: The outlets behind ``n_outlets``, sorted, one per line: a cluster's stored days are read back
    #: as sets, so clusters merged later are counted by union instead of from their members again.
    #: Empty on rows written before migration 0011 (detection counts such days again).
    outlets: Mapped[str | None] = mapped_column(Text, nullable=True)

    # Detection reads a few hundred subjects' counts over three months: the primary key leads with
    # the day, which made each read scan every subject's rows of the span (120 s at 1M articles).
    __table_args__ = (Index("ix_daily_counts_subject_day", "subject_kind", "subject_id", "day"),)


class DailyVolume(Base):
    """Per day and outlet, what it published: the exposure and weekday data of rising detection, stored
    so a day's baselines read a row per outlet and day instead of every article of the baseline."""

    __tablename__ = "daily_volumes"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    outlet: Mapped[str] = mapped_column(String(100), primary_key=True)
    n_articles: Mapped[int] = mapped_column(Integer)
    n_stories: Mapped[int] = mapped_column(Integer)


class GroupCount(Base):
    """A cluster group's daily counts, folded from the stored ``daily_counts`` rows of every cluster
    in ``group_members`` under it: detection's cache. A group that absorbed thousands of clusters is
    read as its own few rows a day instead of its members' (1.4 million rows at 1M articles). Derived:
    dropping both tables only makes the next detection fold again."""

    __tablename__ = "group_counts"

    survivor_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    dimension: Mapped[str] = mapped_column(String(10), primary_key=True)
    dimension_value: Mapped[str] = mapped_column(String(16), primary_key=True)
    n_articles: Mapped[int] = mapped_column(Integer)
    n_stories: Mapped[int] = mapped_column(Integer)
    outlets: Mapped[str] = mapped_column(Text)


class GroupMember(Base):
    """Which group's ``group_counts`` hold a cluster's stored rows, and the end of the day whose
    detection folded it there (folding only moves forward: a re-run of an earlier day reads)."""

    __tablename__ = "group_members"

    cluster_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    survivor_id: Mapped[str] = mapped_column(String(100), index=True)
    folded_for: Mapped[dt.datetime] = mapped_column(index=True)


class CountChange(Base):
    """A day whose stored counts a later write made stale: a match coming, going or changing level, a
    verdict on one of its articles, a member joining a cluster, an article removed. Detection counts
    the day again (seeds, clusters and volumes) and removes the marks it read."""

    __tablename__ = "count_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    day: Mapped[dt.date] = mapped_column(Date, index=True)


class RisingFlag(Base):
    """A subject that rose on a day, with the statistic behind the flag."""

    __tablename__ = "rising_flags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, index=True)
    subject_kind: Mapped[str] = mapped_column(String(10))
    subject_id: Mapped[str] = mapped_column(String(100))
    dimension: Mapped[str] = mapped_column(String(10))
    dimension_value: Mapped[str] = mapped_column(String(16))
    statistic: Mapped[str] = mapped_column(String(40))
    rate_ratio: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer)
    baseline: Mapped[float] = mapped_column(Float)
    n_outlets: Mapped[int] = mapped_column(Integer)
    n_articles: Mapped[int] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    top_articles: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[dt.datetime]
    # which window fired (1, 3 or 7 days); count and baseline above are that window's
    window_days: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # new: no flag for the subject in the days before (rising_new_after_days); else continuing
    is_new: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    run_day: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # K of "day K"
    # since yesterday: outlets then, outlets today that were not there, and yesterday's flag
    outlets_yesterday: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    new_outlets: Mapped[list[Any]] = mapped_column(default=list, server_default="[]")
    flagged_yesterday: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (UniqueConstraint("day", "subject_kind", "subject_id", "dimension", "dimension_value"),)


# --- operations ---------------------------------------------------------------------------------


class PipelineRun(Base):
    """One run of one step, from the CLI or a DAG task: what `narrwatch status` shows."""

    __tablename__ = "pipeline_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    step: Mapped[str] = mapped_column(String(40), index=True)
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    status: Mapped[str] = mapped_column(String(10))  # running | ok | failed
    window_start: Mapped[dt.datetime | None]
    window_end: Mapped[dt.datetime | None]
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
