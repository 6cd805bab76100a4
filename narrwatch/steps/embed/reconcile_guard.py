"""How much `vectors reconcile` may delete on its own.

Orphan points are points no SQL passage claims. A few come from a crash between a Qdrant write and
the SQL commit; a large share means SQL is not the store those points belong to (a wrong
NARRWATCH_DATABASE_URL, an empty or restored database), and deleting them would throw away every
vector. So a repair deletes at most a small share unless the operator says ``--force``.
"""

from __future__ import annotations

#: Largest share of a collection's points a repair deletes without --force.
MAX_ORPHAN_SHARE = 0.05
#: Up to this many orphans are always allowed: a crash leaves a batch or two, whatever the size.
ALWAYS_ALLOWED_ORPHANS = 10


class ReconcileRefused(RuntimeError):
    """A repair found too many orphan points and deleted none of them (see the report)."""


def orphan_deletion_refusal(collection: str, orphans: int, points: int, force: bool) -> str | None:
    """Why deleting ``orphans`` of ``points`` must wait for --force, or None when it may go ahead."""
    if force or orphans <= ALWAYS_ALLOWED_ORPHANS or orphans <= MAX_ORPHAN_SHARE * points:
        return None
    return (
        f"{collection}: {orphans} of {points} points ({orphans / max(points, 1):.0%}) have no passage "
        f"in SQL; more than {MAX_ORPHAN_SHARE:.0%} looks like the wrong database, so none were deleted "
        "(check NARRWATCH_DATABASE_URL, then `narrwatch vectors reconcile --repair --force`)"
    )
