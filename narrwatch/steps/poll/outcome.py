"""What a poll's summary means for the exit code of `narrwatch poll` (for cron and monitoring)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

POLL_OK = 0
POLL_ALL_FAILED = 1  # feeds were polled and none of them answered usably
POLL_UNKNOWN_FEED = 2  # `--feed` named a feed the catalogue does not have (a typo)


def poll_exit_code(summary: Mapping[str, Any]) -> tuple[int, list[str]]:
    """(exit code, lines for stderr) of one poll summary; warnings alone keep the code 0."""
    lines: list[str] = []
    if summary.get("catalogue_warning"):
        lines.append(f"warning: {summary['catalogue_warning']}")
    unknown = list(summary.get("unknown_feed_ids") or [])
    if unknown:
        lines.append("error: no such feed: " + ", ".join(unknown) + " (see `narrwatch feeds list`)")
        return POLL_UNKNOWN_FEED, lines
    polled, failed = summary.get("feeds_polled", 0), summary.get("feeds_failed", 0)
    if polled and failed >= polled:
        lines.append(f"error: every feed polled failed ({failed} of {polled}); see `narrwatch feeds health`")
        return POLL_ALL_FAILED, lines
    return POLL_OK, lines
