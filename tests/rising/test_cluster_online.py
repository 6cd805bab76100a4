"""The online clusterer: joins, windows, merges, ties, resumption; scores and labels."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from narrwatch.domain.clustering import (
    ClusterState,
    ClusterThresholds,
    OnlineClusterer,
    bcubed,
    distinctive_terms,
    model_key,
    needs_description,
    pairwise,
    resolve,
    thresholds_for,
    tokenize,
)

T0 = dt.datetime(2025, 3, 3, 8, 0, tzinfo=dt.UTC)
WEEK = dt.timedelta(days=7)


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    return v / np.linalg.norm(v)


def clusterer(
    join: float = 0.8, merge: float = 0.9, states: list[ClusterState] | None = None, next_id: int = 1
):
    return OnlineClusterer(
        states or [], thresholds=ClusterThresholds(join, merge), window=WEEK, next_id=next_id
    )


def test_articles_join_the_nearest_live_cluster_or_found_one() -> None:
    c = clusterer()
    a = c.add(1, T0, unit(1, 0, 0))
    b = c.add(2, T0 + dt.timedelta(hours=1), unit(0, 1, 0))
    near_a = c.add(3, T0 + dt.timedelta(hours=2), unit(1, 0.1, 0))
    assert a.founded and b.founded and a.cluster_id == 1 and b.cluster_id == 2
    assert not near_a.founded and near_a.cluster_id == 1
    assert near_a.similarity == pytest.approx(float(unit(1, 0.1, 0) @ unit(1, 0, 0)))
    assert c.clusters[1].size == 2


def test_a_cluster_quiet_for_longer_than_the_window_is_not_joined() -> None:
    c = clusterer()
    c.add(1, T0, unit(1, 0))
    late = c.add(2, T0 + WEEK + dt.timedelta(seconds=1), unit(1, 0))
    assert late.founded and late.cluster_id == 2
    in_time = c.add(3, T0 + WEEK + dt.timedelta(hours=1), unit(1, 0))
    assert in_time.cluster_id == 2


def test_equal_similarity_goes_to_the_older_cluster() -> None:
    states = [
        ClusterState(7, unit(1, 1, 0), 1, T0, T0),
        ClusterState(3, unit(1, -1, 0), 1, T0, T0),
    ]
    c = clusterer(join=0.5, merge=0.99, states=states, next_id=8)
    assert c.add(9, T0, unit(1, 0, 0)).cluster_id == 3


def test_converging_clusters_merge_into_the_older_id() -> None:
    c = clusterer(join=0.7, merge=0.85)
    c.add(1, T0, unit(1, 0.0))
    c.add(2, T0, unit(0.6, 0.8))  # 0.6 from the first: a second cluster
    # articles on the facing sides of the two pull their centres together until they converge
    joined = []
    for i, angle in enumerate([0.3, 0.6, 0.3, 0.6, 0.3, 0.6, 0.3, 0.6]):
        when = T0 + dt.timedelta(minutes=i + 1)
        joined.append(c.add(10 + i, when, unit(np.cos(angle), np.sin(angle))).cluster_id)
    assert joined[:2] == [1, 2]  # each side first grew its own cluster
    assert len(c.merges) == 1
    merge = c.merges[0]
    assert (merge.into_id, merge.absorbed_id) == (1, 2)
    assert merge.similarity >= 0.85
    assert set(c.clusters) == {1}
    assert c.clusters[1].size == 10
    assert merge.absorbed.size >= 2 and merge.at > T0


def test_resume_rejects_an_id_that_would_collide() -> None:
    with pytest.raises(ValueError, match="collides"):
        clusterer(states=[ClusterState(5, unit(1, 0), 1, T0, T0)], next_id=5)


def _stream(seed: int, n: int = 240, dim: int = 16, stories: int = 12):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(stories, dim))
    items = []
    for i in range(n):
        story = int(rng.integers(stories))
        when = T0 + dt.timedelta(minutes=int(rng.integers(0, 14 * 24 * 60)))
        items.append((when, i + 1, centres[story] + rng.normal(scale=0.6, size=dim)))
    return sorted(items, key=lambda item: (item[0], item[1]))


def _persist(states: dict[int, ClusterState]) -> list[ClusterState]:
    """What the SQL store does: centroids through JSON, times as they are."""
    return [
        ClusterState(
            s.id,
            np.asarray(json.loads(json.dumps([float(x) for x in s.centroid]))),
            s.size,
            s.first_seen,
            s.last_seen,
        )
        for s in states.values()
    ]


def _run_by_day(items, join: float, merge: float) -> tuple[dict[int, int], dict[int, int]]:
    assigned: dict[int, int] = {}
    merged: dict[int, int] = {}
    stored: dict[int, ClusterState] = {}
    next_id = 1
    by_day: dict[dt.date, list] = {}
    for item in items:
        by_day.setdefault(item[0].date(), []).append(item)
    for day in sorted(by_day):
        live = [s for s in stored.values() if s.last_seen >= by_day[day][0][0] - WEEK]
        c = clusterer(join, merge, _persist({s.id: s for s in live}), next_id)
        for when, article_id, vector in by_day[day]:
            assigned[article_id] = c.add(article_id, when, vector).cluster_id
        for m in c.merges:
            merged[m.absorbed_id] = m.into_id
            stored.pop(m.absorbed_id, None)
        stored.update(c.clusters)
        next_id = c.next_id
    return assigned, merged


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), join=st.floats(0.3, 0.8))
def test_day_by_day_equals_all_at_once(seed: int, join: float) -> None:
    items = _stream(seed)
    merge = min(1.0, join + 0.05)
    whole = clusterer(join, merge)
    at_once = {article_id: whole.add(article_id, when, v).cluster_id for when, article_id, v in items}
    merged_once = {m.absorbed_id: m.into_id for m in whole.merges}
    by_day, merged_by_day = _run_by_day(items, join, merge)
    assert by_day == at_once  # same ids, not only the same partition
    assert merged_by_day == merged_once


def _reference(items, join: float, merge: float, states: list[ClusterState], next_id: int):
    """The module docstring's rules, scored in full for every article and every merge check."""
    means = {s.id: np.asarray(s.centroid, dtype=np.float64).copy() for s in states}
    sizes = {s.id: s.size for s in states}
    last = {s.id: s.last_seen for s in states}
    assigned, merged = {}, {}

    def nearest(vector, at, exclude=None):
        live = sorted(cid for cid in means if cid != exclude and last[cid] >= at - WEEK)
        scored = [(float(means[cid] @ vector), -cid) for cid in live]
        return (-max(scored)[1], max(scored)[0]) if scored else None

    for when, article_id, vector in items:
        u = np.asarray(vector, dtype=np.float64) / np.linalg.norm(vector)
        found = nearest(u, when)
        if found is None or found[1] < join:
            cid, next_id = next_id, next_id + 1
            means[cid], sizes[cid], last[cid] = u.copy(), 1, when
        else:
            cid = assigned[article_id] = found[0]  # the cluster joined, whatever it merges with
            sizes[cid] += 1
            means[cid] = means[cid] + (u - means[cid]) / sizes[cid]
            last[cid] = max(last[cid], when)
            while (other := nearest(means[cid], when, exclude=cid)) is not None and other[1] >= merge:
                keep, gone = min(cid, other[0]), max(cid, other[0])
                total = sizes[keep] + sizes[gone]
                means[keep] = (means[keep] * sizes[keep] + means[gone] * sizes[gone]) / total
                sizes[keep], last[keep] = total, max(last[keep], last[gone])
                merged[gone] = keep
                del means[gone], sizes[gone], last[gone]
                cid = keep
            continue
        assigned[article_id] = cid
    return assigned, merged


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    join=st.floats(0.3, 0.8),
    gap=st.sampled_from([0.0, 0.05, 0.15]),
    shuffled=st.booleans(),
)
def test_add_many_follows_the_rules_scored_in_full(
    seed: int, join: float, gap: float, shuffled: bool
) -> None:
    """The block product and the merge bound change only the cost: ids and merges equal a clusterer
    that scores every cluster for every article and check, from stored clusters that may already be
    within the merge threshold of each other, with articles in or out of time order."""
    rng = np.random.default_rng(seed)
    items = _stream(seed, n=300)
    if shuffled:
        items = [items[i] for i in rng.permutation(len(items))]
    merge = min(1.0, join + gap)
    stored = [
        ClusterState(
            1000 + i, unit(*rng.normal(size=16)) * 0.8, 3, T0 - WEEK, T0 + dt.timedelta(days=int(i % 5))
        )
        for i in range(40)
    ]
    fast = clusterer(join, merge, _persist({s.id: s for s in stored}), 2000)
    fast.BLOCK = 7  # blocks end inside the stream, so later articles see clusters the block changed
    got = {a.article_id: a.cluster_id for a in fast.add_many([(aid, when, v) for when, aid, v in items])}
    want, want_merged = _reference(items, join, merge, _persist({s.id: s for s in stored}), 2000)
    assert got == want
    assert {m.absorbed_id: m.into_id for m in fast.merges} == want_merged


def test_resolve_follows_merge_chains() -> None:
    assert resolve(9, {9: 4, 4: 2}) == 2
    with pytest.raises(ValueError, match="cycle"):
        resolve(1, {1: 2, 2: 1})


def test_clusters_are_described_when_founded_and_on_each_quarter_of_growth() -> None:
    assert needs_description(0, 1)  # founded in this run
    assert needs_description(1, 2) and needs_description(4, 5)  # small clusters: nearly every change
    assert not needs_description(10, 11)  # one member more of ten: the label still holds
    assert needs_description(10, 13)
    assert not needs_description(7, 7)
    # growing one member at a time, a cluster is described about once per 25 % of growth
    described = [size for size in range(100, 1000) if needs_description(size, size + 1)]
    assert 9 <= len(described) <= 12
    assert all(later / earlier <= 1.26 for earlier, later in zip(described, described[1:], strict=False))


def test_bcubed_and_pairwise_on_a_known_partition() -> None:
    gold = ["a", "a", "a", "b", "b"]
    predicted = [1, 1, 2, 2, 2]
    b3 = bcubed(predicted, gold)
    # precision per item: 1, 1, 1/3, 2/3, 2/3; recall: 2/3, 2/3, 1/3, 1, 1
    assert b3.precision == pytest.approx((1 + 1 + 1 / 3 + 2 / 3 + 2 / 3) / 5)
    assert b3.recall == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 + 1) / 5)
    pw = pairwise(predicted, gold)
    # predicted pairs: (0,1), (2,3), (2,4), (3,4) -> 2 right; gold pairs: 3 + 1 = 4
    assert (pw.precision, pw.recall) == (pytest.approx(0.5), pytest.approx(0.5))
    assert bcubed(gold, gold).f1 == 1.0 and pairwise(gold, gold).f1 == 1.0


def test_tokenize_folds_scripts_and_drops_stopwords() -> None:
    assert tokenize("Поплаве на Дрини и евакуација") == ["poplave", "drini", "evakuacija"]
    assert tokenize("Poplave na Drini i evakuacija") == ["poplave", "drini", "evakuacija"]
    assert tokenize("The floods and the evacuation of 300 people") == ["floods", "evacuation", "people"]


def test_distinctive_terms_prefer_what_sets_a_cluster_apart() -> None:
    floods = [
        tokenize(t) for t in ["Drina flood evacuation Visegrad government", "Drina flood damage government"]
    ]
    metro = [tokenize(t) for t in ["Belgrade metro contract government", "metro tunnel Belgrade government"]]
    background = [tokenize(t) for t in ["government budget debate", "government minister resigns"]]
    labels = distinctive_terms({1: floods, 2: metro}, background, top=2)
    assert labels[1] == ["drina", "flood"]
    assert labels[2] == ["belgrade", "metro"]


def test_model_defaults_and_overrides() -> None:
    assert model_key("bundled:all-MiniLM-L6-v2") == "all-minilm-l6-v2"
    assert model_key("/models/sentence-transformers/all-MiniLM-L6-v2/") == "all-minilm-l6-v2"
    assert thresholds_for("bundled:all-MiniLM-L6-v2", None) is not None
    # The default model has its own thresholds, the same for the bundled rebuild and the hub name.
    assert thresholds_for("intfloat/multilingual-e5-small", None) == thresholds_for(
        "bundled:multilingual-e5-small", None
    )
    assert thresholds_for("some-org/untuned-model", None) is None
    assert thresholds_for("intfloat/multilingual-e5-small", 0.82) == ClusterThresholds(0.82, 0.82)
    with pytest.raises(ValueError):
        ClusterThresholds(join=0.6, merge=0.5)
