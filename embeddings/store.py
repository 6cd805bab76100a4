"""The vector store: a Qdrant server, or embedded in the process (Qdrant Edge by default, see
``embeddings.edge_store``; qdrant-client's local mode on request).

``open_vector_store`` picks one from the settings; every kind implements ``narrwatch.ports.VectorStore``
and passes the same contract tests (tests/embeddings/test_vector_store.py).

Local mode keeps everything in one process: qdrant-client refuses a second client on the same folder
with a ``RuntimeError``. narrwatch therefore holds an exclusive file lock next to the folder for the
whole life of the client; a second process waits up to ``qdrant_lock_timeout_s`` and then fails with
an error that says who holds it. Inside one process every opener of the same folder shares one
client (reference-counted), so two contexts in one process do not lock each other out.

Every write passes ``wait=True``: when ``upsert`` or ``delete`` returns, Qdrant has applied it, so
the caller may mark SQL rows as synced. Collections are created with cosine distance; the caller
names them per model and dimension (see ``narrwatch.embeddings.collections.collection_for``), and an alias can
point at the collection in use.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from narrwatch.embeddings.folder_lock import SharedFolders, lock_path
from narrwatch.embeddings.points import canonical_id, vectors_of
from narrwatch.embeddings.store_errors import VectorStoreBusy, VectorStoreError
from narrwatch.ports import Hit, SearchFilter, VectorPoint, VectorStore

if TYPE_CHECKING:
    import numpy.typing as npt
    from qdrant_client import QdrantClient
    from qdrant_client.http import models as qmodels

log = logging.getLogger(__name__)

#: Points per upsert/delete/retrieve request: large enough to amortise a round trip, small enough
#: that one request stays well under the server's payload limit (32 MiB by default).
WRITE_BATCH = 512
#: Page size when scrolling ids.
SCROLL_PAGE = 2048
#: The payload field ``SearchFilter``'s published range applies to (Unix seconds, float).
PUBLISHED_FIELD = "published_ts"

#: Payload fields indexed on a server (local mode ignores payload indexes and warns about them).
_PAYLOAD_INDEXES = {
    "article_id": "integer",
    PUBLISHED_FIELD: "float",
    "language": "keyword",
    "outlet": "keyword",
    "country": "keyword",
}


class _Secret(Protocol):
    def get_secret_value(self) -> str: ...


class StoreSettings(Protocol):
    """What opening a store needs; the application's settings object provides it."""

    @property
    def qdrant_url(self) -> str | None: ...
    @property
    def qdrant_api_key(self) -> _Secret | None: ...
    @property
    def vector_engine(self) -> str: ...
    @property
    def qdrant_path(self) -> Path | None: ...
    @property
    def data_dir(self) -> Path: ...
    @property
    def resolved_qdrant_path(self) -> Path | str: ...
    @property
    def qdrant_lock_timeout_s(self) -> float: ...


def timestamp(value: dt.datetime) -> float:
    """The payload's numeric form of a published time (Unix seconds); refuses naive datetimes."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: published times are aware UTC")
    return value.timestamp()


class QdrantVectorStore:
    """``narrwatch.ports.VectorStore`` on a ``QdrantClient``."""

    def __init__(self, client: QdrantClient, *, where: str, server: bool, on_close: Callable[[], None]):
        self._client = client
        self._server = server
        self._on_close: Callable[[], None] | None = on_close
        self.where = where  # for messages: the folder or the URL
        self._tuned: set[str] = set()

    # --- collections and aliases ------------------------------------------------------------

    def ensure_collection(self, name: str, dimension: int) -> None:
        from qdrant_client.http import models as qm

        client = self._live()
        if client.collection_exists(name):
            existing = self.collection_dimension(name)
            if existing != dimension:
                raise VectorStoreError(
                    f"Qdrant collection {name!r} at {self.where} holds {existing}-dimensional vectors, "
                    f"not {dimension}: it belongs to another model"
                )
            return
        try:
            client.create_collection(
                name, vectors_config=qm.VectorParams(size=dimension, distance=qm.Distance.COSINE)
            )
        except Exception:
            # A concurrent creator (server mode) may have won; accept only the same shape.
            if not client.collection_exists(name) or self.collection_dimension(name) != dimension:
                raise
        if self._server:
            for field_name, schema in _PAYLOAD_INDEXES.items():
                client.create_payload_index(
                    name, field_name, field_schema=qm.PayloadSchemaType(schema), wait=True
                )

    def collection_dimension(self, name: str) -> int | None:
        client = self._live()
        if not client.collection_exists(name):
            return None
        vectors = client.get_collection(name).config.params.vectors
        if vectors is None or isinstance(vectors, dict):
            raise VectorStoreError(f"Qdrant collection {name!r} at {self.where} was not made by narrwatch")
        return int(vectors.size)

    def drop_collection(self, name: str) -> None:
        """Delete a collection and its points (operators retiring an old model's vectors; tests)."""
        client = self._live()
        for alias, target in self.aliases().items():
            if target == name:
                from qdrant_client.http import models as qm

                client.update_collection_aliases(
                    change_aliases_operations=[
                        qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name=alias))
                    ]
                )
        if client.collection_exists(name):
            client.delete_collection(name)

    def collections(self) -> list[str]:
        return sorted(c.name for c in self._live().get_collections().collections)

    def aliases(self) -> dict[str, str]:
        """Alias name -> collection name."""
        return {a.alias_name: a.collection_name for a in self._live().get_aliases().aliases}

    def set_alias(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` (created or moved in one request)."""
        from qdrant_client.http import models as qm

        current = self.aliases().get(alias)
        if current == collection:
            return
        operations: list[Any] = []
        if current is not None:
            operations.append(qm.DeleteAliasOperation(delete_alias=qm.DeleteAlias(alias_name=alias)))
        operations.append(
            qm.CreateAliasOperation(create_alias=qm.CreateAlias(collection_name=collection, alias_name=alias))
        )
        self._live().update_collection_aliases(change_aliases_operations=operations)

    # --- points -----------------------------------------------------------------------------

    def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None:
        from qdrant_client.http import models as qm

        client = self._live()
        self._tune_local_writes(collection)
        for start in range(0, len(points), WRITE_BATCH):
            chunk = points[start : start + WRITE_BATCH]
            vectors = np.asarray([p.vector for p in chunk], dtype=np.float32)
            client.upsert(
                collection,
                points=qm.Batch(
                    ids=[canonical_id(p.id) for p in chunk],
                    vectors=vectors.tolist(),
                    payloads=[p.payload for p in chunk],
                ),
                wait=True,
            )

    def retrieve_vectors(self, collection: str, ids: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
        client = self._live()
        if not ids or not client.collection_exists(collection):
            return {}
        found: dict[str, npt.NDArray[np.float32]] = {}
        wanted = [canonical_id(i) for i in ids]
        for start in range(0, len(wanted), WRITE_BATCH):
            found.update(
                vectors_of(
                    client.retrieve(
                        collection, wanted[start : start + WRITE_BATCH], with_payload=False, with_vectors=True
                    )
                )
            )
        return found

    def search(
        self,
        collection: str,
        vector: npt.NDArray[np.float32],
        limit: int,
        flt: SearchFilter | None = None,
        *,
        with_payload: bool = True,
    ) -> list[Hit]:
        client = self._live()
        if limit <= 0 or not client.collection_exists(collection):
            return []
        query_filter = build_filter(flt)
        if query_filter is _MATCHES_NOTHING:
            return []
        response = client.query_points(
            collection,
            query=np.asarray(vector, dtype=np.float32).ravel().tolist(),
            query_filter=query_filter,
            limit=limit,
            with_payload=with_payload,
        )
        return [
            Hit(id=canonical_id(p.id), score=float(p.score), payload=dict(p.payload or {}))
            for p in response.points
        ]

    def iter_ids(self, collection: str) -> Iterator[str]:
        client = self._live()
        if not client.collection_exists(collection):
            return
        offset: Any = None
        while True:
            records, offset = client.scroll(
                collection, limit=SCROLL_PAGE, offset=offset, with_payload=False, with_vectors=False
            )
            for record in records:
                yield canonical_id(record.id)
            if offset is None:
                return

    def delete(self, collection: str, ids: Sequence[str]) -> None:
        from qdrant_client.http import models as qm

        client = self._live()
        if not ids or not client.collection_exists(collection):
            return
        wanted: list[Any] = [canonical_id(i) for i in ids]
        self._tune_local_writes(collection)
        for start in range(0, len(wanted), WRITE_BATCH):
            client.delete(
                collection,
                points_selector=qm.PointIdsList(points=wanted[start : start + WRITE_BATCH]),
                wait=True,
            )

    def count(self, collection: str) -> int:
        client = self._live()
        if not client.collection_exists(collection):
            return 0
        return int(client.count(collection, exact=True).count)

    def close(self) -> None:
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()

    def _tune_local_writes(self, collection: str) -> None:
        """Local mode: let the collection's SQLite file use WAL with synchronous=NORMAL.

        qdrant-client's local mode commits every point on its own, and with SQLite's defaults each
        commit waits for fsync: 2,000 points took 1.8 s, 1.3 s of it in commits, on CPU the encoder
        needs. In WAL mode with synchronous=NORMAL a commit survives a killed process (the crash
        test kills one) but not a power cut, which may drop the last points before the marks in SQL;
        ``narrwatch vectors reconcile`` finds and restores those. The client keeps its SQLite
        connection in private attributes; if they change, writes just stay at the default pace.
        """
        if self._server or collection in self._tuned:
            return
        self._tuned.add(collection)
        local = getattr(self._client, "_client", None)
        held = getattr(local, "collections", {}).get(collection) if local is not None else None
        connection = getattr(getattr(held, "storage", None), "storage", None)
        if isinstance(connection, sqlite3.Connection):
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")

    def _live(self) -> QdrantClient:
        if self._on_close is None:
            raise VectorStoreError(f"the vector store at {self.where} is closed")
        return self._client


#: Sentinel: a filter that no point can pass (an empty id or language list).
_MATCHES_NOTHING: Any = object()


def build_filter(flt: SearchFilter | None) -> qmodels.Filter | None:
    """Qdrant's filter for a ``SearchFilter``: published in [from, to), article ids, languages."""
    if flt is None:
        return None
    from qdrant_client.http import models as qm

    must: list[Any] = []
    if flt.published_from is not None or flt.published_to is not None:
        must.append(
            qm.FieldCondition(
                key=PUBLISHED_FIELD,
                range=qm.Range(
                    gte=timestamp(flt.published_from) if flt.published_from is not None else None,
                    lt=timestamp(flt.published_to) if flt.published_to is not None else None,
                ),
            )
        )
    if flt.article_ids is not None:
        if not flt.article_ids:
            return _MATCHES_NOTHING
        must.append(
            qm.FieldCondition(key="article_id", match=qm.MatchAny(any=[int(i) for i in flt.article_ids]))
        )
    if flt.languages is not None:
        if not flt.languages:
            return _MATCHES_NOTHING
        must.append(qm.FieldCondition(key="language", match=qm.MatchAny(any=[str(x) for x in flt.languages])))
    return qm.Filter(must=must) if must else None


# --- opening ------------------------------------------------------------------------------------

_LOCAL: SharedFolders[QdrantClient] = SharedFolders()


def open_vector_store(settings: StoreSettings) -> VectorStore:
    """The configured store: a server when ``qdrant_url`` is set, else the embedded engine.

    The embedded engine (``vector_engine``) is Qdrant Edge by default, in ``<data_dir>/vectors``,
    or qdrant-client's local mode in ``<data_dir>/qdrant``; ``qdrant_path`` overrides either folder
    and ``:memory:`` gives a throw-away store (tests).
    """
    if settings.qdrant_url:
        return _open_server(settings)
    if settings.vector_engine == "edge":
        from narrwatch.embeddings.edge_store import open_edge_store, open_scratch_edge_store

        if settings.qdrant_path is not None and str(settings.qdrant_path) == ":memory:":
            return open_scratch_edge_store()
        folder = settings.qdrant_path if settings.qdrant_path is not None else settings.data_dir / "vectors"
        _refuse_local_mode_folder(folder)
        return open_edge_store(folder, settings.qdrant_lock_timeout_s)
    location = str(settings.resolved_qdrant_path)
    if location == ":memory:":
        from qdrant_client import QdrantClient

        client = QdrantClient(location=":memory:")
        return QdrantVectorStore(client, where=":memory:", server=False, on_close=client.close)
    return _open_local(Path(location).resolve(), settings.qdrant_lock_timeout_s)


def _refuse_local_mode_folder(folder: Path) -> None:
    """A folder written by qdrant-client's local mode cannot be read by Qdrant Edge."""
    if (folder / "meta.json").exists() and not (folder / "manifest.json").exists():
        raise VectorStoreError(
            f"{folder} holds qdrant-client local-mode data, which the embedded engine 'edge' cannot read. "
            "Either set NARRWATCH_VECTOR_ENGINE=local, or point NARRWATCH_QDRANT_PATH at a new folder and "
            "rebuild it from SQL with `narrwatch vectors reconcile` then `narrwatch embed`."
        )


def _open_server(settings: StoreSettings) -> QdrantVectorStore:
    from qdrant_client import QdrantClient

    url = settings.qdrant_url or ""
    api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
    # The client's own version check runs in a background thread and warns from wherever; the
    # probe below checks the same thing in line, with an error that names the setting.
    client = QdrantClient(url=url, api_key=api_key, timeout=60, check_compatibility=False)
    try:
        server_version = client.info().version
    except Exception as exc:
        client.close()
        raise VectorStoreError(
            f"Qdrant server at NARRWATCH_QDRANT_URL={url} does not answer: {type(exc).__name__}: {exc}"
        ) from exc
    _warn_if_incompatible(server_version, url)
    return QdrantVectorStore(client, where=url, server=True, on_close=client.close)


def _warn_if_incompatible(server_version: str, url: str) -> None:
    """qdrant-client supports servers of the same major version within one minor version."""
    from importlib.metadata import version

    client_version = version("qdrant-client")
    try:
        server = [int(part) for part in server_version.split(".")[:2]]
        client = [int(part) for part in client_version.split(".")[:2]]
    except ValueError:
        log.warning("Qdrant server at %s reports an unparsable version %r", url, server_version)
        return
    if server[0] != client[0] or abs(server[1] - client[1]) > 1:
        log.warning(
            "Qdrant server at %s runs %s, qdrant-client is %s: versions more than one minor apart "
            "may not work together",
            url,
            server_version,
            client_version,
        )


def _open_local(folder: Path, timeout_s: float) -> QdrantVectorStore:
    def open_client(path: Path) -> QdrantClient:
        from qdrant_client import QdrantClient

        try:
            return QdrantClient(path=str(path))
        except RuntimeError as exc:
            raise VectorStoreBusy(
                f"Qdrant local folder {path} is open in a process that does not take narrwatch's lock: {exc}"
            ) from exc

    client, release = _LOCAL.acquire(
        folder,
        timeout_s,
        open_handle=open_client,
        close_handle=lambda opened: opened.close(),
        hint="Local mode allows one process at a time (NARRWATCH_QDRANT_LOCK_TIMEOUT_S): run the steps one "
        "after another, or set NARRWATCH_QDRANT_URL to use a Qdrant server.",
    )
    return QdrantVectorStore(client, where=str(folder), server=False, on_close=release)


__all__ = ["QdrantVectorStore", "VectorStoreBusy", "VectorStoreError", "lock_path", "open_vector_store"]
