"""`narrwatch eval cluster` and `narrwatch eval rising`: contracts for tools that score narrwatch.

Both replay a labelled stream through the pipeline's own code (passage splitting and the configured
encoder via ``vectorize.embed_pending``, then clustering or matching and rising detection) on
temporary stores: a SQLite file in a temporary folder and Qdrant ``:memory:``. The configured
database and vector store are never opened.

Input: JSON Lines, one article per line, as for ``eval match``: ``id``, ``title``, ``text``,
``language``, ``published`` (ISO 8601, required here), ``outlet``; optional ``country``.

- ``eval cluster``: each row has ``cluster`` (its gold story id) instead of ``labels``. There are no
  seeds, so every article is unmatched; all rows are clustered in publication order. Output
  (``--json``): ``{"n_articles", "n_clusters", "bcubed": {"precision", "recall", "f1"},
  "pairwise": {"precision", "recall", "f1"}}``.
- ``eval rising``: ``outlet`` is required and ``labels`` optional. The stream is replayed day by day
  (matching, then detection) with the seeds of the given directory. Output (``--json``): a list of
  ``{"date", "narrative", "statistic", "p_value", "count", "baseline", "outlets"}``, one per seed
  flag on the whole stream (dimension ``all``); ``statistic`` is the rate ratio, ``count`` the
  distinct outlet-days in the test window and ``baseline`` their expected number, ``outlets`` the
  distinct outlets on the day.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from narrwatch.config import Settings
from narrwatch.context import AppContext
from narrwatch.db.models import Cluster, ClusterMember, RisingFlag
from narrwatch.domain.clock import day_start
from narrwatch.domain.clustering import bcubed, pairwise, resolve
from narrwatch.eval.match import (
    EVAL_COUNTRY,
    iso_utc,
    iter_jsonl_rows,
    store_eval_articles,
    temporary_context,
)

if TYPE_CHECKING:
    from narrwatch.ports import Encoder

JOIN_SWEEP = tuple(round(0.30 + 0.05 * step, 2) for step in range(12))


class StreamDataError(ValueError):
    """A line of the articles file is unusable; the message names the file, line and field."""


@dataclass(frozen=True)
class StreamArticle:
    id: str
    title: str
    text: str
    language: str | None
    published: dt.datetime
    outlet: str
    country: str
    cluster: str | None
    labels: frozenset[str]


def _published(value: Any, where: str) -> dt.datetime:
    if not isinstance(value, str) or not value.strip():
        raise StreamDataError(f"{where}: field 'published' is missing (ISO 8601 required)")
    try:
        return iso_utc(value)
    except ValueError as exc:
        raise StreamDataError(f"{where}: published {value!r} is not ISO 8601") from exc


def read_stream(path: Path, *, need_cluster: bool, need_outlet: bool) -> list[StreamArticle]:
    """Parse and check the JSON Lines file, naming file, line and field on any problem."""
    articles: list[StreamArticle] = []
    required = ["title", "text", "published"]
    required += ["cluster"] if need_cluster else []
    required += ["outlet"] if need_outlet else []
    for where, row in iter_jsonl_rows(path, StreamDataError):
        for name in required:
            if row.get(name) in (None, ""):
                raise StreamDataError(f"{where}: field {name!r} is missing")
        if not isinstance(row["title"], str) or not isinstance(row["text"], str):
            raise StreamDataError(f"{where}: title and text must be strings")
        labels = row.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise StreamDataError(f"{where}: labels must be a list of seed ids")
        articles.append(
            StreamArticle(
                id=str(row["id"]),
                title=row["title"],
                text=row["text"],
                language=row.get("language") or None,
                published=_published(row.get("published"), where),
                outlet=str(row.get("outlet") or "eval"),
                country=str(row.get("country") or EVAL_COUNTRY)[:8],
                cluster=str(row["cluster"]) if row.get("cluster") is not None else None,
                labels=frozenset(labels),
            )
        )
    if not articles:
        raise StreamDataError(f"{path}: no articles")
    return sorted(articles, key=lambda a: (a.published, a.id))


def predicted_clusters(ctx: AppContext, ids: dict[str, int]) -> dict[str, str]:
    """Each stream article's surviving cluster; an article that could not be clustered is alone."""
    with ctx.transaction() as session:
        merged = {
            cid: into
            for cid, into in session.execute(
                select(Cluster.id, Cluster.merged_into).where(Cluster.merged_into.is_not(None))
            ).tuples()
            if into is not None
        }
        members = dict(
            session.execute(select(ClusterMember.article_id, ClusterMember.cluster_id)).tuples().all()
        )
    return {
        stream_id: (
            f"cluster-{resolve(members[stored], merged)}" if stored in members else f"alone-{stream_id}"
        )
        for stream_id, stored in ids.items()
    }


def eval_cluster(
    articles_path: Path, settings: Settings, *, encoder: Encoder | None = None
) -> dict[str, Any]:
    """Cluster the stream on temporary stores and score the partition against the gold clusters."""
    from narrwatch.steps.cluster.cluster import cluster_unmatched
    from narrwatch.steps.embed import embed as vectorize

    articles = read_stream(articles_path, need_cluster=True, need_outlet=False)
    start = articles[0].published
    end = articles[-1].published + dt.timedelta(seconds=1)
    with tempfile.TemporaryDirectory(prefix="narrwatch-no-seeds-") as no_seeds:
        with temporary_context(settings, Path(no_seeds), encoder) as ctx:
            ids = store_eval_articles(ctx, articles, end)
            vectorize.embed_pending(ctx, end)
            cluster_unmatched(ctx, start, end, end)
            predicted = predicted_clusters(ctx, ids)
    guess = [predicted[a.id] for a in articles]
    gold = [a.cluster for a in articles]
    return {
        "n_articles": len(articles),
        "n_clusters": len(set(guess)),
        "bcubed": bcubed(guess, gold).as_dict(),
        "pairwise": pairwise(guess, gold).as_dict(),
    }


@dataclass(frozen=True)
class RisingRun:
    flags: list[dict[str, Any]]  # the contract's entries: seeds, dimension "all"
    all_flags: list[dict[str, Any]]  # every flag, for people reading the output
    days: int


def eval_rising(
    articles_path: Path, narratives_dir: Path, settings: Settings, *, encoder: Encoder | None = None
) -> RisingRun:
    """Replay the stream day by day through matching and rising detection on temporary stores."""
    from narrwatch.steps.detect.detect import detect_rising
    from narrwatch.steps.embed import embed as vectorize
    from narrwatch.steps.match import match as matching
    from narrwatch.steps.match.seeds import load_narratives
    from narrwatch.steps.match.versions import sync_narratives

    narratives = load_narratives(narratives_dir)
    articles = read_stream(articles_path, need_cluster=False, need_outlet=True)
    unknown = sorted({label for a in articles for label in a.labels} - set(narratives.ids))
    if unknown:
        raise StreamDataError(f"{articles_path}: labels {unknown} are not seed ids in {narratives_dir}")
    first_day, last_day = articles[0].published.date(), articles[-1].published.date()
    n_days = (last_day - first_day).days + 1
    with temporary_context(settings, narratives_dir, encoder) as ctx:
        store_eval_articles(ctx, articles, day_start(first_day))
        vectorize.embed_pending(ctx, day_start(first_day))
        sync_narratives(ctx, day_start(first_day), narratives)
        for offset in range(n_days):
            day = first_day + dt.timedelta(days=offset)
            start, end = day_start(day), day_start(day + dt.timedelta(days=1))
            matching.match_articles(ctx, start, end, end)
            detect_rising(ctx, day, end)
        with ctx.transaction() as session:
            rows = session.execute(
                select(RisingFlag).order_by(
                    RisingFlag.day,
                    RisingFlag.subject_kind,
                    RisingFlag.subject_id,
                    RisingFlag.dimension,
                    RisingFlag.dimension_value,
                )
            ).scalars()
            every = [
                {
                    "date": row.day.isoformat(),
                    "kind": row.subject_kind,
                    "subject": row.subject_id,
                    "dimension": row.dimension,
                    "value": row.dimension_value,
                    "statistic": row.rate_ratio,
                    "p_value": row.p_value,
                    "count": row.count,
                    "baseline": row.baseline,
                    "outlets": row.n_outlets,
                    "window": row.window_days,
                    "new": row.is_new,
                    "test": row.statistic,
                }
                for row in rows
            ]
    contract = [
        {
            "date": flag["date"],
            "narrative": flag["subject"],
            "statistic": flag["statistic"],
            "p_value": flag["p_value"],
            "count": flag["count"],
            "baseline": flag["baseline"],
            "outlets": flag["outlets"],
            "new": flag["new"],
            "window": flag["window"],
        }
        for flag in every
        if flag["kind"] == "narrative" and flag["dimension"] == "all"
    ]
    return RisingRun(flags=contract, all_flags=every, days=n_days)


def sweep_cluster_thresholds(
    articles_path: Path,
    settings: Settings,
    joins: Sequence[float] = JOIN_SWEEP,
    *,
    encoder: Encoder | None = None,
) -> dict[str, Any]:
    """Embed a labelled stream once, then cluster it at each join threshold (bench/rising.py clusters).

    Each join threshold is tried with merging at the same threshold, 0.1 above it, and never (1.0).
    """
    from narrwatch.domain.clustering import ClusterThresholds, OnlineClusterer
    from narrwatch.embeddings.collections import collection_for
    from narrwatch.steps.cluster.cluster import article_vectors
    from narrwatch.steps.embed import embed as vectorize

    articles = read_stream(articles_path, need_cluster=True, need_outlet=False)
    end = articles[-1].published + dt.timedelta(seconds=1)
    with tempfile.TemporaryDirectory(prefix="narrwatch-no-seeds-") as no_seeds:
        with temporary_context(settings, Path(no_seeds), encoder) as ctx:
            ids = store_eval_articles(ctx, articles, end)
            vectorize.embed_pending(ctx, end)
            collection = collection_for(ctx.encoder)
            model = ctx.encoder.model_name
            with ctx.transaction() as session:
                vectors = article_vectors(session, ctx.vector_store, collection, list(ids.values()))
    gold = [a.cluster for a in articles]
    rows = []
    window = dt.timedelta(days=settings.cluster_window_days)
    pairs = [(join, merge) for join in joins for merge in (join, round(join + 0.1, 2), 1.0)]
    for join, merge in pairs:
        thresholds = ClusterThresholds(join=join, merge=merge)
        clusterer = OnlineClusterer([], thresholds=thresholds, window=window, next_id=1)
        assigned = {
            a.id: clusterer.add(ids[a.id], a.published, vectors[ids[a.id]]).cluster_id
            for a in articles
            if ids[a.id] in vectors
        }
        merged = {m.absorbed_id: m.into_id for m in clusterer.merges}
        guess = [
            f"c{resolve(assigned[a.id], merged)}" if a.id in assigned else f"alone-{a.id}" for a in articles
        ]
        rows.append(
            {
                "join": join,
                "merge": round(thresholds.merge, 4),
                "n_clusters": len(set(guess)),
                "bcubed": bcubed(guess, gold).as_dict(),
                "pairwise": pairwise(guess, gold).as_dict(),
            }
        )
    return {
        "model": model,
        "n_articles": len(articles),
        "n_gold_clusters": len(set(gold)),
        "rows": rows,
    }
