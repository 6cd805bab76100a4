"""Cluster groups' stored counts, folded once: what detection tests a cluster on.

A cluster tested on a day is the union of the stored rows (``daily_counts``) of every cluster merged
into it by the day's end (``rules.stored_cluster_days`` reads them so, and stays the reference). A
group that absorbed thousands of clusters would be read as all their rows on every run: 1.4 million
rows at 1M stored articles. Instead each tested group's rows are folded into ``group_counts``, a few
rows a day, and kept equal to that union:

- ``group_members`` says which group's folded rows hold each cluster's stored rows;
- a day whose stored rows were counted again is folded again for every group;
- a group's new members join it: a former group's folded rows move over whole, a cluster folded
  nowhere adds its own stored rows;
- a member that left a group (its merge undone or its cluster removed) is taken out by folding
  again, from the remaining members' stored rows, the days its own rows lie on.

Folding only moves forward in time: a run for a day that ends before the latest fold (a re-run of a
past day) changes no membership, and reads a group's folded rows only where they hold exactly its
members at that day's end, else its members' own rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from narrwatch.db import rules
from narrwatch.db.models import Cluster, DailyCount, GroupCount, GroupMember
from narrwatch.domain.rising import DayCount

Key = tuple[str, dt.date, str, str]  # (surviving cluster id, day, dimension, dimension value)
#: A stored or folded count row, as rules.COUNT_ROW_COLUMNS and rules.FOLDED_ROW_COLUMNS read it.
_Row = tuple[str, dt.date, str, str, int, int, str | None]
DayKey = rules.ClusterDayKey


class _Fold:
    """Rows summed per (survivor, day, dimension, value): articles and stories added, outlets united."""

    def __init__(self) -> None:
        self.rows: dict[Key, tuple[list[int], set[str]]] = {}

    def add(self, key: Key, n_articles: int, n_stories: int, outlets: Iterable[str]) -> None:
        numbers, names = self.rows.setdefault(key, ([0, 0], set()))
        numbers[0] += n_articles
        numbers[1] += n_stories
        names.update(outlets)

    def add_rows(self, rows: Iterable[_Row], survivor: Callable[[str], str | None]) -> None:
        """Add stored or folded rows (led by their subject's or survivor's id) under
        ``survivor(that id)``; a row whose survivor is None is left out."""
        for subject_id, day, dimension, value, n_articles, n_stories, outlets in rows:
            under = survivor(subject_id)
            if under is not None:
                self.add((under, day, dimension, value), n_articles, n_stories, rules.outlets_of(outlets))

    def values(self) -> list[dict[str, object]]:
        return [
            {
                "survivor_id": survivor,
                "day": day,
                "dimension": dimension,
                "dimension_value": value,
                "n_articles": numbers[0],
                "n_stories": numbers[1],
                "outlets": rules.outlets_text(names),
            }
            for (survivor, day, dimension, value), (numbers, names) in sorted(self.rows.items())
        ]


def _stored_rows(
    session: Session, cluster_ids: Iterable[int] | None, days: Collection[dt.date] | None = None
) -> Iterable[_Row]:
    """Clusters' stored daily rows (of ``cluster_ids``, every cluster's when None; on ``days`` when given)."""
    query = select(*rules.COUNT_ROW_COLUMNS).where(DailyCount.subject_kind == "cluster")
    if days is not None:
        if not days:
            return
        query = query.where(DailyCount.day.in_(sorted(days)))
    if cluster_ids is None:
        yield from session.execute(query).tuples()
        return
    for chunk in rules.chunked(sorted({str(cid) for cid in cluster_ids})):
        yield from session.execute(query.where(DailyCount.subject_id.in_(chunk))).tuples()


def _folded_under(session: Session, cluster_ids: Iterable[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for chunk in rules.chunked(sorted(set(cluster_ids))):
        rows = session.execute(
            select(GroupMember.cluster_id, GroupMember.survivor_id).where(GroupMember.cluster_id.in_(chunk))
        ).tuples()
        found.update((cluster_id, survivor) for cluster_id, survivor in rows)
    return found


def _replace(session: Session, survivors: Collection[str], days: Collection[dt.date], fold: _Fold) -> None:
    """Make the folded rows of ``survivors`` on ``days`` those of ``fold``."""
    for survivor_chunk in rules.chunked(sorted(survivors)):
        for day_chunk in rules.chunked(sorted(days)):
            session.execute(
                delete(GroupCount).where(
                    GroupCount.survivor_id.in_(survivor_chunk), GroupCount.day.in_(day_chunk)
                )
            )
    values = fold.values()
    if values:
        session.execute(insert(GroupCount), values)


def _add_into(session: Session, additions: _Fold) -> None:
    """Add ``additions`` to the folded rows they are keyed under."""
    if not additions.rows:
        return
    survivors = {key[0] for key in additions.rows}
    days = {key[1] for key in additions.rows}
    for survivor_chunk in rules.chunked(sorted(survivors)):
        for day_chunk in rules.chunked(sorted(days)):
            rows = session.execute(
                select(*rules.FOLDED_ROW_COLUMNS).where(
                    GroupCount.survivor_id.in_(survivor_chunk), GroupCount.day.in_(day_chunk)
                )
            ).tuples()
            additions.add_rows(rows, str)
    _replace(session, survivors, days, additions)


def _release(session: Session, survivor: str, leaving: set[int]) -> None:
    """Take ``leaving`` out of ``survivor``'s group: fold again, from the members that stay, the days
    the leaving clusters' stored rows lie on."""
    staying = rules.folded_members(session, [survivor]).get(survivor, set()) - leaving
    days = {row[1] for row in _stored_rows(session, leaving)}
    fold = _Fold()
    fold.add_rows(_stored_rows(session, staying, days), lambda _: survivor)
    _replace(session, [survivor], days, fold)
    for chunk in rules.chunked(sorted(leaving)):
        session.execute(
            delete(GroupMember).where(GroupMember.survivor_id == survivor, GroupMember.cluster_id.in_(chunk))
        )


def _join_all(session: Session, groups: dict[str, set[int]], folded_for: dt.datetime) -> None:
    """Bring every group's folded rows to its members now (``groups``)."""
    held = rules.folded_members(session, groups)
    for survivor in sorted(groups, key=int):
        if held.get(survivor, set()) - groups[survivor]:
            _release(session, survivor, held[survivor] - groups[survivor])
    new = {
        survivor: group - held.get(survivor, set())
        for survivor, group in groups.items()
        if group - held.get(survivor, set())
    }
    if not new:
        return
    survivor_of = {cid: survivor for survivor, ids in new.items() for cid in ids}
    elsewhere = _folded_under(session, survivor_of)
    additions = _Fold()
    for former in sorted(set(elsewhere.values()), key=int):
        into = survivor_of.get(int(former))
        if into is None:  # the former group did not join a tested one: the clusters that did leave it
            _release(session, former, {cid for cid, where in elsewhere.items() if where == former})
            continue
        outside = rules.folded_members(session, [former]).get(former, set()) - groups[into]
        if outside:
            _release(session, former, outside)
        moved = session.execute(
            select(*rules.FOLDED_ROW_COLUMNS).where(GroupCount.survivor_id == former)
        ).tuples()
        additions.add_rows(moved, {former: into}.get)  # the former group's rows are led by its id
        session.execute(delete(GroupCount).where(GroupCount.survivor_id == former))
        session.execute(
            update(GroupMember)
            .where(GroupMember.survivor_id == former)
            .values(survivor_id=into, folded_for=folded_for)
        )
    unfolded = set(survivor_of) - set(_folded_under(session, survivor_of))
    additions.add_rows(_stored_rows(session, unfolded), lambda subject_id: survivor_of[int(subject_id)])
    if unfolded:
        session.execute(
            insert(GroupMember),
            [
                {"cluster_id": cid, "survivor_id": survivor_of[cid], "folded_for": folded_for}
                for cid in sorted(unfolded)
            ],
        )
    _add_into(session, additions)


def refold_days(session: Session, days: Collection[dt.date]) -> None:
    """Fold ``days`` again for every group, from their stored rows (just counted again)."""
    if not days:
        return
    for chunk in rules.chunked(sorted(days)):
        session.execute(delete(GroupCount).where(GroupCount.day.in_(chunk)))
    rows = list(_stored_rows(session, None, days))
    folded = _folded_under(session, {int(row[0]) for row in rows})
    fold = _Fold()
    fold.add_rows(rows, lambda subject_id: folded.get(int(subject_id)))
    values = fold.values()
    if values:
        session.execute(insert(GroupCount), values)


def group_days(
    session: Session,
    days: list[dt.date],
    groups: dict[str, set[int]],
    merged_into: dict[int, int],
    folded_for: dt.datetime,
    counted_again: Collection[dt.date],
) -> tuple[dict[DayKey, dict[dt.date, DayCount]], dict[DayKey, dict[dt.date, set[str]]], set[str]]:
    """Every group of ``groups`` (survivor -> its clusters at ``folded_for``, the tested day's end):
    its counts and outlets on ``days``, as ``rules.stored_cluster_days`` gives them, and the groups
    read from folded rows (those holding exactly the group). The folded rows are brought up to date
    first: the groups' new members join (unless a later day has been folded already) and the days
    ``counted_again`` are folded again."""
    latest = session.scalar(select(func.max(GroupMember.folded_for)))
    if latest is None or folded_for >= latest:
        _join_all(session, groups, folded_for)
        held = groups
    else:
        held = rules.folded_members(session, groups)
    refold_days(session, counted_again)
    exact = rules.exactly_folded(held, groups)
    counts, outlets = rules.stored_cluster_days(
        session,
        days,
        merged_into,
        {cid for survivor, group in groups.items() if survivor not in exact for cid in group},
    )
    folded_counts, folded_outlets = rules.folded_group_days(session, exact, days)
    return counts | folded_counts, outlets | folded_outlets, exact


def folded_observed_from(session: Session, survivors: Collection[str]) -> dict[str, dt.date]:
    """The day each folded group became observable: the earliest first member of its clusters (as
    ``groups_observed_from`` reads it from every cluster of the group)."""
    observed: dict[str, dt.date] = {}
    for chunk in rules.chunked(sorted(survivors)):
        rows = session.execute(
            select(GroupMember.survivor_id, func.min(Cluster.first_seen_at))
            .join(Cluster, Cluster.id == GroupMember.cluster_id)
            .where(GroupMember.survivor_id.in_(chunk))
            .group_by(GroupMember.survivor_id)
        ).tuples()
        observed.update((survivor, first.date()) for survivor, first in rows if first is not None)
    return observed
