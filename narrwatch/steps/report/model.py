"""The daily report as plain data: built once from SQL, then rendered as HTML, Markdown and JSON.

Text fields that come from feeds are stored here already cleaned by ``safety.plain_text`` and links
already filtered by ``safety.safe_url`` (None when dropped), so the three outputs cannot disagree on
what is safe. ``as_json`` gives the structure that ``report.schema.json`` documents.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from narrwatch.steps.report.charts import ChartGeometry

SCHEMA_VERSION = 2


@dataclass(frozen=True)
class FlagStat:
    """One stored rising flag: the statistic and the numbers behind it."""

    dimension: str  # all | country | language
    dimension_value: str
    statistic: str
    rate_ratio: float
    p_value: float
    count: int  # the tested count over window_days
    baseline: float  # its expectation over the same window
    n_outlets: int
    n_articles: int
    window_days: int  # days the tested count covers (the day, the last 3 days or the week)
    today_expected: float | None  # the detector's expectation for the day alone, when stored
    reason: str  # the detector's own explanation of the flag
    new: bool  # no flag for the subject in the days before; else continuing
    run_day: int  # 1 when new, K on the K-th day of a run of flags
    outlets_yesterday: int  # distinct outlets the day before
    new_outlets: list[str]  # outlets today that did not carry the subject the day before
    flagged_yesterday: bool


@dataclass(frozen=True)
class TrendPoint:
    day: dt.date
    count: int
    baseline: float | None  # trailing mean of the preceding baseline window; None without history


@dataclass(frozen=True)
class Trend:
    measure: str  # the daily_counts column plotted: n_stories | n_outlets | n_articles
    measure_label: str
    baseline_days: int
    points: list[TrendPoint]
    chart: ChartGeometry = field(repr=False)


@dataclass(frozen=True)
class ArticleEvidence:
    article_id: int
    title: str
    url: str | None
    outlet: str
    country: str
    language: str | None
    published_at: dt.datetime
    narrative_id: str | None  # the seed (or sub-seed) matched; None for cluster members
    narrative_version: int | None
    score: float  # match score, or similarity to the cluster centroid
    evidence: str | None  # the passage that matched; None for cluster members
    evidence_score: float | None
    evidence_language: str | None
    model_name: str | None
    analyst_verdict: str | None  # "confirm" when an analyst confirmed the match, else None
    excerpt: str  # the article's summary, shortened: context when there is no evidence passage
    # why the match matched (stored on the match row): closest phrasing or verdict, the score
    # before per-language calibration, the stance (promoting | reporting | debunking) and its cues
    evidence_example: str | None = None
    raw_score: float | None = None
    stance: str | None = None
    stance_cues: str | None = None


@dataclass(frozen=True)
class LanguageShare:
    """Articles a flag counted in one language (the language stored with each article)."""

    language: str
    n_articles: int


@dataclass(frozen=True)
class RisingItem:
    kind: str  # narrative | cluster
    subject_id: str
    title: str
    description: str
    parent_id: str | None
    overall: FlagStat | None  # None when only a country or language slice rose
    breakdown: list[FlagStat]
    countries: list[str]
    languages: list[str]
    trend: Trend
    articles: list[ArticleEvidence]
    promote_command: str | None
    new: bool  # the headline flag's: first flag in the days before, else continuing
    run_day: int
    # Over the flag's window, most articles first: a narrative pushed in one language reads differently
    # from one that crosses languages.
    language_mix: list[LanguageShare] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return f"{self.kind}-{self.subject_id}"


@dataclass(frozen=True)
class FellBack:
    """A subject flagged (overall) the day before and not on the day: its rise has stopped for now."""

    kind: str  # narrative | cluster
    subject_id: str
    title: str
    last_flag_day: dt.date
    run_days: int  # how many days its last run of flags lasted
    n_outlets: int  # distinct outlets on the day
    last_n_outlets: int  # on its last flagged day


@dataclass(frozen=True)
class SeedActivity:
    """A seed's counts on the day against its trailing mean of outlets: the day at a glance."""

    narrative_id: str
    title: str
    version: int
    n_articles: int
    n_stories: int
    n_outlets: int
    mean_outlets: float  # daily mean of distinct outlets over the baseline window before the day
    rising: bool


@dataclass(frozen=True)
class ClusterItem:
    cluster_id: int
    label: str
    representative_title: str
    size: int
    n_recent: int
    outlets: list[str]
    countries: list[str]
    sample_titles: list[ArticleEvidence]
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime
    rising: bool
    promote_command: str


@dataclass(frozen=True)
class SeedChange:
    narrative_id: str
    title: str
    version: int
    previous_version: int | None
    status: str
    created_at: dt.datetime
    source_file: str


@dataclass(frozen=True)
class FeedIssue:
    feed_id: str
    outlet: str
    name: str
    country: str
    url: str | None
    consecutive_failures: int
    last_error: str | None
    last_status: int | None
    last_success_at: dt.datetime | None
    last_new_item_at: dt.datetime | None
    silent_hours: float | None  # hours since the last new item, for silent feeds


@dataclass(frozen=True)
class FeedHealth:
    n_feeds: int
    failing: list[FeedIssue]
    silent: list[FeedIssue]


@dataclass(frozen=True)
class SeedVersionInfo:
    narrative_id: str
    version: int
    status: str
    content_hash: str
    threshold_suggest: float | None
    threshold_confirm: float | None


@dataclass(frozen=True)
class RunInfo:
    run_id: int
    step: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    summary: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class Provenance:
    models: list[str]  # "model (collection)" of the day's matches, or the configured model
    embedding_model: str
    embedding_backend: str
    seeds: list[SeedVersionInfo]
    rising_thresholds: dict[str, float | int]
    runs: list[RunInfo]
    failed_runs: list[RunInfo]


@dataclass(frozen=True)
class ReportSummary:
    n_rising: int
    n_confirmed_matches: int
    n_outlets: int
    n_clusters: int
    n_failing_feeds: int
    n_silent_feeds: int


@dataclass(frozen=True)
class ReportData:
    day: dt.date
    generated_at: dt.datetime
    summary: ReportSummary
    rising: list[RisingItem]  # new flags first, then continuing ones
    fell_back: list[FellBack]
    seeds: list[SeedActivity]
    clusters: list[ClusterItem]
    seed_changes: list[SeedChange]
    changes_days: int
    cluster_window_days: int
    feed_health: FeedHealth
    provenance: Provenance

    def as_json(self) -> dict[str, Any]:
        """JSON-able dict following report.schema.json (dates as ISO 8601, charts left out)."""
        return {"schema_version": SCHEMA_VERSION, **_jsonable(self)}


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        result = {}
        for item in dataclasses.fields(value):
            if item.name == "chart":  # geometry is presentation, not data
                continue
            result[item.name] = _jsonable(getattr(value, item.name))
        return result
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not (value == value and abs(value) != float("inf")):
        return None  # NaN and infinities are not JSON
    return value
