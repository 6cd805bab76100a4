"""Pure helpers of the report: link filtering, text cleaning, Markdown escaping, chart geometry."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from narrwatch.steps.report.charts import nice_ceiling, trend_geometry
from narrwatch.steps.report.markdown import code, sparkline
from narrwatch.steps.report.safety import markdown_link, markdown_text, plain_text, safe_url

MARKDOWN_SPECIALS = set("\\`*_{}[]()<>#+!|~&")


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
        "java\tscript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "file:///etc/passwd",
        "//evil.example/x",
        "/relative/path",
        "https://user:secret@evil.example/",
        "https://evil.example/a b",
        "https://evil.example/\u202eexe.txt",
        "http://:80/",
        "https://evil.example:99999/",
        "ftp://evil.example/",
        "",
        None,
        42,
        "https://" + "a" * 3000 + ".example/",
    ],
)
def test_only_http_links_are_kept(url: object) -> None:
    assert safe_url(url) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://n1info.rs/vesti/a?b=1&c=2#x", "https://n1info.rs/vesti/a?b=1&c=2#x"),
        ("HTTP://Example.org/x", "http://example.org/x"),
        ('https://e.org/p?q="><img/src=x>', "https://e.org/p?q=%22%3E%3Cimg/src=x%3E"),
        ("https://e.org/(a)[b]<c>`d`", "https://e.org/%28a%29%5Bb%5D%3Cc%3E%60d%60"),
        ("https://rt.rs/вести/1", "https://rt.rs/%D0%B2%D0%B5%D1%81%D1%82%D0%B8/1"),
        ("https://пример.срб/", "https://xn--e1afmkfd.xn--90a3ac/"),
        ("https://[2001:db8::1]:8443/x", "https://[2001:db8::1]:8443/x"),
    ],
)
def test_http_links_are_normalised_and_encoded(url: str, expected: str | None) -> None:
    assert safe_url(url) == expected


@given(st.text())
def test_a_kept_link_is_http_and_cannot_break_out_of_an_attribute_or_markdown(value: str) -> None:
    for candidate in (value, "https://e.org/" + value, "http://e.org/?q=" + value):
        url = safe_url(candidate)
        if url is None:
            continue
        match = re.match(r"https?://[A-Za-z0-9.\-\[\]:]+", url)
        assert match, url
        rest = url[match.end() :]
        assert rest == "" or rest[0] in "/?#", url
        assert not set(rest) & set(' \t\r\n"<>()`\\[]{}|^'), url


@given(st.text())
def test_plain_text_is_one_clean_line(value: str) -> None:
    text = plain_text(value, 80)
    assert len(text) <= 80
    assert not re.search(r"[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]", text)
    assert text == text.strip() and "  " not in text


@given(st.text())
def test_markdown_text_escapes_every_markup_character(value: str) -> None:
    escaped = markdown_text(value)
    index = 0
    while index < len(escaped):
        char = escaped[index]
        if char == "\\":
            assert escaped[index + 1] in MARKDOWN_SPECIALS
            index += 2
            continue
        assert char not in MARKDOWN_SPECIALS, (value, escaped)
        index += 1


def test_markdown_link_drops_unsafe_urls_and_escapes_labels() -> None:
    assert markdown_link("[x](y)", "javascript:alert(1)") == "\\[x\\]\\(y\\)"
    assert markdown_link("Title", "https://e.org/a)b") == "[Title](https://e.org/a%29b)"
    assert markdown_link("", "https://e.org/") == "[(untitled)](https://e.org/)"
    assert code("a`b|c") == "`a'b/c`"


def test_sparkline_scales_to_the_largest_value() -> None:
    assert sparkline([0, 1, 2, 4]) == "▁▃▅█"
    assert sparkline([0, 0]) == "▁▁"


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_axis_maximum_is_round_and_covers_the_value(value: float) -> None:
    top = nice_ceiling(value)
    assert top >= value and top >= 1
    magnitude = 10 ** (len(str(top)) - 1)
    assert top // magnitude in (1, 2, 3, 4, 5, 6, 8) and top % magnitude == 0


def test_trend_geometry_puts_every_bar_inside_the_plot() -> None:
    days = [dt.date(2025, 3, 1) + dt.timedelta(days=i) for i in range(30)]
    counts = [i % 4 for i in range(29)] + [11]
    baseline: list[float | None] = [None] * 5 + [1.5] * 25
    chart = trend_geometry(days, counts, baseline, days[-1], expected=2.0, measure_label="outlets")
    assert len(chart.bars) == 30 and [b.highlighted for b in chart.bars].count(True) == 1
    assert chart.bars[-1].highlighted and chart.bars[-1].value == 11
    for bar in chart.bars:
        assert chart.plot_left <= bar.x and bar.x + bar.width <= chart.plot_right
        assert chart.plot_top <= bar.y <= chart.plot_bottom
        assert bar.y + bar.height == pytest.approx(chart.plot_bottom, abs=0.11)
    assert chart.bars[-1].y == pytest.approx(
        chart.plot_bottom - (chart.plot_bottom - chart.plot_top) * 11 / 20, abs=0.1
    )
    assert [t.label for t in chart.y_ticks] == ["0", "5", "10", "15", "20"]
    assert chart.x_ticks[-1].label == "30 Mar" and len(chart.x_ticks) == 5
    assert len(chart.baseline_points.split()) == 25
    assert chart.expected_marker is not None and chart.expected_marker[0] == pytest.approx(
        chart.bars[-1].x + chart.bars[-1].width / 2, abs=0.1
    )
    kinds = [entry.kind for entry in chart.legend]
    assert kinds == ["bar", "today", "baseline", "expected"]
    assert all(entry.x < chart.plot_right for entry in chart.legend)


def test_trend_geometry_needs_one_value_per_day() -> None:
    with pytest.raises(ValueError):
        trend_geometry([dt.date(2025, 3, 1)], [1, 2], [None], None, None)
