"""What every vector-store engine reports the same way: point ids and the vectors of records."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt


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
