"""The report rendered from SQL fixture rows: content, hostile text made inert, schema, index, reruns."""

from __future__ import annotations

import datetime as dt
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from report_fixtures import (
    CLUSTER_ID,
    CONFIRMED_TITLE,
    DAY,
    MERGED_TITLE,
    NOW,
    QUIET_SEED,
    REJECTED_TITLE,
    RISING_SEED,
    RISING_TITLE,
    build_report_fixture,
)

from narrwatch.context import AppContext
from narrwatch.steps.report import render_report
from narrwatch.steps.report.render import CSP

pytestmark = pytest.mark.db

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "narrwatch" / "steps" / "report" / "report.schema.json"
ACTIVE_TAGS = {"script", "iframe", "img", "object", "embed", "link", "base", "form", "frame", "video"}


class Dom(HTMLParser):
    """Every start tag with its attributes, and the text, of an HTML document."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def assert_inert_html(markup: str) -> Dom:
    dom = Dom(markup)
    tags = {name for name, _ in dom.tags}
    assert not tags & ACTIVE_TAGS, f"active elements in the report: {tags & ACTIVE_TAGS}"
    for name, attrs in dom.tags:
        handlers = [key for key in attrs if key.startswith("on")]
        assert not handlers, f"<{name}> carries event handlers {handlers}"
        assert "ping" not in attrs and "srcdoc" not in attrs
    metas = dom.all("meta")
    assert {"http-equiv": "Content-Security-Policy", "content": CSP} in metas
    assert not [m for m in metas if (m.get("http-equiv") or "").lower() == "refresh"]
    for anchor in dom.all("a"):
        href = anchor.get("href") or ""
        # in-page anchors, the index's links to reports, a report's links to its neighbours and index
        if href.startswith("#") or re.fullmatch(
            r"(\.\./)?\d{4}-\d{2}-\d{2}/report\.(html|md|json)|\.\./index\.html", href
        ):
            continue
        assert re.match(r"https?://", href), f"non-http link kept: {href!r}"
        assert set((anchor.get("rel") or "").split()) >= {"noopener", "noreferrer", "nofollow"}
    return dom


@pytest.fixture
def rendered(ctx: AppContext, tmp_path: Path) -> dict[str, Any]:
    ids = build_report_fixture(ctx)
    result = render_report(ctx, DAY, NOW)
    return {
        "ids": ids,
        "result": result,
        "html": result.html.read_text(encoding="utf-8"),
        "markdown": result.markdown.read_text(encoding="utf-8"),
        "json": json.loads(result.json.read_text(encoding="utf-8")),
    }


def test_files_land_in_the_day_folder_of_the_reports_dir(ctx: AppContext, rendered: dict[str, Any]) -> None:
    result = rendered["result"]
    expected = ctx.settings.resolved_reports_dir / DAY.isoformat()
    assert result.out_dir == expected
    assert (result.html, result.markdown, result.json) == (
        expected / "report.html",
        expected / "report.md",
        expected / "report.json",
    )
    assert result.index == ctx.settings.resolved_reports_dir / "index.html"
    assert result.as_dict()["n_rising"] == 2


def test_rising_seed_comes_first_with_its_statistic_chart_and_evidence(rendered: dict[str, Any]) -> None:
    report = rendered["json"]
    first, second = report["rising"]
    assert (first["kind"], first["subject_id"], first["title"]) == ("narrative", RISING_SEED, RISING_TITLE)
    assert (second["kind"], second["subject_id"]) == ("cluster", str(CLUSTER_ID))
    overall = first["overall"]
    assert (overall["rate_ratio"], overall["p_value"], overall["count"], overall["baseline"]) == (
        3.16,
        2.4e-5,
        6,
        1.9,
    )
    assert overall["n_outlets"] == 6
    assert first["countries"] == ["BA", "ME", "MK", "RS", "XK"]
    assert [(f["dimension"], f["dimension_value"]) for f in first["breakdown"]] == [("country", "RS")]
    # 30 days of distinct outlets per day, the report's day last, the burst on it
    points = first["trend"]["points"]
    assert first["trend"]["measure"] == "n_outlets"
    assert len(points) == 30 and points[-1]["day"] == DAY.isoformat() and points[-1]["count"] == 6
    assert all(p["count"] in (1, 2) for p in points[:-1])
    assert points[-1]["baseline"] == pytest.approx(1.5, abs=0.05)
    # the detector's order first (its top_articles), one article per outlet, evidence attached
    articles = first["articles"]
    assert [a["outlet"] for a in articles] == ["delta", "alpha", "beta", "gamma", "epsilon"]
    top = articles[0]
    assert top["evidence"] == "Evidence passage 3: NATO threat."
    assert (top["evidence_score"], top["narrative_version"], top["model_name"]) == (
        0.72,
        1,
        "bundled:all-MiniLM-L6-v2",
    )

    html = rendered["html"]
    dom = Dom(html)
    item = html[html.index(f'id="narrative-{RISING_SEED}"') :]
    item = item[: item.index("</article>")]
    assert "×3.16" in item and "2.4e-05" in item and "vs 1.9 expected" in item
    assert f'data-chart-for="narrative-{RISING_SEED}"' in item
    assert f"Trend: {RISING_TITLE}" in item
    assert item.count('<rect class="bar') == 30 and item.count('class="bar today"') == 1
    assert "Evidence passage 3: NATO threat." in item
    assert [a["aria-labelledby"] for a in dom.all("svg")][0] == (
        f"chart-title-narrative-{RISING_SEED} chart-desc-narrative-{RISING_SEED}"
    )


def test_rejected_matches_leave_and_analyst_confirmed_suggestions_count(rendered: dict[str, Any]) -> None:
    report = rendered["json"]
    assert REJECTED_TITLE not in rendered["html"] and REJECTED_TITLE not in rendered["markdown"]
    assert REJECTED_TITLE not in json.dumps(report)
    # six confirm-level matches plus the suggestion an analyst confirmed; the rejected one is out
    assert report["summary"]["n_confirmed_matches"] == 7


def test_analyst_confirmation_is_shown_on_the_evidence(ctx: AppContext, tmp_path: Path) -> None:
    build_report_fixture(ctx)
    ctx.settings.report_top_articles = 10
    report = json.loads(render_report(ctx, DAY, NOW, out_dir=tmp_path / "all").json.read_text())
    confirmed = [a for a in report["rising"][0]["articles"] if a["title"] == CONFIRMED_TITLE]
    assert len(confirmed) == 1 and confirmed[0]["analyst_verdict"] == "confirm"
    assert "confirmed by an analyst" in (tmp_path / "all" / "report.html").read_text()


def test_clusters_follow_merges_and_leave_seed_covered_articles_to_the_seed(rendered: dict[str, Any]) -> None:
    report = rendered["json"]
    cluster_item = report["rising"][1]
    titles = [a["title"] for a in cluster_item["articles"]]
    assert MERGED_TITLE in titles
    assert "Montenegro was dragged into NATO, say critics" not in titles
    assert cluster_item["promote_command"] == f"narrwatch clusters promote {CLUSTER_ID}"
    (emerging,) = report["clusters"]
    assert emerging["cluster_id"] == CLUSTER_ID and emerging["rising"] is True
    assert emerging["n_recent"] == 5 and len(emerging["outlets"]) == 5
    assert len(emerging["sample_titles"]) == 3
    assert "narrwatch clusters promote 7" in rendered["html"]


def test_seed_changes_feed_health_and_provenance(rendered: dict[str, Any]) -> None:
    report = rendered["json"]
    (change,) = report["seed_changes"]
    assert (change["narrative_id"], change["previous_version"], change["version"]) == (QUIET_SEED, 1, 2)
    health = report["feed_health"]
    assert [f["feed_id"] for f in health["failing"]] == ["broken-feed"]
    assert health["failing"][0]["url"] is None  # a javascript: feed URL is dropped
    assert [f["feed_id"] for f in health["silent"]] == ["quiet-feed"]
    assert health["silent"][0]["silent_hours"] == 120.0
    provenance = report["provenance"]
    assert provenance["models"] == ["bundled:all-MiniLM-L6-v2 (passages__all-minilm-l6-v2__384)"]
    seeds = {s["narrative_id"]: s for s in provenance["seeds"]}
    assert seeds[RISING_SEED]["threshold_confirm"] == 0.6 and seeds[QUIET_SEED]["version"] == 2
    assert [r["step"] for r in provenance["runs"]] == ["poll", "embed", "match", "detect"]
    assert [r["status"] for r in provenance["runs"]] == ["ok", "ok", "ok", "ok"]
    (failed,) = provenance["failed_runs"]
    assert failed["step"] == "embed" and "Qdrant unreachable" in failed["error"]
    assert provenance["runs"][0]["summary"] == {"n_new": 3}  # nested values are left out


def test_hostile_feed_text_is_inert_in_html(rendered: dict[str, Any]) -> None:
    html = rendered["html"]
    dom = assert_inert_html(html)
    text = "".join(dom.text)
    # the payloads are shown as text, so a reader sees what the outlet published
    assert "<script>document.title='PWNED-script'</script>NATO drills near the border" in text
    assert "onerror=\"document.title='PWNED-onerror'\"" in text
    assert "<svg/onload=document.title='PWNED-label'>" in text
    assert "&lt;script&gt;" in html and "<script" not in html
    hrefs = [a.get("href") for a in dom.all("a")]
    assert not [h for h in hrefs if h and ("javascript" in h.lower() or h.lower().startswith("data:"))]
    # a link with markup characters in its query is percent-encoded, not dropped
    assert "https://delta.example/news/4?x=1&y=%3C2%3E" in hrefs
    assert "(link removed: not http/https)" in html


def test_hostile_feed_text_is_inert_in_markdown(rendered: dict[str, Any]) -> None:
    markdown = rendered["markdown"]
    # no raw angle bracket, image or link syntax from feed text survives: each is backslash-escaped
    thresholds = re.sub(r"p < [0-9.]+", "", markdown)  # the rising threshold line is ours
    assert not re.search(r"(?<!\\)<(?!\d)", thresholds), "raw < in markdown"
    links = re.findall(r"(?<!\\)\]\(([^)]*)\)", markdown)
    assert links and all(re.match(r"https?://", link) for link in links), links
    assert "javascript:" not in "".join(links) and "data:" not in "".join(links)
    assert "\\<script\\>document.title='PWNED-script'\\</script\\>" in markdown
    ministers = "[Ministers warn NATO is encircling Serbia](https://delta.example/news/4?x=1&y=%3C2%3E)"
    assert ministers in markdown
    assert "\\[click\\]\\(javascript:alert\\(1\\)\\)" in markdown
    assert markdown.startswith(f"# narrwatch daily report — {DAY.isoformat()}")
    assert f"### 1. Seed: {RISING_TITLE} (`{RISING_SEED}`)" in markdown


def test_report_json_validates_against_its_schema(rendered: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(rendered["json"]), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]
    # the schema is strict enough to catch a drifted field and a kept javascript: link
    drifted = json.loads(json.dumps(rendered["json"]))
    drifted["rising"][0]["articles"][0]["url"] = "javascript:alert(1)"
    drifted["summary"]["extra"] = 1
    assert len(list(validator.iter_errors(drifted))) == 2


def test_empty_day_reads_well_and_still_validates(ctx: AppContext) -> None:
    result = render_report(ctx, DAY, NOW)
    html = result.html.read_text()
    assert f"Nothing is rising on {DAY.isoformat()}." in html
    assert "No emerging clusters." in html
    assert "No seed narratives are loaded." in html
    assert "All 0 feeds healthy." in html
    assert_inert_html(html)
    markdown = result.markdown.read_text()
    assert f"Nothing is rising on {DAY.isoformat()}" in markdown
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(json.loads(result.json.read_text()), schema)


def test_rendering_again_gives_the_same_files_and_a_non_utc_now_is_normalised(
    ctx: AppContext, rendered: dict[str, Any]
) -> None:
    first = {path: path.read_bytes() for path in rendered["result"].out_dir.iterdir()}
    belgrade = dt.timezone(dt.timedelta(hours=1))
    again = render_report(ctx, DAY, NOW.astimezone(belgrade))
    assert {path: path.read_bytes() for path in again.out_dir.iterdir()} == first
    assert not list(again.out_dir.glob(".*.tmp"))
    with pytest.raises(ValueError, match="aware"):
        render_report(ctx, DAY, NOW.replace(tzinfo=None))


def test_index_lists_past_reports_newest_first(ctx: AppContext, rendered: dict[str, Any]) -> None:
    earlier = DAY - dt.timedelta(days=1)
    render_report(ctx, earlier, NOW)
    reports_dir = ctx.settings.resolved_reports_dir
    (reports_dir / "not-a-day").mkdir()
    (reports_dir / "2020-01-01").mkdir()  # no report.html: not listed
    index = render_report(ctx, DAY, NOW).index.read_text()
    dom = assert_inert_html(index)
    hrefs = [a["href"] for a in dom.all("a")]
    assert hrefs[0] == f"{DAY.isoformat()}/report.html"
    day_links = [h for h in hrefs if h and h.endswith("report.html")]
    assert day_links == [f"{DAY.isoformat()}/report.html"] * 2 + [f"{earlier.isoformat()}/report.html"] * 2
    assert RISING_TITLE in index and "2020-01-01" not in index and "not-a-day" not in index


def test_out_dir_overrides_the_day_folder(ctx: AppContext, tmp_path: Path) -> None:
    build_report_fixture(ctx)
    result = render_report(ctx, DAY, NOW, out_dir=tmp_path / "custom")
    assert result.out_dir == tmp_path / "custom" and result.html.is_file()
    assert not (ctx.settings.resolved_reports_dir / DAY.isoformat()).exists()


def test_static_report_links_the_previous_and_next_reports(ctx: AppContext, tmp_path: Path) -> None:
    build_report_fixture(ctx)
    earlier, later = DAY - dt.timedelta(days=1), DAY + dt.timedelta(days=2)
    render_report(ctx, earlier, NOW)
    render_report(ctx, later, NOW)
    html = render_report(ctx, DAY, NOW).html.read_text(encoding="utf-8")
    assert f'<a rel="prev" href="../{earlier}/report.html">' in html
    assert f'<a rel="next" href="../{later}/report.html">' in html
    first = render_report(ctx, earlier, NOW).html.read_text(encoding="utf-8")
    assert 'rel="prev"' not in first and f'href="../{DAY}/report.html"' in first
