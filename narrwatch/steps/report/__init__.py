"""The daily report: what is rising, why, and where, as HTML, Markdown and JSON.

``render_report(ctx, day, now, out_dir=None)`` reads the day's rows from SQL into one plain data
structure (``collect``), then writes ``report.html``, ``report.md`` and ``report.json`` from it
(``render``) and refreshes the index of past reports.
"""

from narrwatch.steps.report.render import ReportResult, render_report

__all__ = ["ReportResult", "render_report"]
