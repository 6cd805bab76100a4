"""Entries and date strings narrwatch reads from real feed captures, next to feedparser alone.

    .venv/bin/python bench/feed_captures.py [FOLDER]   (default: tests/feeds/real_captures)

Prints one line per repository folder and the totals: entries feedparser finds vs entries narrwatch
keeps (+ dropped with a reason), and the share of date strings carrying a date that each reads.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from narrwatch.steps.poll.coverage import Coverage, measure

DEFAULT = Path(__file__).resolve().parents[1] / "tests" / "feeds" / "real_captures"


def line(name: str, found: Coverage) -> str:
    return (
        f"{name:32} {found.documents:3} docs  entries fp {found.feedparser_entries:4} / nw "
        f"{found.narrwatch_entries:4} (+{found.narrwatch_dropped} dropped)  dates {found.date_strings:4}: "
        f"fp {found.share(found.read_by_feedparser):6.1%}  nw {found.share(found.read_by_narrwatch):6.1%}"
    )


def main(folder: Path) -> int:
    started = time.perf_counter()
    total = Coverage()
    for repo in sorted(path for path in folder.iterdir() if path.is_dir()):
        part = Coverage()
        for path in sorted(repo.iterdir()):
            if path.is_file():
                part.add(measure(path.read_bytes()))
        total.add(part)
        print(line(repo.name, part))
    print(line("total", total))
    print(f"({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT))
