"""The daily report as Markdown, for email and chat: the same data as the HTML page, shorter.

Built in code rather than with a template so that every feed-derived value visibly passes through
``markdown_text``/``markdown_link``; Markdown renderers pass raw HTML through, so HTML autoescape
would be the wrong escaping here.
"""

from __future__ import annotations

import datetime as dt

from narrwatch.steps.report.model import ArticleEvidence, FlagStat, ReportData, RisingItem
from narrwatch.steps.report.safety import markdown_link, markdown_text, plain_text

SPARK_LEVELS = "▁▂▃▄▅▆▇█"
EVIDENCE_CHARS = 300
ARTICLES_PER_ITEM = 3


def format_p(p_value: float) -> str:
    return f"{p_value:.3f}" if p_value >= 0.001 else f"{p_value:.1e}"


def format_when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%d %b %Y %H:%M UTC")


def sparkline(values: list[int]) -> str:
    """Counts as block characters, scaled to the largest: a trend that survives plain-text chat."""
    top = max(values, default=0)
    if top <= 0:
        return SPARK_LEVELS[0] * len(values)
    return "".join(SPARK_LEVELS[round(v / top * (len(SPARK_LEVELS) - 1))] for v in values)


def code(value: object) -> str:
    """An inline code span; backticks and pipes are replaced so it cannot close early or split a table."""
    text = plain_text(value, 200).replace("`", "'").replace("|", "/")
    return f"`{text}`" if text else "``"


def _flag_line(flag: FlagStat) -> str:
    return (
        f"rate ratio ×{flag.rate_ratio:.2f}, p = {format_p(flag.p_value)} "
        f"({code(flag.statistic)}), {flag.count} vs {flag.baseline:.1f} expected"
        f"{f' over {flag.window_days} days' if flag.window_days > 1 else ''}, {flag.n_outlets} outlets"
    )


def _change_line(flag: FlagStat) -> str:
    added = ", ".join(markdown_text(o) for o in flag.new_outlets)
    return (
        f"{flag.outlets_yesterday} → {flag.n_outlets} outlets"
        f"{f'; new today: {added}' if added else ''}; "
        f"{'flagged yesterday too' if flag.flagged_yesterday else 'not flagged yesterday'}"
    )


def _article_lines(article: ArticleEvidence) -> list[str]:
    where = ", ".join(
        part
        for part in (
            markdown_text(article.outlet),
            markdown_text(article.country),
            markdown_text(article.language or ""),
            format_when(article.published_at),
        )
        if part
    )
    lines = [f"1. {markdown_link(article.title, article.url)} — {where}"]
    if article.evidence:
        lines.append(
            f"   > {markdown_text(article.evidence, EVIDENCE_CHARS)} "
            f"*(evidence score {article.evidence_score or 0.0:.3f}, seed {code(article.narrative_id)} "
            f"v{article.narrative_version})*"
        )
    elif article.excerpt:
        lines.append(f"   > {markdown_text(article.excerpt, EVIDENCE_CHARS)}")
    return lines


def _rising_lines(rank: int, item: RisingItem) -> list[str]:
    kind = "Seed" if item.kind == "narrative" else "Cluster"
    lines = [f"### {rank}. {kind}: {markdown_text(item.title)} ({code(item.subject_id)})", ""]
    lines.append(f"- {'New' if item.new else f'Continuing, day {item.run_day}'}")
    if item.overall:
        lines.append(f"- {_flag_line(item.overall)}")
        lines.append(f"- Since yesterday: {_change_line(item.overall)}")
    else:
        lines.append("- Rising in a country or language slice only")
    countries = ", ".join(markdown_text(c) for c in item.countries) or "none"
    languages = ", ".join(markdown_text(v) for v in item.languages) or "none"
    lines.append(f"- Countries: {len(item.countries)} ({countries}) · languages: {languages}")
    if item.language_mix:
        mix = ", ".join(f"{markdown_text(share.language)} {share.n_articles}" for share in item.language_mix)
        lines.append(f"- Language mix of the flagged articles: {mix}")
    for flag in item.breakdown:
        lines.append(
            f"- Also rising in {markdown_text(flag.dimension)} "
            f"{markdown_text(flag.dimension_value)}: {_flag_line(flag)}"
        )
    counts = [p.count for p in item.trend.points]
    lines.append(
        f"- Last {len(counts)} days, {item.trend.measure_label} per day: {sparkline(counts)} "
        f"(max {max(counts, default=0)})"
    )
    if item.promote_command:
        lines.append(f"- Track it as a seed: {code(item.promote_command)}")
    lines.append("")
    if item.articles:
        for article in item.articles[:ARTICLES_PER_ITEM]:
            lines.extend(_article_lines(article))
    else:
        lines.append("No confirmed article for this item on the day.")
    lines.append("")
    return lines


def render_markdown(data: ReportData) -> str:
    """The report as Markdown: the same sections, in the same order, as the HTML page."""
    s = data.summary
    lines = [
        f"# narrwatch daily report — {data.day.isoformat()}",
        "",
        f"Articles published on {data.day.isoformat()} (UTC) · generated {format_when(data.generated_at)}",
        "",
        f"**{s.n_rising} rising** · {s.n_confirmed_matches} articles matching a seed in "
        f"{s.n_outlets} outlets · {s.n_clusters} emerging cluster{'' if s.n_clusters == 1 else 's'} · "
        f"{s.n_failing_feeds} failing / {s.n_silent_feeds} silent feeds",
        "",
        "## Rising today",
        "",
    ]
    if data.rising:
        for rank, item in enumerate(data.rising, start=1):
            lines.extend(_rising_lines(rank, item))
    else:
        lines += [
            f"Nothing is rising on {data.day.isoformat()}: no seed or cluster passed the thresholds, "
            "overall or in any country or language.",
            "",
        ]
    lines += _fell_back_lines(data)
    for section in (_seed_lines, _cluster_lines, _change_lines, _health_lines, _provenance_lines):
        lines += section(data)
        lines.append("")
    return "\n".join(lines)


def _fell_back_lines(data: ReportData) -> list[str]:
    """Subjects flagged yesterday and not today: the reader sees that a rise ended."""
    if not data.fell_back:
        return []
    lines = ["Fell back (flagged yesterday, not today):", ""]
    for back in data.fell_back:
        kind = "Seed" if back.kind == "narrative" else "Cluster"
        lines.append(
            f"- {kind}: {markdown_text(back.title)} ({code(back.subject_id)}), flagged {back.run_days} "
            f"day{'' if back.run_days == 1 else 's'}, {back.last_n_outlets} → {back.n_outlets} outlets"
        )
    return [*lines, ""]


def _seed_lines(data: ReportData) -> list[str]:
    active = [seed for seed in data.seeds if seed.n_articles or seed.rising]
    lines = ["## Seeds at a glance", ""]
    if not active:
        return [*lines, "No seed matched any article on the day."]
    lines += ["| Seed | Articles | Outlets | Mean outlets/day |", "|---|---:|---:|---:|"]
    for seed in active:
        marker = " **(rising)**" if seed.rising else ""
        lines.append(
            f"| {markdown_text(seed.title)} ({code(seed.narrative_id)}){marker} | {seed.n_articles} "
            f"| {seed.n_outlets} | {seed.mean_outlets:.1f} |"
        )
    return lines


def _cluster_lines(data: ReportData) -> list[str]:
    lines = ["## Emerging clusters", ""]
    if not data.clusters:
        return [*lines, f"No emerging clusters in the last {data.cluster_window_days} days."]
    for cluster in data.clusters:
        outlets = ", ".join(markdown_text(o) for o in cluster.outlets)
        rising = " **(rising)**" if cluster.rising else ""
        lines.append(
            f"- **{markdown_text(cluster.label)}** (cluster {cluster.cluster_id}){rising}: "
            f"{cluster.n_recent} articles in {data.cluster_window_days} days, "
            f"{len(cluster.outlets)} outlets ({outlets}); promote: {code(cluster.promote_command)}"
        )
        for sample in cluster.sample_titles:
            lines.append(f"  - {markdown_link(sample.title, sample.url)} — {markdown_text(sample.outlet)}")
    return lines


def _change_lines(data: ReportData) -> list[str]:
    lines = ["## Seed changes", ""]
    if not data.seed_changes:
        return [*lines, f"No seed was added or edited in the last {data.changes_days} days."]
    for change in data.seed_changes:
        version = (
            f"v{change.previous_version} → v{change.version}"
            if change.previous_version is not None
            else f"new, v{change.version}"
        )
        lines.append(
            f"- {code(change.narrative_id)} {markdown_text(change.title)}: {version} "
            f"({markdown_text(change.status)}, {format_when(change.created_at)})"
        )
    return lines


def _health_lines(data: ReportData) -> list[str]:
    health = data.feed_health
    lines = ["## Feed health", ""]
    if not health.failing and not health.silent:
        lines.append(f"All {health.n_feeds} feeds healthy.")
    for feed in health.failing:
        status = f"HTTP {feed.last_status}: " if feed.last_status else ""
        lines.append(
            f"- Failing: {markdown_text(feed.outlet)} / {markdown_text(feed.name)} ({code(feed.feed_id)}), "
            f"{feed.consecutive_failures} failures in a row — "
            f"{status}{markdown_text(feed.last_error or 'unknown error')}"
        )
    for feed in health.silent:
        since = format_when(feed.last_new_item_at) if feed.last_new_item_at else "never"
        lines.append(
            f"- Silent: {markdown_text(feed.outlet)} / {markdown_text(feed.name)} ({code(feed.feed_id)}), "
            f"last new item {since}"
        )
    return lines


def _provenance_lines(data: ReportData) -> list[str]:
    p = data.provenance
    models = "; ".join(markdown_text(m) for m in p.models) or "no matches on the day"
    thresholds = p.rising_thresholds
    lines = [
        "## Provenance",
        "",
        f"- Matches made by: {models}",
        f"- Configured model: {markdown_text(p.embedding_model)} ({markdown_text(p.embedding_backend)})",
        f"- Rising thresholds: p < {thresholds['alpha']}, ratio ≥ {thresholds['min_ratio']}, "
        f"≥ {thresholds['min_outlets']} outlets, baseline {thresholds['baseline_days']} days",
        "- Seeds: " + (", ".join(f"{code(s.narrative_id)} v{s.version}" for s in p.seeds) or "none"),
    ]
    for run in p.runs:
        lines.append(f"- Run {run.run_id}: {code(run.step)} {run.status} at {format_when(run.started_at)}")
    for run in p.failed_runs:
        lines.append(
            f"- **Failed** run {run.run_id}: {code(run.step)} at {format_when(run.started_at)}: "
            f"{markdown_text(run.error or 'no error recorded')}"
        )
    return lines
