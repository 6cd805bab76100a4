"""Work claims: N workers (Airflow tasks, processes, machines) share one backlog without repeats.

A worker claims a batch of articles before working on them and releases the claims in the same
transaction that commits the result (marks, match states). Claims are rows of ``work_claims`` with an
expiry (a lease), so they outlive the claiming transaction: encoding a batch takes seconds, and no
transaction stays open meanwhile.

- PostgreSQL: the candidates are selected ``FOR UPDATE SKIP LOCKED``, so two claimers running at the
  same instant take disjoint batches instead of waiting on each other.
- SQLite (one writer at a time): two claimers may select the same candidates; the insert takes over a
  claim only when it expired, and each claimer keeps just the rows that carry its own name.

A claim whose lease ran out, or whose worker was a process on this host that no longer exists (a
killed run being retried), is taken over. Lease times are wall-clock times, not the step's logical
``now``: they are about who is working, not about the result.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, delete, exists, select
from sqlalchemy.orm import Session

from narrwatch.db.models import Article, WorkClaim
from narrwatch.db.session import dialect_insert


def _new_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Claimer:
    """One worker's claims of one kind of work (``embed``, ``match``) in one collection."""

    kind: str
    collection: str
    lease: dt.timedelta
    worker: str = field(default_factory=_new_worker_name)

    def claim(self, session: Session, candidates: Select[Any], size: int) -> list[int]:
        """Claim up to ``size`` article ids of ``candidates`` (a select of ``Article.id``), lowest first.

        Commit the session soon after: on PostgreSQL the candidate rows stay locked until then.
        """
        wall = dt.datetime.now(dt.UTC)
        self._free_dead_workers(session, wall)
        live = exists().where(
            WorkClaim.kind == self.kind,
            WorkClaim.collection == self.collection,
            WorkClaim.article_id == Article.id,
            WorkClaim.expires_at > wall,
        )
        query = candidates.where(~live).order_by(Article.id).limit(size)
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=Article)
        while True:
            ids = list(session.scalars(query))
            if not ids:
                return []
            mine = self._take(session, ids, wall)
            if mine:
                return mine
            # Another worker claimed every one of them first (SQLite): they are live claims now,
            # so the next select passes over them.

    def _take(self, session: Session, ids: list[int], wall: dt.datetime) -> list[int]:
        insert = dialect_insert(session, WorkClaim).values(
            [
                {
                    "kind": self.kind,
                    "collection": self.collection,
                    "article_id": article_id,
                    "worker": self.worker,
                    "expires_at": wall + self.lease,
                }
                for article_id in ids
            ]
        )
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["kind", "collection", "article_id"],
                set_={"worker": insert.excluded.worker, "expires_at": insert.excluded.expires_at},
                where=WorkClaim.expires_at <= wall,
            )
        )
        return sorted(
            session.scalars(select(WorkClaim.article_id).where(self._mine(), WorkClaim.article_id.in_(ids)))
        )

    def release(self, session: Session, article_ids: Sequence[int]) -> None:
        """Drop this worker's claims on ``article_ids`` (call in the transaction committing the work)."""
        for start in range(0, len(article_ids), 1000):
            session.execute(
                delete(WorkClaim)
                .where(self._mine(), WorkClaim.article_id.in_(article_ids[start : start + 1000]))
                .execution_options(synchronize_session=False)
            )

    def release_all(self, session: Session) -> None:
        """Drop every claim this worker still holds (a run ending early)."""
        session.execute(delete(WorkClaim).where(self._mine()).execution_options(synchronize_session=False))

    def _mine(self) -> Any:
        return and_(
            WorkClaim.kind == self.kind,
            WorkClaim.collection == self.collection,
            WorkClaim.worker == self.worker,
        )

    def _free_dead_workers(self, session: Session, wall: dt.datetime) -> None:
        """Remove live claims of workers that were processes on this host and are gone."""
        holders = session.scalars(
            select(WorkClaim.worker)
            .where(
                WorkClaim.kind == self.kind,
                WorkClaim.collection == self.collection,
                WorkClaim.expires_at > wall,
                WorkClaim.worker != self.worker,
            )
            .distinct()
        ).all()
        dead = [holder for holder in holders if _is_dead_local_process(holder)]
        if dead:
            session.execute(
                delete(WorkClaim)
                .where(
                    WorkClaim.kind == self.kind,
                    WorkClaim.collection == self.collection,
                    WorkClaim.worker.in_(dead),
                )
                .execution_options(synchronize_session=False)
            )


def _is_dead_local_process(worker: str) -> bool:
    host, _, rest = worker.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by another user
        return False
    return False
