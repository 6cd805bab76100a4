"""Seed versions: a ``narrative_versions`` row per distinct content of each seed."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from narrwatch.context import AppContext
from narrwatch.db.models import (
    NarrativeVersion,
)
from narrwatch.steps.match.seeds import NarrativeSet
from narrwatch.steps.match.seedstore import load_seeds

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass
class SyncReport:
    seeds: int = 0
    created: list[str] = field(default_factory=list)  # "seed-id@version"
    reactivated: list[str] = field(default_factory=list)
    unchanged: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sync_narratives(ctx: AppContext, now: dt.datetime, narratives: NarrativeSet | None = None) -> SyncReport:
    """Record a new version for every seed whose content changed since its newest version.

    A seed edited back to an earlier content gets that content's row back, renumbered to the next
    version (the content-hash key is unique): its stored matches stay valid and the version numbers
    still only increase. Raises ``NarrativeError`` (naming file and field) if a seed file is bad.
    """
    if narratives is None:  # an empty set (every seed file bad) is falsy but given
        narratives = load_seeds(ctx, now)
    for attempt in range(3):
        try:
            return _sync_once(ctx, now, narratives)
        except IntegrityError:
            # Another process recorded the same version first: read its result and try again.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _sync_once(ctx: AppContext, now: dt.datetime, narratives: NarrativeSet) -> SyncReport:
    report = SyncReport(seeds=len(narratives))
    with ctx.transaction() as session:
        rows = session.scalars(
            select(NarrativeVersion).where(NarrativeVersion.narrative_id.in_(narratives.ids))
        ).all()
        by_seed: dict[str, list[NarrativeVersion]] = defaultdict(list)
        for row in rows:
            by_seed[row.narrative_id].append(row)
        for seed in narratives:
            content_hash = narratives.content_hash(seed.id)
            versions = by_seed.get(seed.id, [])
            newest = max(versions, key=lambda row: row.version, default=None)
            if newest is not None and newest.content_hash == content_hash:
                report.unchanged += 1
                continue
            next_version = newest.version + 1 if newest is not None else 1
            earlier = next((row for row in versions if row.content_hash == content_hash), None)
            if earlier is not None:
                earlier.version = next_version
                report.reactivated.append(f"{seed.id}@{next_version}")
                continue
            session.add(
                NarrativeVersion(
                    narrative_id=seed.id,
                    version=next_version,
                    content_hash=content_hash,
                    title=seed.title,
                    parent_id=seed.parent,
                    status=seed.status,
                    definition=narratives.matching_definition(seed.id),
                    source_file=str(narratives.path_of(seed.id)),
                    created_at=now,
                )
            )
            report.created.append(f"{seed.id}@{next_version}")
    return report


def current_versions(session: Session, narratives: NarrativeSet) -> dict[str, NarrativeVersion]:
    """The stored version row of each seed's content on disk (after ``sync_narratives``)."""
    rows = session.scalars(
        select(NarrativeVersion).where(NarrativeVersion.narrative_id.in_(narratives.ids))
    ).all()
    by_hash = {(row.narrative_id, row.content_hash): row for row in rows}
    found = {}
    for seed_id in narratives.ids:
        row = by_hash.get((seed_id, narratives.content_hash(seed_id)))
        if row is not None:
            found[seed_id] = row
    return found
