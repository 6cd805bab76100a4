"""Emerging clusters: articles no seed covers, clustered online with ids that survive reruns.

``cluster_unmatched(ctx, start, end, now)`` takes the articles embedded in the configured model's
collection, published in ``[start, end)``, that have no active seed match (a suggest or confirm match
no analyst rejected) and are not clustered yet, and feeds them to the online clusterer in publication
order, resuming from the stored clusters. An article's vector is its claim vector
(``claim_vector``: the lead passage), read back from the vector store. Already clustered articles
are skipped, so a rerun changes nothing and ids never move; members keep the cluster they first
joined, and a merge only marks the younger cluster ``merged`` with ``merged_into`` and ``merged_at``
(rising detection follows merges that happened before the day it counts). A touched cluster's
label and representative are worked out again when its size passes a rung of a geometric ladder
(``needs_description``), so a long-lived cluster is not read whole every day it gains a member.

``promote_cluster`` turns a cluster into a draft seed file for an analyst to finish.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from narrwatch.context import AppContext
from narrwatch.db import rules
from narrwatch.db.models import Article, ArticleEmbedding, Cluster, ClusterMember
from narrwatch.domain.clustering import (
    ClusterState,
    ClusterThresholds,
    OnlineClusterer,
    claim_vector,
    distinctive_terms,
    model_key,
    needs_description,
    thresholds_for,
    tokenize,
)
from narrwatch.embeddings.points import canonical_id, passage_vectors_of

if TYPE_CHECKING:
    from narrwatch.ports import Encoder, VectorStore


#: Characters of an article's text that feed its label terms: the lead says what the story is.
LABEL_TEXT_CHARS = 1500


LABEL_TERMS = 5


#: Neighbouring articles (the newest around the clusters) that labels are contrasted with: enough
#: for document frequencies, bounded so labelling stays cheap on a busy day.
LABEL_BACKGROUND = 3000


#: Members whose vectors are read to pick the representative of a large cluster (the newest ones).
REPRESENTATIVE_SAMPLE = 400


#: Members whose text gives a cluster its label (the newest ones): a long-lived cluster is labelled by
#: what it says now, and describing it reads a bounded number of texts however many members it has
#: (at 1M stored articles the bench's largest groups had 54,000 members, read and tokenised whole).
LABEL_MEMBERS = 500


#: Passages offered as examples in a promoted draft seed.
PROMOTE_EXAMPLES = 6


class ClusteringError(RuntimeError):
    """A configuration or request problem, with a message that says what to do."""


@dataclass
class ClusterReport:
    collection: str
    join_threshold: float = 0.0
    merge_threshold: float = 0.0
    n_candidates: int = 0
    n_clustered: int = 0
    n_missing_vectors: int = 0
    n_new_clusters: int = 0
    n_joined: int = 0
    n_merges: int = 0
    touched: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "join_threshold": self.join_threshold,
            "merge_threshold": self.merge_threshold,
            "n_candidates": self.n_candidates,
            "n_clustered": self.n_clustered,
            "n_missing_vectors": self.n_missing_vectors,
            "n_new_clusters": self.n_new_clusters,
            "n_joined": self.n_joined,
            "n_merges": self.n_merges,
            "touched": self.touched[:100],
        }


def cluster_thresholds(encoder: Encoder, override: float | None) -> ClusterThresholds:
    thresholds = thresholds_for(encoder.model_name, override)
    if thresholds is None:
        raise ClusteringError(
            f"no tuned cluster threshold for the model {encoder.model_name!r} "
            f"({model_key(encoder.model_name)}): set NARRWATCH_CLUSTER_THRESHOLD, choosing it with "
            "`narrwatch eval cluster` on a labelled stream of your own"
        )
    return thresholds


def passage_vectors(
    session: Session, store: VectorStore, collection: str, article_ids: Sequence[int]
) -> dict[int, npt.NDArray[np.float64]]:
    """Each article's passage vectors in passage order, one row each; articles with a missing point
    are left out."""
    ids = sorted(set(article_ids))
    passages: dict[int, list[str]] = defaultdict(list)
    rows_read = []
    for chunk in rules.chunked(ids):
        for passage in session.scalars(rules.current_passages(collection, chunk)):
            passages[passage.article_id].append(canonical_id(passage.point_id))
            rows_read.append(passage)
    found = passage_vectors_of(store, collection, rows_read)
    stacked: dict[int, npt.NDArray[np.float64]] = {}
    for article_id, rows in passages.items():
        parts = [found.get(p) for p in rows]
        if parts and all(part is not None for part in parts):
            stacked[article_id] = np.stack([np.asarray(p, dtype=np.float64) for p in parts if p is not None])
    return stacked


def article_vectors(
    session: Session, store: VectorStore, collection: str, article_ids: Sequence[int]
) -> dict[int, npt.NDArray[np.float64]]:
    """The claim vector of each article (``claim_vector`` of its passages); articles with a missing
    point are left out."""
    found = passage_vectors(session, store, collection, article_ids)
    vectors = {article_id: claim_vector(rows) for article_id, rows in found.items()}
    return {article_id: vector for article_id, vector in vectors.items() if vector is not None}


def _candidates(
    session: Session, collection: str, start: dt.datetime, end: dt.datetime
) -> list[tuple[int, dt.datetime]]:
    member = aliased(ClusterMember)
    rows = session.execute(
        select(Article.id, Article.published_at)
        .join(
            ArticleEmbedding,
            and_(ArticleEmbedding.article_id == Article.id, ArticleEmbedding.collection == collection),
        )
        .where(
            Article.published_at >= start,
            Article.published_at < end,
            ArticleEmbedding.n_passages > 0,
            ~exists().where(member.article_id == Article.id, member.collection == collection),
            ~rules.seed_covers(Article.id, ArticleEmbedding.collection, (start, end)),
        )
        .order_by(Article.published_at, Article.id)
    ).tuples()
    return list(rows)


def _state(row: Cluster) -> ClusterState:
    return ClusterState(
        id=row.id,
        centroid=np.asarray(row.centroid, dtype=np.float64),
        size=row.size,
        first_seen=row.first_seen_at,
        last_seen=row.last_seen_at,
    )


def _label_documents(session: Session, article_ids: Sequence[int]) -> dict[int, list[str]]:
    docs: dict[int, list[str]] = {}
    ids = sorted(set(article_ids))
    for chunk in rules.chunked(ids):
        rows = session.execute(
            select(
                Article.id,
                Article.title,
                func.substr(Article.summary, 1, LABEL_TEXT_CHARS),
                func.substr(Article.text, 1, LABEL_TEXT_CHARS),  # only the lead crosses the wire
            ).where(Article.id.in_(chunk))
        ).tuples()
        for article_id, title, summary, text in rows:
            body = text or summary or ""
            docs[article_id] = tokenize(f"{title}\n{title}\n{body}")  # the title counts twice
    return docs


def merged_groups(session: Session, collection: str, cluster_ids: Sequence[int]) -> dict[int, set[int]]:
    """Each cluster of ``cluster_ids`` with every cluster merged into it, directly or through others;
    a cluster that was itself merged away is alone. Follows the merges back from the given clusters
    only, not through every merge ever made."""
    merged_away = set(
        session.scalars(
            select(Cluster.id).where(Cluster.id.in_(list(cluster_ids)), Cluster.merged_into.is_not(None))
        )
    )
    groups = {cid: {cid} for cid in cluster_ids}
    root_of = {cid: cid for cid in cluster_ids if cid not in merged_away}
    frontier = sorted(root_of)
    while frontier:
        found = []
        for chunk in rules.chunked(frontier):
            rows = session.execute(
                select(Cluster.id, Cluster.merged_into).where(
                    Cluster.collection == collection, Cluster.merged_into.in_(chunk)
                )
            ).tuples()
            for cid, into in rows:
                if cid not in root_of and into is not None:
                    root_of[cid] = root_of[into]
                    groups[root_of[into]].add(cid)
                    found.append(cid)
        frontier = found
    return groups


def group_members(session: Session, collection: str, cluster_ids: Sequence[int]) -> dict[int, list[int]]:
    """Article ids of each cluster and of every cluster merged into it, oldest first."""
    groups = merged_groups(session, collection, cluster_ids)
    root_of = {cid: root for root, group in groups.items() for cid in group}
    members: dict[int, list[tuple[dt.datetime, int]]] = {cid: [] for cid in cluster_ids}
    for chunk in rules.chunked(sorted(root_of)):
        rows = session.execute(
            select(ClusterMember.published_at, ClusterMember.article_id, ClusterMember.cluster_id).where(
                ClusterMember.cluster_id.in_(chunk), ClusterMember.collection == collection
            )
        ).tuples()
        for published_at, article_id, cid in rows:
            members[root_of[cid]].append((published_at, article_id))
    return {cid: [article_id for _, article_id in sorted(found)] for cid, found in members.items()}


def members_of(session: Session, cluster_id: int, collection: str) -> list[int]:
    """Article ids of the cluster and of every cluster merged into it, oldest first."""
    return group_members(session, collection, [cluster_id])[cluster_id]


def _describe(
    session: Session,
    store: VectorStore,
    collection: str,
    clusters: dict[int, Cluster],
    window: dt.timedelta,
) -> None:
    """Label and representative title of the given clusters, from their members and their neighbours."""
    if not clusters:
        return
    everyone = group_members(session, collection, sorted(clusters))
    members = {cid: ids[-LABEL_MEMBERS:] for cid, ids in everyone.items()}
    first = min(row.first_seen_at for row in clusters.values()) - window
    last = max(row.last_seen_at for row in clusters.values()) + window
    own = {article_id for ids in everyone.values() for article_id in ids}  # never background
    background_ids = [
        article_id
        for article_id in session.execute(
            select(ClusterMember.article_id)
            .where(
                ClusterMember.collection == collection,
                ClusterMember.published_at >= first,
                ClusterMember.published_at <= last,
            )
            .order_by(ClusterMember.published_at.desc(), ClusterMember.article_id)
            .limit(LABEL_BACKGROUND + len(own))
        ).scalars()
        if article_id not in own
    ][:LABEL_BACKGROUND]
    docs = _label_documents(session, [*(a for ids in members.values() for a in ids), *background_ids])
    labels = distinctive_terms(
        {cid: [docs[a] for a in ids if a in docs] for cid, ids in members.items()},
        [docs[a] for a in background_ids if a in docs],
        top=LABEL_TERMS,
    )
    sample = {cid: ids[-REPRESENTATIVE_SAMPLE:] for cid, ids in members.items()}
    vectors = article_vectors(session, store, collection, [a for ids in sample.values() for a in ids])
    titles = dict(
        session.execute(
            select(Article.id, Article.title).where(
                Article.id.in_([a for ids in sample.values() for a in ids])
            )
        )
        .tuples()
        .all()
    )
    for cid, row in clusters.items():
        row.label = ", ".join(labels.get(cid, []))
        direction = np.asarray(row.centroid, dtype=np.float64)
        scored = [
            (-float(vectors[a] @ direction), a) for a in sample[cid] if a in vectors
        ]  # ties: the older article
        if scored:
            best = min(scored)[1]
            row.representative_article_id = best
            row.representative_title = titles.get(best, "")


def cluster_unmatched(
    ctx: AppContext, start: dt.datetime, end: dt.datetime, now: dt.datetime
) -> ClusterReport:
    """Cluster the unmatched, not yet clustered articles published in ``[start, end)``."""
    from narrwatch.embeddings.collections import collection_for

    encoder = ctx.encoder
    collection = collection_for(encoder)
    thresholds = cluster_thresholds(encoder, ctx.settings.cluster_threshold)
    window = dt.timedelta(days=ctx.settings.cluster_window_days)
    report = ClusterReport(collection, thresholds.join, round(thresholds.merge, 6))
    store = ctx.vector_store

    with ctx.transaction() as session:
        candidates = _candidates(session, collection, start, end)
        report.n_candidates = len(candidates)
        if not candidates:
            return report
        vectors = article_vectors(session, store, collection, [article_id for article_id, _ in candidates])
        report.n_missing_vectors = len(candidates) - len(vectors)
        horizon = candidates[0][1] - window
        stored = {
            row.id: row
            for row in session.execute(
                select(Cluster).where(
                    Cluster.collection == collection,
                    Cluster.status.in_(("live", "promoted")),
                    Cluster.last_seen_at >= horizon,
                )
            ).scalars()
        }
        sizes_before = {cid: row.size for cid, row in stored.items()}
        next_id = (session.execute(select(func.max(Cluster.id))).scalar() or 0) + 1
        clusterer = OnlineClusterer(
            [_state(row) for row in stored.values()],
            thresholds=thresholds,
            window=window,
            next_id=next_id,
        )
        placed = [
            (article_id, at, vectors[article_id]) for article_id, at in candidates if article_id in vectors
        ]
        assignments = [
            (assignment, at)
            for assignment, (_, at, _) in zip(clusterer.add_many(placed), placed, strict=True)
        ]

        # rows first (members and merges point at them), then merges, then members
        for cid in sorted(clusterer.touched):
            _store_state(session, stored, collection, clusterer.clusters[cid])
        for merge in clusterer.merges:
            _store_state(session, stored, collection, merge.absorbed)
        session.flush()
        for merge in clusterer.merges:
            row = stored[merge.absorbed_id]
            row.status = "merged"
            row.merged_into = merge.into_id
            row.merged_at = merge.at
        for assignment, published_at in assignments:
            session.add(
                ClusterMember(
                    article_id=assignment.article_id,
                    collection=collection,
                    cluster_id=assignment.cluster_id,
                    similarity=round(assignment.similarity, 6),
                    published_at=published_at,
                )
            )
            report.n_new_clusters += assignment.founded
            report.n_joined += not assignment.founded
        rules.mark_counts_stale(session, (published_at.date() for _, published_at in assignments))
        report.n_clustered = len(assignments)
        report.n_merges = len(clusterer.merges)
        session.flush()
        live = {cid: stored[cid] for cid in sorted(clusterer.touched) if cid in clusterer.clusters}
        described = {
            cid: row for cid, row in live.items() if needs_description(sizes_before.get(cid, 0), row.size)
        }
        _describe(session, store, collection, described, window)
        report.touched = sorted(live)
    return report


def _store_state(session: Session, stored: dict[int, Cluster], collection: str, state: ClusterState) -> None:
    row = stored.get(state.id)
    if row is None:
        row = Cluster(id=state.id, collection=collection, status="live")
        session.add(row)
        stored[state.id] = row
    row.centroid = [float(x) for x in state.centroid]  # float64 round-trips exactly through JSON
    row.size = state.size
    row.first_seen_at = state.first_seen
    row.last_seen_at = state.last_seen


def central_passages(
    session: Session, store: VectorStore, collection: str, cluster: Cluster, limit: int
) -> list[str]:
    """The passages nearest the cluster's centre, at most one per article, nearest first."""
    members = members_of(session, cluster.id, collection)[-REPRESENTATIVE_SAMPLE:]
    rows = list(session.scalars(rules.current_passages(collection, members)))
    found = passage_vectors_of(store, collection, rows)
    direction = np.asarray(cluster.centroid, dtype=np.float64)
    direction = direction / (np.linalg.norm(direction) or 1.0)
    best: dict[int, tuple[float, int, str]] = {}
    for row in rows:
        vector = found.get(canonical_id(row.point_id))
        if vector is None or not row.text.strip():
            continue
        unit = np.asarray(vector, dtype=np.float64)
        score = float(unit @ direction / (np.linalg.norm(unit) or 1.0))
        known = best.get(row.article_id)
        if known is None or (score, -row.idx) > (known[0], -known[1]):
            best[row.article_id] = (score, row.idx, " ".join(row.text.split()))
    ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))
    texts: list[str] = []
    for _, (_, _, text) in ranked:
        if text.casefold() not in {t.casefold() for t in texts}:
            texts.append(text)
        if len(texts) == limit:
            break
    return texts
