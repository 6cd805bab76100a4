"""The vector store: Qdrant in local mode (a folder in the data dir) or a Qdrant server.

Local mode keeps everything in one process: qdrant-client refuses a second client on the same folder
with a ``RuntimeError``. narrwatch therefore holds an exclusive file lock next to the folder for the
whole life of the client; a second process waits up to ``qdrant_lock_timeout_s`` and then fails with
an error that says who holds it. Inside one process every opener of the same folder shares one
client (reference-counted), so two contexts in one process do not lock each other out.

Every write passes ``wait=True``: when ``upsert`` or ``delete`` returns, Qdrant has applied it, so
the caller may mark SQL rows as synced. Collections are created with cosine distance; the caller
names them per model and dimension (see ``narrwatch.steps.embed.embed.collection_for``), and an alias can
point at the collection in use.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from narrwatch.ports import Hit, SearchFilter, VectorPoint

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
    def resolved_qdrant_path(self) -> Path | str: ...
    @property
    def qdrant_lock_timeout_s(self) -> float: ...


class VectorStoreError(RuntimeError):
    """The vector store cannot be used as configured; the message says why and what to do."""


class VectorStoreBusy(VectorStoreError):
    """Another process holds Qdrant's local folder."""


def canonical_id(point_id: str | uuid.UUID | int) -> str:
    """Qdrant reports UUIDs in their canonical lowercase hyphenated form; compare in that form."""
    return str(uuid.UUID(str(point_id)))


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
            records = client.retrieve(
                collection, wanted[start : start + WRITE_BATCH], with_payload=False, with_vectors=True
            )
            for record in records:
                if isinstance(record.vector, list):
                    found[canonical_id(record.id)] = np.asarray(record.vector, dtype=np.float32)
        return found

    def search(
        self,
        collection: str,
        vector: npt.NDArray[np.float32],
        limit: int,
        flt: SearchFilter | None = None,
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
            with_payload=True,
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


class _SharedLocal:
    """One local-mode client per folder per process, with the file lock that guards the folder."""

    def __init__(self, client: QdrantClient, lock_fd: int) -> None:
        self.client = client
        self.lock_fd = lock_fd
        self.users = 0


_LOCAL: dict[str, _SharedLocal] = {}
_LOCAL_GUARD = threading.Lock()


def open_vector_store(settings: StoreSettings) -> QdrantVectorStore:
    """The configured store: a server when ``qdrant_url`` is set, else local mode (or ``:memory:``)."""
    if settings.qdrant_url:
        return _open_server(settings)
    location = settings.resolved_qdrant_path
    if location == ":memory:":
        from qdrant_client import QdrantClient

        client = QdrantClient(location=":memory:")
        return QdrantVectorStore(client, where=":memory:", server=False, on_close=client.close)
    return _open_local(Path(location).resolve(), settings.qdrant_lock_timeout_s)


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
    key = str(folder)
    with _LOCAL_GUARD:
        shared = _LOCAL.get(key)
        if shared is None:
            lock_fd = _acquire_folder_lock(folder, timeout_s)
            try:
                from qdrant_client import QdrantClient

                client = QdrantClient(path=key)
            except RuntimeError as exc:
                _release_folder_lock(lock_fd)
                raise VectorStoreBusy(
                    f"Qdrant local folder {folder} is open in a process that does not take narrwatch's "
                    f"lock: {exc}"
                ) from exc
            except BaseException:
                _release_folder_lock(lock_fd)
                raise
            shared = _SharedLocal(client, lock_fd)
            _LOCAL[key] = shared
        shared.users += 1

    def release() -> None:
        with _LOCAL_GUARD:
            shared.users -= 1
            if shared.users == 0:
                del _LOCAL[key]
                try:
                    shared.client.close()
                finally:
                    _release_folder_lock(shared.lock_fd)

    return QdrantVectorStore(shared.client, where=key, server=False, on_close=release)


def lock_path(folder: Path) -> Path:
    """The lock file guarding a local Qdrant folder (beside it, so the folder stays Qdrant's own)."""
    return folder.with_name(folder.name + ".lock")


def _acquire_folder_lock(folder: Path, timeout_s: float) -> int:
    import fcntl

    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout_s
    announced = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            holder = _read_holder(fd)
            if time.monotonic() >= deadline:
                os.close(fd)
                raise VectorStoreBusy(
                    f"Qdrant local folder {folder} is in use by another process ({holder}) and stayed "
                    f"busy for {timeout_s:.0f} s (NARRWATCH_QDRANT_LOCK_TIMEOUT_S). Local mode allows one "
                    "process at a time: run the steps one after another, or set NARRWATCH_QDRANT_URL to "
                    "use a Qdrant server."
                ) from None
            if not announced:
                log.warning("waiting for Qdrant local folder %s, held by %s", folder, holder)
                announced = True
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
    return fd


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 100, 0).decode(errors="replace").strip() or "pid unknown"
    except OSError:
        return "pid unknown"


def _release_folder_lock(fd: int) -> None:
    import fcntl

    try:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
