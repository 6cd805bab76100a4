"""The seams between the use cases and the heavy adapters (encoder, vector store).

Use cases depend on these protocols; ``embeddings`` provides the real implementations and the tests
may substitute small fakes. Nothing here imports numpy-heavy or I/O libraries at run time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]
else:
    Vectors = Any


class Encoder(Protocol):
    """Turns texts into L2-normalised float32 vectors of one model."""

    @property
    def model_name(self) -> str: ...  # name or path the user configured

    @property
    def backend(self) -> str: ...  # torch | onnx | onnx-int8

    @property
    def fingerprint(self) -> str: ...  # sha256 over the model's files (first 16 hex chars is enough)

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...  # the model's window (max_seq_length)

    def count_tokens(self, text: str) -> int: ...

    def encode_passages(self, texts: Sequence[str]) -> Vectors: ...

    def encode_queries(self, texts: Sequence[str]) -> Vectors: ...


@dataclass(frozen=True)
class VectorPoint:
    id: str  # uuid string
    vector: Vectors
    payload: dict[str, Any]


@dataclass(frozen=True)
class SearchFilter:
    published_from: dt.datetime | None = None
    published_to: dt.datetime | None = None
    article_ids: Sequence[int] | None = None
    languages: Sequence[str] | None = None


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


class VectorStore(Protocol):
    """A Qdrant server or an embedded engine (Qdrant Edge, qdrant-client's local mode).

    Every write is applied when the call returns. One collection per model; aliases name the one in
    use. The same contract tests run against every implementation.
    """

    where: str  # the folder or the URL, for messages

    def ensure_collection(self, name: str, dimension: int) -> None: ...

    def collection_dimension(self, name: str) -> int | None: ...

    def collections(self) -> list[str]: ...

    def drop_collection(self, name: str) -> None: ...

    def aliases(self) -> dict[str, str]: ...

    def set_alias(self, alias: str, collection: str) -> None: ...

    def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None: ...

    def retrieve_vectors(self, collection: str, ids: Sequence[str]) -> dict[str, Vectors]: ...

    def search(
        self,
        collection: str,
        vector: Vectors,
        limit: int,
        flt: SearchFilter | None = None,
        *,
        with_payload: bool = True,  # False: hits carry id and score only (large result sets)
    ) -> list[Hit]: ...

    def iter_ids(self, collection: str) -> Iterator[str]: ...

    def delete(self, collection: str, ids: Sequence[str]) -> None: ...

    def count(self, collection: str) -> int: ...

    def close(self) -> None: ...
