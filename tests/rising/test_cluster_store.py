"""cluster_unmatched and promote_cluster on the SQL store and Qdrant :memory: (hashing encoder)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from rising_support import HashingEncoder, add_article, add_match, add_seed_version, add_verdict, load_stories
from sqlalchemy import delete, select, update

from narrwatch.analyst.promote import promote_cluster
from narrwatch.config import Settings
from narrwatch.context import AppContext
from narrwatch.db.models import Article, Cluster, ClusterMember, CountChange
from narrwatch.domain.clustering import pairwise, resolve
from narrwatch.embeddings import collections as collections_mod
from narrwatch.steps.cluster.cluster import ClusteringError, cluster_unmatched
from narrwatch.steps.embed import embed as vectorize
from narrwatch.steps.match.seed_yaml import parse_seed_file

pytestmark = pytest.mark.db

#: For the hashing stand-in encoder (bag of words), not for a real model.
THRESHOLD = 0.2


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"cluster_threshold": THRESHOLD})


@pytest.fixture
def hctx(ctx: AppContext) -> AppContext:
    ctx._encoder = HashingEncoder()
    return ctx


def store(ctx: AppContext, rows: list[dict]) -> dict[str, int]:
    ids = {}
    with ctx.transaction() as session:
        for row in rows:
            article = add_article(
                session,
                key=row["id"],
                outlet=row["outlet"],
                published_at=row["published_at"],
                title=row["title"],
                text=row["text"],
            )
            ids[row["id"]] = article.id
    return ids


def partition(ctx: AppContext) -> dict[int, int]:
    with ctx.transaction() as session:
        merged = {
            cid: into
            for cid, into in session.execute(select(Cluster.id, Cluster.merged_into)).tuples()
            if into is not None
        }
        members = session.execute(select(ClusterMember.article_id, ClusterMember.cluster_id)).tuples().all()
    return {article_id: resolve(cid, merged) for article_id, cid in members}


def cluster_rows(ctx: AppContext) -> list[tuple]:
    with ctx.transaction() as session:
        return [
            (c.id, c.status, c.merged_into, c.merged_at, c.size, c.centroid, c.label, c.representative_title)
            for c in session.execute(select(Cluster).order_by(Cluster.id)).scalars()
        ]


def wipe_clusters(ctx: AppContext) -> None:
    with ctx.transaction() as session:
        session.execute(delete(ClusterMember))
        session.execute(update(Cluster).values(merged_into=None))
        session.execute(delete(Cluster))


def day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)


def run_daily(ctx: AppContext, days: list[dt.date]) -> None:
    """As the pipeline does: each day looks back two days, up to the end of the day."""
    for day in days:
        end = day_start(day + dt.timedelta(days=1))
        cluster_unmatched(ctx, end - dt.timedelta(days=2), end, end)


def test_day_by_day_equals_all_at_once_and_ids_survive_reruns(hctx: AppContext) -> None:
    rows = load_stories()
    store(hctx, rows)
    first, last = rows[0]["published_at"], rows[-1]["published_at"]
    vectorize.embed_pending(hctx, last)
    end = last + dt.timedelta(seconds=1)

    report = cluster_unmatched(hctx, first, end, end)
    assert report.n_candidates == len(rows) == report.n_clustered
    at_once, rows_once = partition(hctx), cluster_rows(hctx)
    assert len(set(at_once.values())) < len(rows)  # stories did form clusters

    again = cluster_unmatched(hctx, first - dt.timedelta(days=3), end, end)
    assert again.n_candidates == 0
    assert partition(hctx) == at_once and cluster_rows(hctx) == rows_once

    wipe_clusters(hctx)
    days = sorted({row["published_at"].date() for row in rows})
    run_daily(hctx, days)
    by_day = partition(hctx)
    assert by_day == at_once  # the same ids, not only the same partition
    keys = sorted(at_once)
    agreement = pairwise([by_day[k] for k in keys], [at_once[k] for k in keys]).f1
    assert agreement >= 0.95

    run_daily(hctx, days)  # a full replay changes nothing
    assert partition(hctx) == at_once


def test_clustering_marks_the_days_its_members_were_published(hctx: AppContext) -> None:
    """Detection reads a past day's cluster counts as stored unless marked: a late article joining a
    cluster must mark its own day, not the day it was clustered."""
    rows = load_stories()[:12]
    store(hctx, rows)
    last = rows[-1]["published_at"]
    vectorize.embed_pending(hctx, last)
    end = last + dt.timedelta(seconds=1)
    cluster_unmatched(hctx, rows[0]["published_at"], end, end)
    with hctx.transaction() as session:
        marked = set(session.scalars(select(CountChange.day)))
        member_days = {at.date() for at in session.scalars(select(ClusterMember.published_at))}
    assert member_days and marked == member_days


def test_late_articles_keep_the_partition_close(hctx: AppContext) -> None:
    rows = load_stories()
    late_ids = {"a4", "b3", "g2", "i2"}  # embedded a day after they were published
    ids = store(hctx, rows)
    days = sorted({row["published_at"].date() for row in rows})
    last = rows[-1]["published_at"]
    vectorize.embed_pending(hctx, last)
    end = last + dt.timedelta(seconds=1)
    cluster_unmatched(hctx, rows[0]["published_at"], end, end)
    at_once = partition(hctx)

    wipe_clusters(hctx)
    with hctx.transaction() as session:
        from narrwatch.db.models import ArticleEmbedding

        late_days = {row["published_at"].date() for row in rows if row["id"] in late_ids}
        hidden = [ids[i] for i in late_ids]
        session.execute(delete(ArticleEmbedding).where(ArticleEmbedding.article_id.in_(hidden)))
    for day in days:
        if day - dt.timedelta(days=1) in late_days:
            vectorize.embed_pending(hctx, day_start(day))
        run_daily(hctx, [day])
    by_day = partition(hctx)
    assert set(by_day) == set(at_once)
    keys = sorted(at_once)
    assert pairwise([by_day[k] for k in keys], [at_once[k] for k in keys]).f1 >= 0.95


def test_articles_with_an_active_seed_match_are_not_clustered(hctx: AppContext) -> None:
    rows = load_stories()[:12]
    ids = store(hctx, rows)
    vectorize.embed_pending(hctx, rows[-1]["published_at"])
    collection = collections_mod.collection_for(hctx.encoder)
    with hctx.transaction() as session:
        version = add_seed_version(session, "nato-aggressor-balkans", rows[0]["published_at"])
        confirmed, suggested, rejected = (session.get(Article, ids[rows[i]["id"]]) for i in (0, 1, 2))
        add_match(session, confirmed, "nato-aggressor-balkans", version, collection=collection)
        add_match(
            session, suggested, "nato-aggressor-balkans", version, collection=collection, level="suggest"
        )
        match = add_match(session, rejected, "nato-aggressor-balkans", version, collection=collection)
        add_verdict(session, match, "reject")
    end = rows[-1]["published_at"] + dt.timedelta(seconds=1)
    report = cluster_unmatched(hctx, rows[0]["published_at"], end, end)
    clustered = set(partition(hctx))
    assert report.n_clustered == len(rows) - 2
    assert ids[rows[0]["id"]] not in clustered and ids[rows[1]["id"]] not in clustered
    assert ids[rows[2]["id"]] in clustered  # the analyst rejected its match


def test_clusters_get_labels_and_a_representative_title(hctx: AppContext) -> None:
    rows = load_stories()
    ids = store(hctx, rows)
    vectorize.embed_pending(hctx, rows[-1]["published_at"])
    end = rows[-1]["published_at"] + dt.timedelta(seconds=1)
    cluster_unmatched(hctx, rows[0]["published_at"], end, end)
    drina = partition(hctx)[ids["a1"]]
    with hctx.transaction() as session:
        cluster = session.get(Cluster, drina)
        assert cluster is not None and cluster.size >= 3
        terms = cluster.label.split(", ")
        assert len(terms) >= 3
        assert set(terms) & {"drina", "visegrad", "flood", "floods", "rudo", "evacuated"}
        assert not set(terms) & {"the", "and", "said", "after"}
        titles = {row["title"] for row in rows if row["cluster"] == "drina-floods"}
        assert cluster.representative_title in titles


def test_promote_writes_a_draft_seed_the_loader_accepts(hctx: AppContext, tmp_path: Path) -> None:
    rows = load_stories()
    ids = store(hctx, rows)
    vectorize.embed_pending(hctx, rows[-1]["published_at"])
    end = rows[-1]["published_at"] + dt.timedelta(seconds=1)
    cluster_unmatched(hctx, rows[0]["published_at"], end, end)
    cluster_id = partition(hctx)[ids["f1"]]
    now = dt.datetime(2025, 3, 20, 9, 0, tzinfo=dt.UTC)

    path = promote_cluster(hctx, cluster_id, tmp_path, now)
    seed, problems = parse_seed_file(path)
    assert not problems and seed is not None
    assert seed.status == "draft" and seed.id.startswith(f"cluster-{cluster_id}")
    assert 1 <= len(seed.examples) <= 6
    kosovo_texts = {row["title"] for row in rows if row["cluster"] == "kosovo-power-outage"}
    assert any(any(title in example for title in kosovo_texts) for example in seed.examples)
    kosovo_outlets = {row["outlet"] for row in rows if row["cluster"] == "kosovo-power-outage"}
    text = path.read_text(encoding="utf-8")
    assert "# Outlets (articles): " in text and "carried by" in seed.description
    assert any(outlet in text for outlet in kosovo_outlets)
    with hctx.transaction() as session:
        assert session.get(Cluster, cluster_id).status == "promoted"  # type: ignore[union-attr]
    with pytest.raises(ClusteringError, match="already exists"):
        promote_cluster(hctx, cluster_id, tmp_path, now)
    with pytest.raises(ClusteringError, match="no cluster"):
        promote_cluster(hctx, 99999, tmp_path, now)


def test_a_model_without_a_tuned_threshold_needs_the_setting(hctx: AppContext) -> None:
    hctx.settings = hctx.settings.model_copy(update={"cluster_threshold": None})
    now = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)
    with pytest.raises(ClusteringError, match="NARRWATCH_CLUSTER_THRESHOLD"):
        cluster_unmatched(hctx, now - dt.timedelta(days=1), now, now)


def test_a_large_cluster_is_labelled_from_its_newest_members(
    hctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Describing reads a bounded number of member texts: the newest, which say what it is about now."""
    from narrwatch.steps.cluster import cluster as cluster_step

    monkeypatch.setattr(cluster_step, "LABEL_MEMBERS", 3)
    t0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
    common = "The Visegrad bridge over the Drina stays closed to traffic, the municipality said."
    rows = [
        {
            "id": f"bridge-{i}",
            "outlet": f"outlet-{i % 4}",
            "published_at": t0 + dt.timedelta(hours=i),
            "title": f"Visegrad bridge closed ({i})",
            "text": f"{common} "
            + ("Tourists stranded, tourists waiting." if i < 5 else "Engineers begin repairs."),
        }
        for i in range(8)
    ]
    ids = store(hctx, rows)
    vectorize.embed_pending(hctx, rows[-1]["published_at"])
    end = rows[-1]["published_at"] + dt.timedelta(seconds=1)
    cluster_unmatched(hctx, t0, end, end)
    clusters = {partition(hctx)[ids[row["id"]]] for row in rows}
    assert len(clusters) == 1
    with hctx.transaction() as session:
        cluster = session.get(Cluster, clusters.pop())
        assert cluster is not None and cluster.size == 8
        terms = set(cluster.label.split(", "))
    assert terms & {"engineers", "repairs"} and "tourists" not in terms
