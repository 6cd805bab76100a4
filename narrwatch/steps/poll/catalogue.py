"""Which feeds a poll uses when feeds.yaml is broken: the last good catalogue, synced to SQL.

feeds.yaml is synced into the ``feeds`` table before each poll. When the file cannot be used (a
typo, a bad schedule, invalid YAML) the table still holds the catalogue of the last good sync, so
polling goes on with it and the summary says so, naming the file and its first problem.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from narrwatch.context import AppContext
from narrwatch.db.models import Feed
from narrwatch.steps.poll.registry import FeedsFileError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogueState:
    """The outcome of syncing feeds.yaml before a poll."""

    synced: dict[str, Any] | None  # the sync summary, or None when the last good catalogue is kept
    warning: str | None  # why the last good catalogue is in force

    def as_dict(self) -> dict[str, Any]:
        return {"catalogue_warning": self.warning} if self.warning else {}


def sync_or_keep_last_good(ctx: AppContext, now: dt.datetime) -> CatalogueState:
    """Sync feeds.yaml; when it is broken keep the stored catalogue and say so.

    Raises the file's error when there is no stored catalogue to fall back on (first run).
    """
    from narrwatch.steps.poll.sync import sync_feeds

    try:
        return CatalogueState(sync_feeds(ctx, now).as_dict(), None)
    except FeedsFileError as exc:
        with ctx.transaction() as session:
            kept = session.scalar(select(func.count()).select_from(Feed).where(Feed.in_config.is_(True))) or 0
        if not kept:
            raise
        more = f" (and {len(exc.problems) - 1} more problem(s))" if len(exc.problems) > 1 else ""
        first = exc.problems[0][:300] if exc.problems else str(exc)[:300]
        warning = (
            f"{exc.path} cannot be used, polling the last good catalogue ({kept} feeds) instead: "
            f"{first}{more}"
        )
        log.warning("%s", warning)
        return CatalogueState(None, warning)
