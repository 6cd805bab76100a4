"""Geometry of the trend charts: numbers in, coordinates and labels out.

The SVG itself is drawn by a template macro, so every value reaching the page goes through Jinja2's
autoescape like the rest of the report and nothing is marked safe by hand.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

WIDTH = 860
HEIGHT = 204
MARGIN_LEFT = 40
MARGIN_RIGHT = 12
MARGIN_TOP = 40  # room for two rows of legend
MARGIN_BOTTOM = 30


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: str
    value: int
    highlighted: bool


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class LegendEntry:
    kind: str  # bar | today | baseline | expected: which swatch to draw
    x: float  # left edge of the swatch
    text_x: float
    y: float  # baseline of the label text
    label: str


@dataclass(frozen=True)
class ChartGeometry:
    width: int
    height: int
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    bars: list[Bar]
    baseline_points: str  # SVG polyline "x,y x,y ..."; empty when there is no baseline yet
    expected_marker: tuple[float, float] | None  # the detector's expectation for the flagged day
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    legend: list[LegendEntry]


# Average advance of an 11 px sans-serif glyph, used to lay legend entries side by side.
LEGEND_CHAR_WIDTH = 6.4
LEGEND_SWATCH = 14.0
LEGEND_GAP = 18.0
LEGEND_ROW = 15.0


def nice_ceiling(value: float) -> int:
    """A round axis maximum at or above ``value``: 1, 2, 3, 4, 5, 6 or 8 times a power of ten."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 3, 4, 5, 6, 8, 10):
        if step * magnitude >= value:
            return int(step * magnitude)
    return int(10 * magnitude)


def legend_layout(labels: list[tuple[str, str]], start: float, end: float) -> list[LegendEntry]:
    """Place (kind, label) entries left to right, wrapping to a second row when one would overflow."""
    entries = []
    x, row = start, 0
    for kind, label in labels:
        swatch = 24.0 if kind == "baseline" else 10.0
        width = swatch + 4 + len(label) * LEGEND_CHAR_WIDTH
        if x + width > end and x > start:
            x, row = start, row + 1
        entries.append(
            LegendEntry(
                kind=kind,
                x=round(x, 1),
                text_x=round(x + swatch + 4, 1),
                y=15.0 + row * LEGEND_ROW,
                label=label,
            )
        )
        x += width + LEGEND_GAP
    return entries


def trend_geometry(
    days: list[dt.date],
    counts: list[int],
    baseline: list[float | None],
    highlighted_day: dt.date | None,
    expected: float | None,
    measure_label: str = "count",
    baseline_days: int = 28,
) -> ChartGeometry:
    """Bars for ``counts``, a line for ``baseline`` and a marker for the flagged day's expectation."""
    if not days or len(days) != len(counts) or len(days) != len(baseline):
        raise ValueError("trend chart needs one count and one baseline value per day")
    plot_left, plot_right = float(MARGIN_LEFT), float(WIDTH - MARGIN_RIGHT)
    plot_top, plot_bottom = float(MARGIN_TOP), float(HEIGHT - MARGIN_BOTTOM)
    known = [b for b in baseline if b is not None]
    top_value = nice_ceiling(max([*counts, *known, expected or 0.0, 1]))

    def y_of(value: float) -> float:
        return round(plot_bottom - (plot_bottom - plot_top) * value / top_value, 1)

    slot = (plot_right - plot_left) / len(days)
    bar_width = round(max(slot * 0.72, 1.0), 1)
    bars: list[Bar] = []
    centres: list[float] = []
    for index, (day, count) in enumerate(zip(days, counts, strict=True)):
        centre = plot_left + slot * (index + 0.5)
        centres.append(centre)
        top = y_of(count)
        bars.append(
            Bar(
                x=round(centre - bar_width / 2, 1),
                y=top,
                width=bar_width,
                height=round(plot_bottom - top, 1),
                day=day.isoformat(),
                value=count,
                highlighted=day == highlighted_day,
            )
        )
    baseline_points = " ".join(
        f"{round(centre, 1)},{y_of(value)}"
        for centre, value in zip(centres, baseline, strict=True)
        if value is not None
    )
    marker = None
    if expected is not None and highlighted_day in days:
        marker = (round(centres[days.index(highlighted_day)], 1), y_of(expected))
    y_ticks = [Tick(position=y_of(v), label=str(v)) for v in _y_tick_values(top_value)]
    # Label every 7th day counted back from the last one, so the report's day is always labelled.
    x_ticks = [
        Tick(position=round(centres[i], 1), label=days[i].strftime("%d %b"))
        for i in range(len(days) - 1, -1, -7)
    ][::-1]
    has_baseline = len(known) > 1
    legend = [("bar", f"{measure_label} per day"), ("today", "report day")]
    if has_baseline:
        legend.append(("baseline", f"mean, previous {baseline_days} days"))
    if marker is not None:
        legend.append(("expected", "expected by the detector"))
    return ChartGeometry(
        width=WIDTH,
        height=HEIGHT,
        plot_left=plot_left,
        plot_right=plot_right,
        plot_top=plot_top,
        plot_bottom=plot_bottom,
        bars=bars,
        baseline_points=baseline_points if has_baseline else "",
        expected_marker=marker,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        legend=legend_layout(legend, plot_left, plot_right),
    )


def _y_tick_values(top_value: int) -> list[int]:
    if top_value <= 2:
        return list(range(top_value + 1))
    if top_value % 4 == 0 or top_value in (5, 50, 500):
        step = top_value // 4 if top_value % 4 == 0 else top_value // 5
    else:
        step = top_value // 2
    return list(range(0, top_value + 1, max(step, 1)))
