"""One answer per question that more than one place asks of the store.

Detection, clustering, the report, the review queue, the CLI and the freshness watchdog all call these
functions; none of them re-derives a rule. Each rule is stated once, here, in words and in SQL:

- **which matches count** for a seed: a confirm-level match, or any match an analyst confirmed, unless
  the newest verdict on that article and seed (in whichever collection it was given) is a rejection;
- **which articles a seed covers** (and so belong to no emerging cluster): the article has a match for
  some seed whose newest verdict is not a rejection;
- **which cluster a merged cluster now is**: the merge map as of a moment;
- **how healthy a feed is**: paused (in feeds.yaml or by an operator) > failing > silent > ok.

Verdicts are about an article and a narrative, not a model: they hold across recomputed matches and
across collections.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Row, Select, and_, exists, func, insert, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from narrwatch.db.models import (
    Article,
    ArticleEmbedding,
    Cluster,
    ClusterMember,
    CountChange,
    DailyCount,
    DailyVolume,
    Feed,
    GroupCount,
    GroupMember,
    Match,
    MatchState,
    Passage,
    Verdict,
)
from narrwatch.domain.clustering import resolve
from narrwatch.domain.polling import BoundsSettings, HealthState, PollBounds, PollState, feed_health_state
from narrwatch.domain.rising import DayCount

#: The article's columns in the plain rows detection counts (seed matches and cluster members alike).
ARTICLE_ROW_COLUMNS = (
    Article.id,
    Article.published_at,
    Article.outlet,
    Article.country,
    Article.language,
    Article.story_key,
    Article.title,
    Article.url,
)

T = TypeVar("T")

#: Values per IN list: under SQLite's default limit of host parameters (999) with room for the rest
#: of the statement, and small enough for PostgreSQL's planner.
IN_CHUNK = 900


def chunked(values: Iterable[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    """``values`` in lists of at most ``size``: the one way the store splits long IN lists."""
    chunk: list[T] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- verdicts and counted matches ----------------------------------------------------------------


def earliest_scored_since(session: Session, moments: Sequence[dt.datetime]) -> list[dt.datetime | None]:
    """For each moment, the earliest publication among articles last scored at or after it: every
    seed active by then was scored on them. One ordered lookup per distinct moment (the catalogue's
    activation times, a handful): walking the publication index stops at the first article scored
    late enough, where grouping every stored article's state by scoring time read the whole store."""
    earliest: dict[dt.datetime, dt.datetime | None] = {}
    for moment in sorted(set(moments)):
        earliest[moment] = session.execute(
            select(Article.published_at)
            .join(MatchState, MatchState.article_id == Article.id)
            .where(MatchState.matched_at >= moment)
            .order_by(Article.published_at)
            .limit(1)
        ).scalar()
    return [earliest[moment] for moment in moments]


def latest_verdict_subquery(match: Any = Match) -> Any:
    """SQL: the newest verdict on the outer query's (article, seed) of ``match`` (the ``Match``
    entity or an alias of it), in whichever collection it was given."""
    return (
        select(Verdict.verdict)
        .where(Verdict.article_id == match.article_id, Verdict.narrative_id == match.narrative_id)
        .order_by(Verdict.created_at.desc(), Verdict.id.desc())
        .limit(1)
        .correlate(match)
        .scalar_subquery()
    )


def counted_matches_query(
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    collection: str | None = None,
    narrative_ids: Sequence[str] | None = None,
) -> Select[Match]:
    """Matches that count for their seed (published in [start, end) when given)."""
    verdict = func.coalesce(latest_verdict_subquery(), "")
    query = select(Match).where(or_(Match.level == "confirm", verdict == "confirm"), verdict != "reject")
    if start is not None:
        query = query.where(Match.published_at >= start)
    if end is not None:
        query = query.where(Match.published_at < end)
    if collection is not None:
        query = query.where(Match.collection == collection)
    if narrative_ids is not None:
        query = query.where(Match.narrative_id.in_(list(narrative_ids)))
    return query


def counted_seed_matches(
    session: Session, start: dt.datetime, end: dt.datetime
) -> dict[str, list[tuple[Match, Article]]]:
    """Per seed, the articles published in [start, end) that count for it, strongest match first;
    one entry per article (its strongest counted match over collections)."""
    counted = aliased(Match, counted_matches_query(start=start, end=end).subquery())
    rows = session.execute(
        select(counted, Article)
        .join(Article, Article.id == counted.article_id)
        .where(Article.published_at >= start, Article.published_at < end)
        .order_by(counted.score.desc(), counted.id)
    ).all()
    by_seed: dict[str, dict[int, tuple[Match, Article]]] = {}
    for match, article in rows:
        by_seed.setdefault(match.narrative_id, {}).setdefault(article.id, (match, article))
    return {seed: list(articles.values()) for seed, articles in by_seed.items()}


def counted_seed_rows(session: Session, start: dt.datetime, end: dt.datetime) -> dict[str, list[Row[Any]]]:
    """``counted_seed_matches`` as plain rows: the article's ``id``, ``published_at``, ``outlet``,
    ``country``, ``language``, ``story_key``, ``title`` and ``url``, and the match's ``match_id``,
    ``score``, ``level`` and ``evidence_*``. Rows, not entities: a seed's baseline holds thousands."""
    counted = counted_matches_query(start=start, end=end).subquery()
    rows = session.execute(
        select(
            *ARTICLE_ROW_COLUMNS,
            counted.c.id.label("match_id"),
            counted.c.narrative_id,
            counted.c.score,
            counted.c.level,
            counted.c.evidence_text,
            counted.c.evidence_score,
            counted.c.evidence_idx,
            counted.c.evidence_language,
        )
        .join(Article, Article.id == counted.c.article_id)
        .where(Article.published_at >= start, Article.published_at < end)
        .order_by(counted.c.score.desc(), counted.c.id)
    )
    by_seed: dict[str, dict[int, Row[Any]]] = {}
    for row in rows:
        by_seed.setdefault(row.narrative_id, {}).setdefault(row.id, row)
    return {seed: list(articles.values()) for seed, articles in by_seed.items()}


def counted_seed_articles(
    session: Session, start: dt.datetime, end: dt.datetime
) -> dict[str, list[Row[Any]]]:
    """Per seed, the articles published in [start, end) that count for it (the rule of
    ``counted_seed_matches``), with only what a count reads: ``id``, ``published_at``, ``outlet``,
    ``country``, ``language`` and ``story_key``. A baseline's months of matches, without evidence."""
    counted = counted_matches_query(start=start, end=end).subquery()
    rows = session.execute(
        select(counted.c.narrative_id, *ARTICLE_ROW_COLUMNS[:6])
        .join(Article, Article.id == counted.c.article_id)
        .where(Article.published_at >= start, Article.published_at < end)
        .distinct()
    )
    by_seed: dict[str, list[Row[Any]]] = {}
    for row in rows:
        by_seed.setdefault(row.narrative_id, []).append(row)
    return by_seed


def latest_verdicts(session: Session, article_ids: Iterable[int]) -> dict[tuple[int, str], str]:
    """The newest analyst verdict per (article, seed), whatever collection it was given in."""
    newest: dict[tuple[int, str], tuple[dt.datetime, int, str]] = {}
    for chunk in chunked(sorted(set(article_ids))):
        rows = session.execute(
            select(
                Verdict.article_id, Verdict.narrative_id, Verdict.created_at, Verdict.id, Verdict.verdict
            ).where(Verdict.article_id.in_(chunk))
        ).tuples()
        for article_id, narrative_id, created_at, verdict_id, verdict in rows:
            key = (article_id, narrative_id)
            if key not in newest or (created_at, verdict_id) > newest[key][:2]:
                newest[key] = (created_at, verdict_id, verdict)
    return {key: value[2] for key, value in newest.items()}


# --- seed coverage (clusters hold what no seed covers) -------------------------------------------


def seed_covers(
    article_id: InstrumentedAttribute[int] | ColumnElement[int],
    collection: InstrumentedAttribute[str] | ColumnElement[str] | None = None,
    published: tuple[dt.datetime, dt.datetime] | None = None,
) -> ColumnElement[bool]:
    """SQL: a seed covers the article (in ``collection`` when given): it has a match whose newest
    verdict on (article, seed) is not a rejection. ``published`` (the window the articles were
    published in) changes nothing but the plan: a match keeps its article's publication time, so
    PostgreSQL looks only at the window's matches instead of hashing every match stored."""
    covering = aliased(Match)
    newest = latest_verdict_subquery(covering)
    conditions = [covering.article_id == article_id, func.coalesce(newest, "") != "reject"]
    if collection is not None:
        conditions.append(covering.collection == collection)
    if published is not None:
        conditions += [covering.published_at >= published[0], covering.published_at < published[1]]
    return exists().where(*conditions)


def mark_counts_stale(session: Session, days: Iterable[dt.date]) -> None:
    """Note that what seeds or clusters count on ``days`` changed (a member joined, a seed match came,
    went or changed level, a verdict came or went, an article was removed): detection counts those
    days again. Every writer of members, matches, verdicts and articles calls this in its own
    transaction."""
    marks = [{"day": day} for day in sorted(set(days))]
    if marks:
        session.execute(insert(CountChange), marks)


def mark_articles_stale(session: Session, article_ids: Iterable[int]) -> None:
    """``mark_counts_stale`` for the days the articles were published."""
    ids = sorted(set(article_ids))
    mark_counts_stale(
        session,
        (
            published_at.date()
            for chunk in chunked(ids)
            for published_at in session.scalars(select(Article.published_at).where(Article.id.in_(chunk)))
        ),
    )


# --- passages ----------------------------------------------------------------------------------


def current_passages(collection: str, article_ids: Sequence[int]) -> Select[Passage]:
    """The passage rows of ``article_ids`` that the article's current embedding in ``collection``
    has, in order; rows past its passage count are left from an older split and do not count."""
    return (
        select(Passage)
        .join(
            ArticleEmbedding,
            and_(
                ArticleEmbedding.article_id == Passage.article_id,
                ArticleEmbedding.collection == Passage.collection,
            ),
        )
        .where(
            Passage.collection == collection,
            Passage.article_id.in_(list(article_ids)),
            Passage.idx < ArticleEmbedding.n_passages,
        )
        .order_by(Passage.article_id, Passage.idx)
    )


# --- clusters ------------------------------------------------------------------------------------


Merges = list[tuple[int, int, dt.datetime | None]]  # (cluster, merged into, when)


def merges(session: Session) -> Merges:
    """Every merge that happened, for ``merge_map_at``: read once when many days need their map."""
    rows = session.execute(
        select(Cluster.id, Cluster.merged_into, Cluster.merged_at).where(Cluster.merged_into.is_not(None))
    ).tuples()
    return [(cid, into, merged_at) for cid, into, merged_at in rows if into is not None]


def merge_map_at(all_merges: Merges, before: dt.datetime) -> dict[int, int]:
    """Cluster id -> the cluster it merged into, for merges that had happened by ``before``: a later
    merge does not rewrite an earlier day."""
    return {cid: into for cid, into, merged_at in all_merges if merged_at is None or merged_at < before}


def merge_map(session: Session, before: dt.datetime) -> dict[int, int]:
    return merge_map_at(merges(session), before)


def _counted_members_filter(start: dt.datetime, end: dt.datetime) -> list[ColumnElement[bool]]:
    """Members published in [start, end) that no seed covers. The window is read from the member's
    own copy of its article's publication time (indexed), so a day's members are an index range,
    not a join against every member stored."""
    return [
        ClusterMember.published_at >= start,
        ClusterMember.published_at < end,
        ~seed_covers(ClusterMember.article_id, ClusterMember.collection, (start, end)),
    ]


def cluster_groups(survivors: Iterable[str], merged_into: dict[int, int]) -> dict[str, set[int]]:
    """Each surviving cluster id of ``survivors`` -> its own id and every cluster merged into it
    under ``merged_into``."""
    groups = {survivor: {int(survivor)} for survivor in survivors}
    for cid in merged_into:
        survivor = str(resolve(cid, merged_into))
        if survivor in groups:
            groups[survivor].add(cid)
    return groups


def counted_cluster_rows(
    session: Session,
    start: dt.datetime,
    end: dt.datetime,
    merged_into: dict[int, int],
    cluster_ids: Sequence[int] | None = None,
    most_central: int | None = None,
) -> dict[str, list[Row[Any]]]:
    """Per surviving cluster id, the members published in [start, end) that count for it, most
    central first: members of clusters merged in ``merged_into`` belong to the survivor, and an
    article a seed covers belongs to the seed, not to a cluster. With ``cluster_ids``, only the
    members of those clusters; with ``most_central`` too, only that many (for one group's ids: the
    limit applies to the query). Plain rows (the article's ``id``, ``published_at``, ``outlet``,
    ``country``, ``language``, ``story_key``, ``title``, ``url`` and the member's ``cluster_id`` and
    ``similarity``), not entities: detection counts tens of thousands of them."""
    query = (
        select(
            *ARTICLE_ROW_COLUMNS,
            ClusterMember.cluster_id,
            ClusterMember.similarity,
        )
        .join(Article, Article.id == ClusterMember.article_id)
        .where(*_counted_members_filter(start, end))
    )
    if most_central is not None:
        query = query.order_by(ClusterMember.similarity.desc(), Article.id).limit(most_central)
    rows: list[Any]  # rows of the select above
    if cluster_ids is None:
        rows = list(session.execute(query))
    else:
        rows = [
            row
            for chunk in chunked(sorted(set(cluster_ids)))
            for row in session.execute(query.where(ClusterMember.cluster_id.in_(chunk)))
        ]
    rows.sort(key=lambda row: (-row.similarity, row.id))
    clusters: dict[str, dict[int, Row[Any]]] = {}
    for row in rows:
        survivor = str(resolve(row.cluster_id, merged_into))
        clusters.setdefault(survivor, {}).setdefault(row.id, row)
    return {cluster_id: list(members.values())[:most_central] for cluster_id, members in clusters.items()}


# --- stored daily cluster counts -----------------------------------------------------------------


def outlets_text(outlets: Iterable[str]) -> str:
    """How a stored count keeps the outlets behind it: sorted, one per line."""
    return "\n".join(sorted(set(outlets)))


def outlets_of(text: str | None) -> set[str]:
    return set(text.split("\n")) if text else set()


def count_state(session: Session, days: Sequence[dt.date]) -> tuple[set[dt.date], list[int]]:
    """Which of ``days`` have current stored counts (counted, and not marked stale since: migration
    0012 marked the days whose rows keep no outlets), and the ids of the stale marks on ``days``."""
    if not days:
        return set(), []
    span = (min(days), max(days))
    counted = set(session.scalars(select(DailyVolume.day).where(DailyVolume.day.between(*span)).distinct()))
    marks = session.execute(select(CountChange.id, CountChange.day).where(CountChange.day.between(*span)))
    mark_ids, stale = [], set()
    for mark_id, marked in marks.tuples():
        mark_ids.append(mark_id)
        stale.add(marked)
    return {d for d in days if d in counted and d not in stale}, mark_ids


#: What a stored daily count row is read as, wherever it is read.
COUNT_ROW_COLUMNS = (
    DailyCount.subject_id,
    DailyCount.day,
    DailyCount.dimension,
    DailyCount.dimension_value,
    DailyCount.n_articles,
    DailyCount.n_stories,
    DailyCount.outlets,
)

UNKNOWN = "und"  # the dimension value of articles whose language or country is not known
ClusterDayKey = tuple[str, str, str]  # (subject id: a surviving cluster's for clusters; dimension; value)


def stored_cluster_days(
    session: Session,
    days: Sequence[dt.date],
    merged_into: dict[int, int],
    cluster_ids: Iterable[int] | None,
    dimensions: Sequence[str] = ("all", "country", "language"),
) -> tuple[dict[ClusterDayKey, dict[dt.date, DayCount]], dict[ClusterDayKey, dict[dt.date, set[str]]]]:
    """Every surviving cluster's counts on ``days`` from the stored rows of ``cluster_ids`` (every
    cluster's when None; of ``dimensions`` only), each under the cluster it merged into: outlets by
    union, articles and stories summed (a day's rows hold disjoint members: each day is counted under
    the merges of its own end)."""
    return stored_subject_days(
        session,
        "cluster",
        days,
        None if cluster_ids is None else {str(cid) for cid in cluster_ids},
        lambda subject_id: str(resolve(int(subject_id), merged_into)),
        dimensions,
    )


def stored_subject_days(
    session: Session,
    kind: str,
    days: Sequence[dt.date],
    subject_ids: Iterable[str] | None = None,
    survivor: Callable[[str], str] = str,
    dimensions: Sequence[str] = ("all", "country", "language"),
) -> tuple[dict[ClusterDayKey, dict[dt.date, DayCount]], dict[ClusterDayKey, dict[dt.date, set[str]]]]:
    """The stored counts of ``kind`` on ``days`` (of ``subject_ids`` when given) per (subject,
    dimension, value), each subject's rows under ``survivor(subject_id)``: outlets by union,
    articles and stories summed."""
    wanted = sorted(set(days))
    if not wanted:
        return {}, {}
    query = select(*COUNT_ROW_COLUMNS).where(
        DailyCount.subject_kind == kind,
        DailyCount.day.in_(wanted),
        DailyCount.dimension.in_(list(dimensions)),
    )
    queries = (
        [query]
        if subject_ids is None
        else [query.where(DailyCount.subject_id.in_(chunk)) for chunk in chunked(sorted(set(subject_ids)))]
    )
    sums: dict[ClusterDayKey, dict[dt.date, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    outlets: dict[ClusterDayKey, dict[dt.date, set[str]]] = defaultdict(lambda: defaultdict(set))
    for chunk_query in queries:
        rows = session.execute(chunk_query)
        for subject_id, day, dimension, value, n_articles, n_stories, text in rows.tuples():
            key = (survivor(subject_id), dimension, value)
            numbers = sums[key][day]
            numbers[0] += n_articles
            numbers[1] += n_stories
            outlets[key][day] |= outlets_of(text)
    counts = {
        key: {
            d: DayCount(n_articles=a, n_stories=s, n_outlets=len(outlets[key][d]))
            for d, (a, s) in by_day.items()
        }
        for key, by_day in sums.items()
    }
    return counts, {key: dict(by_day) for key, by_day in outlets.items()}


def folded_members(session: Session, survivors: Iterable[str] | None = None) -> dict[str, set[int]]:
    """Which clusters each folded group's rows hold (``group_members``): of ``survivors``, or of
    every folded group when None."""
    query = select(GroupMember.survivor_id, GroupMember.cluster_id)
    queries = (
        [query]
        if survivors is None
        else [query.where(GroupMember.survivor_id.in_(chunk)) for chunk in chunked(sorted(set(survivors)))]
    )
    members: dict[str, set[int]] = defaultdict(set)
    for chunk_query in queries:
        for survivor, cluster_id in session.execute(chunk_query).tuples():
            members[survivor].add(cluster_id)
    return members


def exactly_folded(held: dict[str, set[int]], groups: dict[str, set[int]]) -> set[str]:
    """The groups (survivor -> its clusters now) whose folded rows hold exactly their clusters
    (``held``, as ``folded_members`` reads it): only those may be read from their folded rows."""
    return {survivor for survivor, group in groups.items() if held.get(survivor) == group}


#: What a folded group row (``group_counts``) is read as, wherever it is read: led by the survivor's id.
FOLDED_ROW_COLUMNS = (
    GroupCount.survivor_id,
    GroupCount.day,
    GroupCount.dimension,
    GroupCount.dimension_value,
    GroupCount.n_articles,
    GroupCount.n_stories,
    GroupCount.outlets,
)


def folded_group_days(
    session: Session,
    survivors: Iterable[str],
    days: Sequence[dt.date],
    dimensions: Sequence[str] = ("all", "country", "language"),
) -> tuple[dict[ClusterDayKey, dict[dt.date, DayCount]], dict[ClusterDayKey, dict[dt.date, set[str]]]]:
    """The folded rows (``group_counts``, kept by detection) of the groups led by ``survivors`` on
    ``days``, as ``stored_cluster_days`` gives a group's counts."""
    counts: dict[ClusterDayKey, dict[dt.date, DayCount]] = {}
    outlets: dict[ClusterDayKey, dict[dt.date, set[str]]] = {}
    for chunk in chunked(sorted(set(survivors))):
        rows = session.execute(
            select(*FOLDED_ROW_COLUMNS).where(
                GroupCount.survivor_id.in_(chunk),
                GroupCount.day.in_(sorted(set(days))),
                GroupCount.dimension.in_(list(dimensions)),
            )
        ).tuples()
        for survivor, day, dimension, value, n_articles, n_stories, text in rows:
            day_outlets = outlets_of(text)
            counts.setdefault((survivor, dimension, value), {})[day] = DayCount(
                n_articles, n_stories, len(day_outlets)
            )
            outlets.setdefault((survivor, dimension, value), {})[day] = day_outlets
    return counts, outlets


def window_cluster_days(
    session: Session,
    days: Sequence[dt.date],
    merged_into: dict[int, int],
    dimensions: Sequence[str] = ("all", "country", "language"),
) -> tuple[dict[ClusterDayKey, dict[dt.date, DayCount]], dict[ClusterDayKey, dict[dt.date, set[str]]]]:
    """Every surviving cluster's counts on ``days`` (days whose stored counts are current), as
    ``stored_cluster_days`` reads them from every cluster's rows, but with each group that detection
    keeps folded and that holds exactly its members under ``merged_into`` read from its folded rows:
    a few rows a day, where the members' own rows of a busy week are a hundred thousand."""
    if not days:
        return {}, {}
    held = folded_members(session)
    standing = [survivor for survivor in held if resolve(int(survivor), merged_into) == int(survivor)]
    exact = exactly_folded(held, cluster_groups(standing, merged_into))
    folded = {str(cluster_id) for survivor in exact for cluster_id in held[survivor]}
    in_window = session.scalars(
        select(DailyCount.subject_id)
        .where(
            DailyCount.subject_kind == "cluster",
            DailyCount.day.in_(sorted(set(days))),
            DailyCount.dimension.in_(list(dimensions)),
        )
        .distinct()
    )
    rest = {int(subject_id) for subject_id in in_window if subject_id not in folded}
    counts, outlets = stored_cluster_days(session, days, merged_into, rest, dimensions)
    folded_counts, folded_outlets = folded_group_days(session, exact, days, dimensions)
    return counts | folded_counts, outlets | folded_outlets


# --- feeds ---------------------------------------------------------------------------------------


def is_paused(feed: Feed) -> bool:
    """Paused by an operator (`feeds pause`) or in feeds.yaml (``poll: {paused: true}``)."""
    return bool(feed.paused) or bool((feed.poll_overrides or {}).get("paused"))


def poll_state(feed: Feed, error_kind: Any = None) -> PollState:
    """What the schedule and the health rule know about a feed after its latest attempt."""
    return PollState(
        consecutive_failures=feed.consecutive_failures or 0,
        last_error_kind=error_kind,
        mean_item_gap_s=feed.mean_item_gap_s,
        retry_after_until=feed.retry_after_until,
        last_attempt_at=feed.last_attempt_at,
        last_success_at=feed.last_success_at,
        last_new_item_at=feed.last_new_item_at,
        paused=is_paused(feed),
    )


@dataclass(frozen=True)
class FeedHealthRow:
    feed: Feed
    state: HealthState


#: Worst first: the order `feeds health`, `status` and the report list feeds in.
HEALTH_ORDER = {HealthState.DEGRADED: 0, HealthState.SILENT: 1, HealthState.PAUSED: 2, HealthState.OK: 3}


def feed_health(session: Session, settings: BoundsSettings, now: dt.datetime) -> list[FeedHealthRow]:
    """Every feed of feeds.yaml with its health state, worst first."""
    rows = [
        FeedHealthRow(
            feed,
            feed_health_state(now, poll_state(feed), PollBounds.from_settings(settings, feed.poll_overrides)),
        )
        for feed in session.scalars(select(Feed).where(Feed.in_config.is_(True)))
    ]
    return sorted(rows, key=lambda row: (HEALTH_ORDER[row.state], row.feed.id))
