"""The demo's data folder: made and marked by the demo, so that only such a folder is ever wiped.

`narrwatch demo --fresh` deletes its folder first. Without a marker, a mistyped `--data-dir` (the
checkout, a home directory) would be deleted, and even a normal run would overwrite a feeds.yaml
found there. So the demo uses only a folder that is new, empty, or carries its marker file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

MARKER = ".narrwatch-demo"
MARKER_TEXT = "This folder was made by `narrwatch demo`; `narrwatch demo --fresh` may delete it.\n"


class DemoFolderError(Exception):
    """The folder is not one the demo made: nothing was written or deleted."""


def is_demo_folder(folder: Path) -> bool:
    return (folder / MARKER).is_file() or _made_before_markers(folder)


def _made_before_markers(folder: Path) -> bool:
    """A folder of a demo run from before the marker: its feeds.yaml lists demo feeds only."""
    import yaml

    feeds_file = folder / "feeds.yaml"
    if not feeds_file.is_file() or feeds_file.stat().st_size > 1_000_000:
        return False
    try:
        document = yaml.safe_load(feeds_file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return False
    feeds = document.get("feeds") if isinstance(document, dict) else None
    if not isinstance(feeds, list) or not feeds:
        return False
    return all(isinstance(feed, dict) and "demo" in (feed.get("tags") or []) for feed in feeds)


def prepare_demo_folder(folder: Path, *, fresh: bool) -> Path:
    """Make (or, with ``fresh``, remake) the demo's folder and mark it; refuse any other folder."""
    folder = folder.expanduser()
    if folder.exists() and not folder.is_dir():
        raise DemoFolderError(f"{folder} is a file, not a folder: choose another --data-dir")
    if folder.is_dir() and any(folder.iterdir()) and not is_demo_folder(folder):
        raise DemoFolderError(
            f"{folder} holds files the demo did not make (no {MARKER} marker): nothing was "
            f"{'deleted' if fresh else 'written'}; choose an empty or new --data-dir"
        )
    if fresh and folder.is_dir() and is_demo_folder(folder):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
    return folder
