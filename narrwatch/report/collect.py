"""Reads everything the daily report shows from SQL into a ``ReportData``: nothing else is consulted.

The report is a function of the stored rows, the day and ``now``: rendering the same day twice from
the same rows gives the same data.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import (
    Article,
    Cluster,
    ClusterMember,
    DailyCount,
    Feed,
    Match,
    NarrativeVersion,
    PipelineRun,
    RisingFlag,
    Verdict,
)
from narrwatch.config import Settings
from narrwatch.context import AppContext
from narrwatch.domain.clustering import resolve
from narrwatch.domain.polling import HealthState, PollBounds, PollState, feed_health_state
from narrwatch.report.charts import trend_geometry
from narrwatch.report.model import (
    ArticleEvidence,
    ClusterItem,
    FeedHealth,
    FeedIssue,
    FlagStat,
    LanguageShare,
    Provenance,
    ReportData,
    ReportSummary,
    RisingItem,
    RunInfo,
    SeedActivity,
    SeedChange,
    SeedVersionInfo,
    Trend,
    TrendPoint,
)
from narrwatch.report.safety import plain_text, safe_url
from narrwatch.rising import merge_map

TITLE_CHARS = 300
EVIDENCE_CHARS = 600
EXCERPT_CHARS = 280
ERROR_CHARS = 300
SAMPLE_TITLES = 3
MEASURE_LABELS = {
    "n_stories": "stories (one per outlet)",
    "n_outlets": "distinct outlets",
    "n_articles": "articles",
}


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


@dataclass(frozen=True)
class _Seed:
    narrative_id: str
    version: int
    title: str
    description: str
    parent_id: str | None
    status: str
    content_hash: str


def collect_report_data(ctx: AppContext, day: dt.date, now: dt.datetime) -> ReportData:
    settings = ctx.settings
    start, end = day_bounds(day)
    with ctx.transaction() as session:
        seeds = _latest_seeds(session, now)
        seed_articles = _counted_seed_articles(session, start, end)
        day_clusters = _cluster_articles(session, start, end)
        flags = session.scalars(select(RisingFlag).where(RisingFlag.day == day)).all()
        rising = _rising_items(session, settings, day, flags, seeds, seed_articles, day_clusters)
        rising_ids = {(item.kind, item.subject_id) for item in rising}
        seed_activity = _seed_activity(session, settings, day, seeds, rising_ids)
        clusters = _emerging_clusters(session, settings, day, rising_ids)
        changes = _seed_changes(session, settings, now)
        feed_health = _feed_health(session, settings, now)
        provenance = _provenance(session, settings, day, now, seeds)
    matched = {a.article_id: a.outlet for articles in seed_articles.values() for a in articles}
    summary = ReportSummary(
        n_rising=len(rising),
        n_confirmed_matches=len(matched),
        n_outlets=len(set(matched.values())),
        n_clusters=len(clusters),
        n_failing_feeds=len(feed_health.failing),
        n_silent_feeds=len(feed_health.silent),
    )
    return ReportData(
        day=day,
        generated_at=now,
        summary=summary,
        rising=rising,
        seeds=seed_activity,
        clusters=clusters,
        seed_changes=changes,
        changes_days=settings.report_changes_days,
        cluster_window_days=settings.cluster_window_days,
        feed_health=feed_health,
        provenance=provenance,
    )


# --- seeds --------------------------------------------------------------------------------------


def _latest_seeds(session: Session, now: dt.datetime) -> dict[str, _Seed]:
    """The newest version of every seed that existed at ``now``."""
    rows = session.scalars(
        select(NarrativeVersion)
        .where(NarrativeVersion.created_at <= now)
        .order_by(NarrativeVersion.narrative_id, NarrativeVersion.version)
    ).all()
    seeds: dict[str, _Seed] = {}
    for row in rows:
        definition = row.definition if isinstance(row.definition, dict) else {}
        seeds[row.narrative_id] = _Seed(
            narrative_id=row.narrative_id,
            version=row.version,
            title=plain_text(row.title, TITLE_CHARS) or row.narrative_id,
            description=plain_text(definition.get("description"), 500),
            parent_id=row.parent_id,
            status=row.status,
            content_hash=row.content_hash,
        )
    return seeds


def _latest_verdicts(session: Session, article_ids: Iterable[int]) -> dict[tuple[int, str], str]:
    """The newest analyst verdict per (article, seed), whatever collection it was given in."""
    ids = sorted(set(article_ids))
    newest: dict[tuple[int, str], tuple[dt.datetime, int, str]] = {}
    for chunk in (ids[i : i + 900] for i in range(0, len(ids), 900)):
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


def _counted_seed_articles(
    session: Session, start: dt.datetime, end: dt.datetime
) -> dict[str, list[ArticleEvidence]]:
    """Per seed, the articles published in [start, end) that count for it, strongest match first.

    The rule is the rising detector's, so the evidence shown is the evidence counted: a confirm-level
    match that no analyst rejected, or any match an analyst confirmed; the newest verdict on an
    article and seed wins, whatever collection it was given in. One entry per article (its strongest
    match over collections).
    """
    rows = session.execute(
        select(Match, Article, NarrativeVersion.version)
        .join(Article, Article.id == Match.article_id)
        .join(NarrativeVersion, NarrativeVersion.id == Match.narrative_version_id)
        .where(Article.published_at >= start, Article.published_at < end)
        .order_by(Match.score.desc(), Match.id)
    ).all()
    verdicts = _latest_verdicts(session, (match.article_id for match, _, _ in rows))
    by_seed: dict[str, dict[int, ArticleEvidence]] = defaultdict(dict)
    for match, article, version in rows:
        verdict = verdicts.get((article.id, match.narrative_id))
        if verdict == "reject" or (verdict != "confirm" and match.level != "confirm"):
            continue
        if article.id in by_seed[match.narrative_id]:  # rows come strongest first
            continue
        by_seed[match.narrative_id][article.id] = ArticleEvidence(
            article_id=article.id,
            title=plain_text(article.title, TITLE_CHARS) or "(untitled)",
            url=safe_url(article.url),
            outlet=plain_text(article.outlet, 100),
            country=plain_text(article.country, 8).upper(),
            language=plain_text(article.language, 16) or None,
            published_at=article.published_at,
            narrative_id=match.narrative_id,
            narrative_version=version,
            score=round(match.score, 4),
            evidence=plain_text(match.evidence_text, EVIDENCE_CHARS),
            evidence_score=round(match.evidence_score, 4),
            evidence_language=plain_text(match.evidence_language, 16) or None,
            model_name=plain_text(match.model_name, 200),
            analyst_verdict=verdict,
            excerpt=plain_text(article.summary, EXCERPT_CHARS),
        )
    return {seed: list(articles.values()) for seed, articles in by_seed.items()}


# --- rising items -------------------------------------------------------------------------------


def _details(flag: RisingFlag) -> dict[str, Any]:
    return flag.details if isinstance(flag.details, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _flag_stat(flag: RisingFlag) -> FlagStat:
    details = _details(flag)
    window_days = details.get("window_days")
    return FlagStat(
        dimension=flag.dimension,
        dimension_value=_slice_label(flag.dimension, flag.dimension_value),
        statistic=plain_text(flag.statistic, 40),
        rate_ratio=flag.rate_ratio,
        p_value=flag.p_value,
        count=flag.count,
        baseline=flag.baseline,
        n_outlets=flag.n_outlets,
        n_articles=flag.n_articles,
        window_days=window_days if isinstance(window_days, int) and window_days > 0 else 1,
        today_expected=_number(details.get("today_expected")),
        reason=plain_text(details.get("reason"), 300),
    )


def _slice_label(dimension: str, value: str) -> str:
    """Country codes in upper case, as everywhere in the report; language codes as stored."""
    text = plain_text(value, 16)
    return text.upper() if dimension == "country" else text


def _flag_order(flag: RisingFlag) -> tuple[float, float, str, str]:
    return (flag.p_value, -flag.rate_ratio, flag.dimension, flag.dimension_value)


def _rising_items(
    session: Session,
    settings: Settings,
    day: dt.date,
    flags: Sequence[RisingFlag],
    seeds: dict[str, _Seed],
    seed_articles: dict[str, list[ArticleEvidence]],
    day_clusters: dict[str, list[ArticleEvidence]],
) -> list[RisingItem]:
    """One item per flagged subject: its overall flag first, its country/language slices under it."""
    by_subject: dict[tuple[str, str], list[RisingFlag]] = defaultdict(list)
    for flag in flags:
        by_subject[(flag.subject_kind, flag.subject_id)].append(flag)

    def subject_order(key: tuple[str, str]) -> tuple[int, float, float, bool, str]:
        group = by_subject[key]
        overall = [f for f in group if f.dimension == "all"]
        best = min(overall or group, key=_flag_order)
        # Seeds before clusters at equal strength: a seed is a known narrative, a cluster a lead.
        return (0 if overall else 1, best.p_value, -best.rate_ratio, key[0] != "narrative", key[1])

    items = []
    for kind, subject_id in sorted(by_subject, key=subject_order):
        group = by_subject[(kind, subject_id)]
        overall_rows = [f for f in group if f.dimension == "all"]
        overall = _flag_stat(overall_rows[0]) if overall_rows else None
        breakdown = [_flag_stat(f) for f in sorted(group, key=_flag_order) if f.dimension != "all"]
        ranked_ids = _top_article_ids([*overall_rows, *(f for f in group if f.dimension != "all")])
        headline = overall_rows[0] if overall_rows else min(group, key=_flag_order)
        countries = _slice_values(session, day, kind, subject_id, "country")
        languages = _slice_values(session, day, kind, subject_id, "language")
        language_mix = _language_mix(session, day, kind, subject_id, overall.window_days if overall else 1)
        trend = _trend(session, settings, day, kind, subject_id, headline)
        if kind == "narrative":
            seed = seeds.get(subject_id)
            candidates = seed_articles.get(subject_id, [])
            items.append(
                RisingItem(
                    kind=kind,
                    subject_id=subject_id,
                    title=seed.title if seed else subject_id,
                    description=seed.description if seed else "",
                    parent_id=seed.parent_id if seed else None,
                    overall=overall,
                    breakdown=breakdown,
                    countries=countries or _distinct(c.country for c in candidates),
                    languages=languages or _distinct(c.language for c in candidates),
                    trend=trend,
                    articles=_diverse(_ranked(candidates, ranked_ids), settings.report_top_articles),
                    promote_command=None,
                    language_mix=language_mix,
                )
            )
        else:
            cluster = _cluster_row(session, subject_id)
            label = plain_text(cluster.label, 200) if cluster else ""
            representative = plain_text(cluster.representative_title, TITLE_CHARS) if cluster else ""
            candidates = day_clusters.get(subject_id, [])
            items.append(
                RisingItem(
                    kind=kind,
                    subject_id=subject_id,
                    title=label or representative or f"cluster {subject_id}",
                    description=representative,
                    parent_id=None,
                    overall=overall,
                    breakdown=breakdown,
                    countries=countries or _distinct(c.country for c in candidates),
                    languages=languages or _distinct(c.language for c in candidates),
                    trend=trend,
                    articles=_diverse(_ranked(candidates, ranked_ids), settings.report_top_articles),
                    promote_command=f"narrwatch clusters promote {subject_id}" if cluster else None,
                    language_mix=language_mix,
                )
            )
    return items


def _top_article_ids(flags: list[RisingFlag]) -> list[int]:
    """Article ids from the flags' ``top_articles`` (ids or objects carrying one), in stored order."""
    ranked: list[int] = []
    for flag in flags:
        for entry in flag.top_articles or []:
            candidate = entry.get("article_id", entry.get("id")) if isinstance(entry, dict) else entry
            if isinstance(candidate, int) and not isinstance(candidate, bool) and candidate not in ranked:
                ranked.append(candidate)
    return ranked


def _slice_values(session: Session, day: dt.date, kind: str, subject_id: str, dimension: str) -> list[str]:
    values = session.scalars(
        select(DailyCount.dimension_value)
        .where(
            DailyCount.day == day,
            DailyCount.subject_kind == kind,
            DailyCount.subject_id == subject_id,
            DailyCount.dimension == dimension,
            DailyCount.n_articles > 0,
        )
        .order_by(DailyCount.dimension_value)
    ).all()
    return [_slice_label(dimension, v) for v in values if v]


def _language_mix(
    session: Session, day: dt.date, kind: str, subject_id: str, window_days: int
) -> list[LanguageShare]:
    """Counted articles per language over the ``window_days`` ending with ``day`` (the flag's window)."""
    first = day - dt.timedelta(days=window_days - 1)
    rows = session.execute(
        select(DailyCount.dimension_value, func.sum(DailyCount.n_articles))
        .where(
            DailyCount.day >= first,
            DailyCount.day <= day,
            DailyCount.subject_kind == kind,
            DailyCount.subject_id == subject_id,
            DailyCount.dimension == "language",
        )
        .group_by(DailyCount.dimension_value)
    ).all()
    shares = [LanguageShare(_slice_label("language", value), int(total)) for value, total in rows if total]
    return sorted(shares, key=lambda share: (-share.n_articles, share.language))


def _trend(
    session: Session,
    settings: Settings,
    day: dt.date,
    kind: str,
    subject_id: str,
    headline: RisingFlag,
) -> Trend:
    """The subject's daily counts over the trend window with the trailing mean of the baseline window.

    The plotted column is the one the detector tests (distinct outlets per day); the marker is its
    expectation for the day alone (for a two-day window the stored baseline covers both days).
    """
    n_days = settings.report_trend_days
    baseline_days = settings.rising_baseline_days
    first = day - dt.timedelta(days=n_days - 1 + baseline_days)
    rows = session.scalars(
        select(DailyCount).where(
            DailyCount.subject_kind == kind,
            DailyCount.subject_id == subject_id,
            DailyCount.dimension == headline.dimension,
            DailyCount.dimension_value == headline.dimension_value,
            DailyCount.day >= first,
            DailyCount.day <= day,
        )
    ).all()
    by_day = {row.day: row for row in rows}
    measure = _measure(headline)
    history = [first + dt.timedelta(days=i) for i in range((day - first).days + 1)]
    values = [int(getattr(by_day[d], measure)) if d in by_day else 0 for d in history]
    points = []
    for index in range(baseline_days, len(history)):
        window = values[index - baseline_days : index]
        # Before the first stored count there is no history: no baseline rather than a false zero.
        has_history = any(history[j] in by_day for j in range(index - baseline_days, index))
        points.append(
            TrendPoint(
                day=history[index],
                count=values[index],
                baseline=round(sum(window) / baseline_days, 3) if has_history else None,
            )
        )
    chart = trend_geometry(
        [p.day for p in points],
        [p.count for p in points],
        [p.baseline for p in points],
        highlighted_day=day,
        expected=_day_expectation(headline),
        measure_label=MEASURE_LABELS[measure],
        baseline_days=baseline_days,
    )
    return Trend(
        measure=measure,
        measure_label=MEASURE_LABELS[measure],
        baseline_days=baseline_days,
        points=points,
        chart=chart,
    )


def _day_expectation(flag: RisingFlag) -> float | None:
    stat = _flag_stat(flag)
    if stat.today_expected is not None:
        return stat.today_expected
    return stat.baseline if stat.window_days == 1 else None


def _measure(flag: RisingFlag) -> str:
    """The daily count the detector tests: distinct outlets, unless the flag names another column."""
    named = _details(flag).get("measure")
    return str(named) if named in MEASURE_LABELS else "n_outlets"


def _distinct(values: Iterable[str | None]) -> list[str]:
    return sorted({v for v in values if v})


def _diverse(candidates: list[ArticleEvidence], limit: int) -> list[ArticleEvidence]:
    """The best article of each outlet first, then the rest: a rise is about many outlets."""
    seen: set[str] = set()
    first_per_outlet: list[ArticleEvidence] = []
    rest: list[ArticleEvidence] = []
    for candidate in candidates:
        (rest if candidate.outlet in seen else first_per_outlet).append(candidate)
        seen.add(candidate.outlet)
    return (first_per_outlet + rest)[:limit]


def _ranked(candidates: list[ArticleEvidence], ranked_ids: list[int]) -> list[ArticleEvidence]:
    """The detector's order (its stored top articles) first, then by score."""
    position = {article_id: i for i, article_id in enumerate(ranked_ids)}
    return sorted(
        candidates,
        key=lambda a: (position.get(a.article_id, len(position)), -a.score, a.article_id),
    )


def _cluster_row(session: Session, subject_id: str) -> Cluster | None:
    try:
        return session.get(Cluster, int(subject_id))
    except ValueError:
        return None


def _member_evidence(member: ClusterMember, article: Article) -> ArticleEvidence:
    return ArticleEvidence(
        article_id=article.id,
        title=plain_text(article.title, TITLE_CHARS) or "(untitled)",
        url=safe_url(article.url),
        outlet=plain_text(article.outlet, 100),
        country=plain_text(article.country, 8).upper(),
        language=plain_text(article.language, 16) or None,
        published_at=article.published_at,
        narrative_id=None,
        narrative_version=None,
        score=round(member.similarity, 4),
        evidence=None,
        evidence_score=None,
        evidence_language=None,
        model_name=None,
        analyst_verdict=None,
        excerpt=plain_text(article.summary, EXCERPT_CHARS),
    )


def _seed_covered(session: Session, article_ids: Iterable[int]) -> set[tuple[int, str]]:
    """(article, collection) pairs with a seed match no analyst rejected: they belong to the seed."""
    ids = sorted(set(article_ids))
    rows: list[tuple[int, str, str]] = []
    for chunk in (ids[i : i + 900] for i in range(0, len(ids), 900)):
        rows.extend(
            session.execute(
                select(Match.article_id, Match.narrative_id, Match.collection).where(
                    Match.article_id.in_(chunk)
                )
            ).tuples()
        )
    verdicts = _latest_verdicts(session, ids)
    return {
        (article_id, collection)
        for article_id, narrative_id, collection in rows
        if verdicts.get((article_id, narrative_id)) != "reject"
    }


def _cluster_articles(
    session: Session, start: dt.datetime, end: dt.datetime
) -> dict[str, list[ArticleEvidence]]:
    """Per surviving cluster id, its members published in [start, end), most central first.

    As the rising detector counts them: members of clusters merged before ``end`` belong to the
    survivor, and an article a seed now covers belongs to the seed, not to the cluster.
    """
    rows = session.execute(
        select(ClusterMember, Article)
        .join(Article, Article.id == ClusterMember.article_id)
        .where(Article.published_at >= start, Article.published_at < end)
        .order_by(ClusterMember.similarity.desc(), Article.id)
    ).all()
    covered = _seed_covered(session, (member.article_id for member, _ in rows))
    merged_into = merge_map(session, end)
    clusters: dict[str, dict[int, ArticleEvidence]] = defaultdict(dict)
    for member, article in rows:
        if (article.id, member.collection) in covered:
            continue
        survivor = str(resolve(member.cluster_id, merged_into))
        clusters[survivor].setdefault(article.id, _member_evidence(member, article))
    return {cluster_id: list(members.values()) for cluster_id, members in clusters.items()}


# --- the day at a glance ------------------------------------------------------------------------


def _seed_activity(
    session: Session,
    settings: Settings,
    day: dt.date,
    seeds: dict[str, _Seed],
    rising_ids: set[tuple[str, str]],
) -> list[SeedActivity]:
    baseline_days = settings.rising_baseline_days
    first = day - dt.timedelta(days=baseline_days)
    rows = session.scalars(
        select(DailyCount).where(
            DailyCount.subject_kind == "narrative",
            DailyCount.dimension == "all",
            DailyCount.day >= first,
            DailyCount.day <= day,
        )
    ).all()
    today: dict[str, DailyCount] = {}
    history: dict[str, int] = defaultdict(int)
    for row in rows:
        if row.day == day:
            today[row.subject_id] = row
        else:
            history[row.subject_id] += row.n_outlets
    activity = []
    for narrative_id, seed in seeds.items():
        if seed.status != "active" and narrative_id not in today:
            continue
        counts = today.get(narrative_id)
        activity.append(
            SeedActivity(
                narrative_id=narrative_id,
                title=seed.title,
                version=seed.version,
                n_articles=counts.n_articles if counts else 0,
                n_stories=counts.n_stories if counts else 0,
                n_outlets=counts.n_outlets if counts else 0,
                mean_outlets=round(history[narrative_id] / baseline_days, 2),
                rising=("narrative", narrative_id) in rising_ids,
            )
        )
    activity.sort(key=lambda s: (not s.rising, -s.n_outlets, -s.n_articles, -s.mean_outlets, s.narrative_id))
    return activity


# --- emerging clusters --------------------------------------------------------------------------


def _emerging_clusters(
    session: Session, settings: Settings, day: dt.date, rising_ids: set[tuple[str, str]]
) -> list[ClusterItem]:
    """Live clusters with at least two articles in the cluster window ending with the day."""
    _, end = day_bounds(day)
    start = end - dt.timedelta(days=settings.cluster_window_days)
    recent = _cluster_articles(session, start, end)
    live = {
        str(cluster.id): cluster
        for cluster in session.scalars(
            select(Cluster).where(Cluster.id.in_([int(cid) for cid in recent]), Cluster.status == "live")
        )
    }
    candidates = [
        (cluster_id, members)
        for cluster_id, members in recent.items()
        if cluster_id in live and len(members) >= 2
    ]
    candidates.sort(key=lambda c: (-len({m.outlet for m in c[1]}), -len(c[1]), int(c[0])))
    items = []
    for cluster_id, members in candidates[: settings.report_max_clusters]:
        cluster = live[cluster_id]
        items.append(
            ClusterItem(
                cluster_id=cluster.id,
                label=plain_text(cluster.label, 200) or f"cluster {cluster.id}",
                representative_title=plain_text(cluster.representative_title, TITLE_CHARS),
                size=cluster.size,
                n_recent=len(members),
                outlets=_distinct(m.outlet for m in members),
                countries=_distinct(m.country for m in members),
                sample_titles=_diverse(members, SAMPLE_TITLES),
                first_seen_at=cluster.first_seen_at,
                last_seen_at=cluster.last_seen_at,
                rising=("cluster", cluster_id) in rising_ids,
                promote_command=f"narrwatch clusters promote {cluster.id}",
            )
        )
    return items


# --- seed changes, feed health, provenance ------------------------------------------------------


def _seed_changes(session: Session, settings: Settings, now: dt.datetime) -> list[SeedChange]:
    since = now - dt.timedelta(days=settings.report_changes_days)
    rows = session.scalars(
        select(NarrativeVersion)
        .where(NarrativeVersion.created_at > since, NarrativeVersion.created_at <= now)
        .order_by(NarrativeVersion.created_at.desc(), NarrativeVersion.narrative_id)
    ).all()
    changes = []
    for row in rows:
        previous = session.scalar(
            select(func.max(NarrativeVersion.version)).where(
                NarrativeVersion.narrative_id == row.narrative_id,
                NarrativeVersion.version < row.version,
            )
        )
        changes.append(
            SeedChange(
                narrative_id=row.narrative_id,
                title=plain_text(row.title, TITLE_CHARS),
                version=row.version,
                previous_version=previous,
                status=row.status,
                created_at=row.created_at,
                source_file=plain_text(row.source_file, 300),
            )
        )
    return changes


def _feed_issue(feed: Feed, silent_hours: float | None) -> FeedIssue:
    return FeedIssue(
        feed_id=plain_text(feed.id, 100),
        outlet=plain_text(feed.outlet, 100),
        name=plain_text(feed.name, 300),
        country=plain_text(feed.country, 8).upper(),
        url=safe_url(feed.url),
        consecutive_failures=feed.consecutive_failures,
        last_error=plain_text(feed.last_error, ERROR_CHARS) or None,
        last_status=feed.last_status,
        last_success_at=feed.last_success_at,
        last_new_item_at=feed.last_new_item_at,
        silent_hours=silent_hours,
    )


def _feed_health(session: Session, settings: Settings, now: dt.datetime) -> FeedHealth:
    """Failing (degraded) and silent feeds, by the same rules as ``narrwatch feeds health``."""
    feeds = session.scalars(
        select(Feed).where(Feed.in_config.is_(True), Feed.paused.is_(False)).order_by(Feed.id)
    ).all()
    failing, silent = [], []
    for feed in feeds:
        state = PollState(
            consecutive_failures=feed.consecutive_failures,
            mean_item_gap_s=feed.mean_item_gap_s,
            last_attempt_at=feed.last_attempt_at,
            last_success_at=feed.last_success_at,
            last_new_item_at=feed.last_new_item_at,
        )
        bounds = PollBounds.from_settings(settings, feed.poll_overrides or {})
        health = feed_health_state(now, state, bounds)
        if health is HealthState.DEGRADED:
            failing.append(_feed_issue(feed, None))
        elif health is HealthState.SILENT:
            quiet = feed.last_new_item_at
            hours = round((now - quiet).total_seconds() / 3600, 1) if quiet is not None else None
            silent.append(_feed_issue(feed, hours))
    failing.sort(key=lambda f: (-f.consecutive_failures, f.feed_id))
    silent.sort(key=lambda f: (-(f.silent_hours if f.silent_hours is not None else float("inf")), f.feed_id))
    return FeedHealth(n_feeds=len(feeds), failing=failing, silent=silent)


def _run_info(row: PipelineRun) -> RunInfo:
    return RunInfo(
        run_id=row.id,
        step=row.step,
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        window_start=row.window_start,
        window_end=row.window_end,
        summary=_small_summary(row.summary),
        error=plain_text(row.error, ERROR_CHARS) or None,
    )


def _small_summary(summary: Any) -> dict[str, Any]:
    """The scalar figures of a run summary (counts, ids): nested lists and objects are left out."""
    if not isinstance(summary, dict):
        return {}
    kept: dict[str, Any] = {}
    for key, value in sorted(summary.items()):
        if isinstance(value, bool | int | float) or value is None:
            kept[plain_text(key, 60)] = value
        elif isinstance(value, str):
            kept[plain_text(key, 60)] = plain_text(value, 200)
    return kept


def _provenance(
    session: Session, settings: Settings, day: dt.date, now: dt.datetime, seeds: dict[str, _Seed]
) -> Provenance:
    start, end = day_bounds(day)
    models = session.execute(
        select(Match.model_name, Match.collection)
        .where(Match.published_at >= start, Match.published_at < end)
        .distinct()
        .order_by(Match.model_name, Match.collection)
    ).all()
    # Thresholds as the latest match of each seed on the day used them.
    thresholds: dict[str, tuple[float, float]] = {}
    for narrative_id, suggest, confirm in session.execute(
        select(Match.narrative_id, Match.threshold_suggest, Match.threshold_confirm)
        .where(Match.published_at >= start, Match.published_at < end)
        .order_by(Match.matched_at, Match.id)
    ).all():
        thresholds[narrative_id] = (suggest, confirm)
    seed_infos = [
        SeedVersionInfo(
            narrative_id=seed.narrative_id,
            version=seed.version,
            status=seed.status,
            content_hash=seed.content_hash[:12],
            threshold_suggest=thresholds[seed.narrative_id][0] if seed.narrative_id in thresholds else None,
            threshold_confirm=thresholds[seed.narrative_id][1] if seed.narrative_id in thresholds else None,
        )
        for seed in sorted(seeds.values(), key=lambda s: s.narrative_id)
    ]
    # The latest run of each step up to now; this report's own run is still in progress, so skipped.
    latest_ids = (
        select(func.max(PipelineRun.id))
        .where(PipelineRun.started_at <= now, PipelineRun.step != "report")
        .group_by(PipelineRun.step)
    )
    runs = session.scalars(
        select(PipelineRun).where(PipelineRun.id.in_(latest_ids)).order_by(PipelineRun.started_at)
    ).all()
    failed = session.scalars(
        select(PipelineRun)
        .where(
            PipelineRun.status == "failed",
            PipelineRun.started_at > now - dt.timedelta(days=1),
            PipelineRun.started_at <= now,
        )
        .order_by(PipelineRun.started_at.desc())
    ).all()
    return Provenance(
        models=[plain_text(f"{model} ({collection})", 300) for model, collection in models],
        embedding_model=settings.embedding_model,
        embedding_backend=settings.embedding_backend,
        seeds=seed_infos,
        rising_thresholds={
            "alpha": settings.rising_alpha,
            "min_ratio": settings.rising_min_ratio,
            "min_outlets": settings.rising_min_outlets,
            "baseline_days": settings.rising_baseline_days,
        },
        runs=[_run_info(row) for row in runs],
        failed_runs=[_run_info(row) for row in failed],
    )
