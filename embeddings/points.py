"""What every vector-store engine reports the same way (point ids, the vectors of records), and the
vectors SQL keeps beside each passage."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from narrwatch.ports import VectorStore


def canonical_id(point_id: object) -> str:
    """Point UUIDs in their canonical lowercase hyphenated form, as every engine reports them."""
    return str(uuid.UUID(str(point_id)))


def vectors_of(records: Iterable[Any]) -> dict[str, npt.NDArray[np.float32]]:
    """Canonical point id -> vector for retrieved records that carry a plain (unnamed) vector."""
    return {
        canonical_id(record.id): np.asarray(record.vector, dtype=np.float32)
        for record in records
        if isinstance(record.vector, list)
    }


def vector_bytes(vector: npt.ArrayLike) -> bytes:
    """A vector as SQL keeps it: unit length (as the store's cosine collections keep it), float32
    little-endian."""
    unit = np.asarray(vector, dtype=np.float64).ravel()
    norm = float(np.linalg.norm(unit))
    return (unit / norm if norm > 0 else unit).astype("<f4").tobytes()


def vector_from_bytes(data: bytes) -> npt.NDArray[np.float32]:
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


class PassageRow(Protocol):
    point_id: str
    vector: bytes | None


def passage_vectors_of(
    store: VectorStore, collection: str, rows: Iterable[PassageRow]
) -> dict[str, npt.NDArray[np.float32]]:
    """Canonical point id -> vector of passage rows: the vector SQL keeps, else (rows written before
    SQL kept them, or a refreshed text) the store's point; rows with neither are left out. The store
    is asked only for those rows, so a step whose passages all carry vectors never opens it."""
    found: dict[str, npt.NDArray[np.float32]] = {}
    missing: list[str] = []
    for row in rows:
        if row.vector is not None:
            found[canonical_id(row.point_id)] = vector_from_bytes(row.vector)
        else:
            missing.append(row.point_id)
    if missing:
        found.update({canonical_id(k): v for k, v in store.retrieve_vectors(collection, missing).items()})
    return found
