"""Folded group counts equal the union of the group's clusters' stored rows, whatever happened before.

``rules.stored_cluster_days`` reads every member's stored rows: it is the reference. Random histories
of stored rows, merges made (and undone) in any order, days counted again, and detection runs for days
in any order, re-runs of past days included: after every run the folded counts of each tested group
equal the reference.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from narrwatch.context import AppContext
from narrwatch.db import rules
from narrwatch.db.models import DailyCount, GroupCount, GroupMember
from narrwatch.domain.clustering import resolve
from narrwatch.steps.detect.groups import group_days

pytestmark = pytest.mark.db

DAY0 = dt.date(2026, 5, 1)
DAYS = [DAY0 + dt.timedelta(days=i) for i in range(6)]
CLUSTERS = range(1, 9)
OUTLETS = ["a", "b", "c", "d"]
DIMENSIONS = [("all", "all"), ("country", "rs"), ("country", "ba"), ("language", "sr")]


def end_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC)


stored_row = st.tuples(
    st.sampled_from(CLUSTERS),
    st.sampled_from(DIMENSIONS),
    st.integers(1, 5),
    st.integers(1, 5),
    st.sets(st.sampled_from(OUTLETS), min_size=1),
)

# (child, parent, the day whose end the merge precedes): a parent is older (smaller id), so no cycles
merge = st.tuples(st.sampled_from(CLUSTERS), st.sampled_from(CLUSTERS), st.sampled_from(DAYS)).filter(
    lambda m: m[1] < m[0]
)

run = st.fixed_dictionaries(
    {
        "day": st.sampled_from(DAYS),
        "recounted": st.lists(st.tuples(st.sampled_from(DAYS), st.lists(stored_row, max_size=6)), max_size=2),
        "merges": st.lists(merge, max_size=3),
        "undo": st.lists(st.sampled_from(CLUSTERS), max_size=2),
        "tested": st.sets(st.sampled_from(CLUSTERS), min_size=1),
    }
)


def write_day(
    session: Any, day: dt.date, rows: list[tuple[int, tuple[str, str], int, int, set[str]]]
) -> None:
    """A day's stored cluster rows, as counting writes them (one row per subject and dimension)."""
    session.execute(delete(DailyCount).where(DailyCount.day == day))
    seen: dict[tuple[int, tuple[str, str]], Any] = {}
    for cluster, dimension, n_articles, n_stories, outlets in rows:
        seen[(cluster, dimension)] = (n_articles, n_stories, outlets)
    values = [
        {
            "day": day,
            "subject_kind": "cluster",
            "subject_id": str(cluster),
            "dimension": dimension[0],
            "dimension_value": dimension[1],
            "n_articles": n_articles,
            "n_stories": n_stories,
            "n_outlets": len(outlets),
            "outlets": rules.outlets_text(outlets),
        }
        for (cluster, dimension), (n_articles, n_stories, outlets) in sorted(seen.items())
    ]
    if values:
        session.execute(insert(DailyCount), values)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=st.lists(st.tuples(st.sampled_from(DAYS), st.lists(stored_row, max_size=8)), max_size=6),
    runs=st.lists(run, min_size=1, max_size=5),
)
def test_folded_counts_equal_the_union_of_the_members_stored_rows(
    ctx: AppContext, history: list[Any], runs: list[dict[str, Any]]
) -> None:
    with ctx.transaction() as session:
        for table in (DailyCount, GroupCount, GroupMember):
            session.execute(delete(table))
        for day, rows in history:
            write_day(session, day, rows)
    merges: dict[int, tuple[int, dt.date]] = {}
    for step in runs:
        for child, parent, when in step["merges"]:
            if child not in merges and not _reaches(merges, parent, child):
                merges[child] = (parent, when)
        for child in step["undo"]:
            merges.pop(child, None)
        end = end_of(step["day"])
        merged_into = {c: p for c, (p, when) in merges.items() if end_of(when) - dt.timedelta(hours=1) < end}
        roots = {str(resolve(c, merged_into)) for c in step["tested"]}
        groups = rules.cluster_groups(roots, merged_into)
        recounted = sorted({day for day, _ in step["recounted"]} | {step["day"]})
        with ctx.transaction() as session:
            for day, rows in step["recounted"]:
                write_day(session, day, rows)
            before = _membership(session)
            latest = max((when for _, _, when in before), default=None)
            *folded, _ = group_days(session, DAYS, groups, merged_into, end, recounted)
            if latest is not None and end < latest:  # a re-run of a past day folds nothing
                assert _membership(session) == before
            reference = rules.stored_cluster_days(
                session, DAYS, merged_into, {c for g in groups.values() for c in g}
            )
            # the report's read of every cluster: folded rows where a group is folded exactly
            every_cluster = rules.window_cluster_days(session, DAYS, merged_into)
            every_cluster_reference = rules.stored_cluster_days(session, DAYS, merged_into, None)
        assert tuple(folded) == reference
        assert every_cluster == every_cluster_reference


def _membership(session: Any) -> set[tuple[int, str, dt.datetime]]:
    return set(
        session.execute(
            select(GroupMember.cluster_id, GroupMember.survivor_id, GroupMember.folded_for)
        ).tuples()
    )


def _reaches(merges: dict[int, tuple[int, dt.date]], start: int, target: int) -> bool:
    """Whether following ``start``'s merges leads to ``target`` (a merge there would make a cycle)."""
    node = start
    while node in merges:
        node = merges[node][0]
        if node == target:
            return True
    return node == target


def test_a_cluster_whose_merge_is_undone_leaves_its_group_and_takes_its_rows(ctx: AppContext) -> None:
    with ctx.transaction() as session:
        write_day(session, DAYS[0], [(1, ("all", "all"), 1, 1, {"a"}), (2, ("all", "all"), 1, 1, {"b"})])
        write_day(session, DAYS[1], [(1, ("all", "all"), 1, 1, {"c"})])
    merged = {2: 1}
    with ctx.transaction() as session:
        counts, outlets, _ = group_days(session, DAYS, {"1": {1, 2}}, merged, end_of(DAYS[1]), [DAYS[1]])
    assert outlets[("1", "all", "all")][DAYS[0]] == {"a", "b"}
    with ctx.transaction() as session:  # the merge is undone: cluster 2 stands alone again
        counts, outlets, _ = group_days(session, DAYS, {"1": {1}, "2": {2}}, {}, end_of(DAYS[2]), [DAYS[2]])
    assert outlets[("1", "all", "all")] == {DAYS[0]: {"a"}, DAYS[1]: {"c"}}
    assert outlets[("2", "all", "all")] == {DAYS[0]: {"b"}}
    assert counts[("1", "all", "all")][DAYS[0]].n_outlets == 1


def test_the_report_reads_a_group_that_gained_a_member_since_its_fold_from_its_members(
    ctx: AppContext,
) -> None:
    """A merge made after the last fold (no detection since): the group's folded rows miss the new
    member's, so every cluster's counts come from stored rows for that group."""
    with ctx.transaction() as session:
        write_day(session, DAYS[0], [(1, ("all", "all"), 1, 1, {"a"}), (2, ("all", "all"), 1, 1, {"b"})])
        group_days(session, DAYS, {"1": {1}, "2": {2}}, {}, end_of(DAYS[0]), [DAYS[0]])
    with ctx.transaction() as session:
        folded_alone = rules.window_cluster_days(session, DAYS, {})
        counts, outlets = rules.window_cluster_days(session, DAYS, {2: 1})
    assert folded_alone[0][("1", "all", "all")][DAYS[0]].n_outlets == 1
    assert outlets[("1", "all", "all")] == {DAYS[0]: {"a", "b"}}
    assert counts[("1", "all", "all")][DAYS[0]].n_articles == 2
    assert ("2", "all", "all") not in counts
