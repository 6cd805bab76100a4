"""A lock held for one transaction, so that two runs of one step take turns instead of colliding.

PostgreSQL: a transaction-level advisory lock on a key derived from the name. SQLite: the database's
write lock, taken by a write that changes nothing as the transaction's first statement (WAL lets
readers go on; ``busy_timeout`` makes the second writer wait instead of failing). Either way the
lock ends with the transaction, also when the process is killed.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.orm import Session


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``name`` (PostgreSQL advisory locks take a bigint)."""
    digest = hashlib.sha256(f"narrwatch:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def hold_transaction_lock(session: Session, name: str) -> None:
    """Wait for and hold the lock ``name`` until ``session``'s transaction ends.

    Call it before the transaction reads anything: on SQLite a transaction that has read cannot
    take the write lock once another writer has committed.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(name)})
    elif dialect == "sqlite":
        # One database-wide write lock: every name shares it, which only serialises more.
        session.execute(text("UPDATE pipeline_runs SET status = status WHERE 1 = 0"))
    else:
        raise RuntimeError(f"unsupported database backend {dialect!r}: use SQLite or PostgreSQL")
