"""The embedded vector store: Qdrant Edge (``qdrant-edge-py``), Qdrant's storage engine in-process.

qdrant-client's local mode scores every point in Python on each query (150 ms at 20k points,
830 ms at 100k on this machine); Qdrant Edge runs the server's own segments, payload indexes and
query planner inside the process. A filtered query (a date window, languages, article ids) is
answered from the payload indexes: only the points that pass the filter are scored, so its cost
grows with the window, not with the stored history, and the result is exact.

Layout of the folder (one process at a time, guarded by ``embeddings.folder_lock``)::

    <folder>/manifest.json           {"collections": {name: {"dimension": d, "day_language": true}},
                                      "aliases": {alias: name}}
    <folder>/collections/<name>/     one Edge shard per collection (one per model, as on a server)

The manifest is replaced atomically (write, fsync, rename). A shard folder that the manifest does
not name is a collection whose creation was interrupted before any point was written: it is
removed and made again. Every ``upsert``/``delete`` goes through the shard's write-ahead log before
it returns, so a killed process keeps what was acknowledged; like every projection here, the store
can be rebuilt from SQL (``narrwatch vectors reconcile``, then ``narrwatch embed``).

Points are written to an appendable segment whose payload indexes are mutable: filtering through
them costs about a microsecond per candidate on this machine. Once ``UNINDEXED_LIMIT`` points have
piled up there, the write that crossed the limit runs the shard's optimizers (Edge has no
background optimizer): the appendable segment becomes an immutable one with compact payload
indexes and int8 copies of its vectors, merged with others up to ``SEGMENT_POINTS``. A filtered
query scores only the points that pass: the payload indexes select them (the day-language key,
``embeddings.edge_filter``, makes a window in one language start from those points alone), their
int8 copies rank them, and the best ``RESCORED`` per result are scored again on the full vectors.
Scoring the full vectors directly read 14 MB scattered over the store per 30-day query at 1M
points: 55-68 ms median while the pages came from disk, against 9 ms with the int8 copies.
No HNSW graph is built (``m=0``): a graph over 200,000 points (m=16, ef_construct=64, no payload
links) was not finished after 12 minutes (78 s of CPU) on this busy 2-core machine, it is rebuilt as
segments merge, and the pipeline's filters pass few enough points that scoring all of them is
fast (``bench/vectors.py`` checks the results against brute force). Shards made before these
settings take them when opened, and their segments are rewritten at the next optimisation;
collections made before the day-language key (no ``day_language`` in the manifest) are searched
without it until rebuilt from SQL.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from narrwatch.embeddings.edge_filter import DAY_LANGUAGE, MATCHES_NOTHING, day_language, edge_filter
from narrwatch.embeddings.folder_lock import SharedFolders
from narrwatch.embeddings.points import canonical_id, vectors_of
from narrwatch.embeddings.store_errors import VectorStoreError
from narrwatch.ports import Hit, SearchFilter, VectorPoint

if TYPE_CHECKING:
    import numpy.typing as npt

#: Points per update request: bounds the Python lists built for one call.
WRITE_BATCH = 1024
#: Page size when scrolling ids.
SCROLL_PAGE = 4096
#: Points written since the last optimisation after which a write folds them into indexed segments.
UNINDEXED_LIMIT = 20_000
#: Points in an indexed segment beyond which the optimizers stop merging into it: without a bound
#: every fold rewrote all indexed points into one segment (quadratic work as the store grows).
SEGMENT_POINTS = 100_000
#: Candidates per requested result that the int8 ranking hands to exact rescoring.
RESCORED = 3.0
#: Searches over fewer kilobytes of vectors than this are exact in Qdrant's planner: all of them here.
EXACT_UP_TO_KB = 1 << 40
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
_MANIFEST = "manifest.json"
_COLLECTIONS = "collections"


class EdgeVectorStore:
    """``narrwatch.ports.VectorStore`` on Qdrant Edge shards in one folder."""

    def __init__(self, folder: OpenFolder, *, on_close: Callable[[], None]) -> None:
        self.where = str(folder.path)
        self._folder = folder.path
        self._shards = folder.shards
        self._guard = folder.guard
        self._on_close: Callable[[], None] | None = on_close

    # --- collections and aliases ------------------------------------------------------------

    def ensure_collection(self, name: str, dimension: int) -> None:
        from qdrant_edge import EdgeShard
        from qdrant_edge import UpdateOperation as Op

        with self._guard:
            self._live()
            existing = self.collection_dimension(name)
            if existing is not None:
                if existing != dimension:
                    raise VectorStoreError(
                        f"vector collection {name!r} at {self.where} holds {existing}-dimensional vectors, "
                        f"not {dimension}: it belongs to another model"
                    )
                return
            path = self._shard_path(name)
            if path.exists():  # creation interrupted before the manifest named it: no point was written
                shutil.rmtree(path)
            shard = EdgeShard.create(str(path), shard_config(dimension))
            for field_name, params in payload_indexes().items():
                shard.update(Op.create_field_index(field_name, params))
            shard.flush()
            self._shards[name] = shard
            manifest = self._read_manifest()
            manifest["collections"][name] = {"dimension": dimension, DAY_LANGUAGE: True}
            self._write_manifest(manifest)

    def collection_dimension(self, name: str) -> int | None:
        entry = self._read_manifest()["collections"].get(name)
        return None if entry is None else int(entry["dimension"])

    def drop_collection(self, name: str) -> None:
        """Delete a collection, its points and the aliases pointing at it."""
        with self._guard:
            self._live()
            manifest = self._read_manifest()
            manifest["aliases"] = {a: c for a, c in manifest["aliases"].items() if c != name}
            manifest["collections"].pop(name, None)
            self._write_manifest(manifest)
            shard = self._shards.pop(name, None)
            if shard is not None:
                shard.close()
            shutil.rmtree(self._shard_path(name), ignore_errors=True)

    def collections(self) -> list[str]:
        return sorted(self._read_manifest()["collections"])

    def aliases(self) -> dict[str, str]:
        """Alias name -> collection name."""
        return dict(self._read_manifest()["aliases"])

    def set_alias(self, alias: str, collection: str) -> None:
        with self._guard:
            manifest = self._read_manifest()
            if collection not in manifest["collections"]:
                raise VectorStoreError(
                    f"no vector collection {collection!r} at {self.where} for alias {alias!r}"
                )
            if manifest["aliases"].get(alias) != collection:
                manifest["aliases"][alias] = collection
                self._write_manifest(manifest)

    # --- points -----------------------------------------------------------------------------

    def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None:
        from qdrant_edge import Point
        from qdrant_edge import UpdateOperation as Op

        shard = self._shard(collection)
        if shard is None:
            raise VectorStoreError(
                f"no vector collection {collection!r} at {self.where}: ensure_collection first"
            )
        for start in range(0, len(points), WRITE_BATCH):
            chunk = points[start : start + WRITE_BATCH]
            vectors = np.asarray([p.vector for p in chunk], dtype=np.float32).tolist()
            shard.update(
                Op.upsert_points(
                    [
                        Point(canonical_id(p.id), vector, keyed_payload(p.payload))
                        for p, vector in zip(chunk, vectors, strict=True)
                    ]
                )
            )
        _fold_unindexed(shard)

    def retrieve_vectors(self, collection: str, ids: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
        shard = self._shard(collection)
        if shard is None or not ids:
            return {}
        found: dict[str, npt.NDArray[np.float32]] = {}
        wanted = [canonical_id(i) for i in ids]
        for start in range(0, len(wanted), WRITE_BATCH):
            batch = wanted[start : start + WRITE_BATCH]
            found.update(vectors_of(shard.retrieve(batch, with_payload=False, with_vector=True)))
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
        from qdrant_edge import PayloadSelector, QuantizationSearchParams, Query, QueryRequest, SearchParams

        shard = self._shard(collection)
        if shard is None or limit <= 0:
            return []
        query_filter = edge_filter(flt, keyed=self._keyed(collection))
        if query_filter is MATCHES_NOTHING:
            return []
        points = shard.query(
            QueryRequest(
                limit=limit,
                query=Query.Nearest(np.asarray(vector, dtype=np.float32).ravel().tolist()),
                filter=query_filter,
                with_payload=PayloadSelector.Exclude([DAY_LANGUAGE]) if with_payload else False,
                params=SearchParams(
                    quantization=QuantizationSearchParams(rescore=True, oversampling=RESCORED)
                ),
            )
        )
        return [
            Hit(id=canonical_id(p.id), score=float(p.score), payload=dict(p.payload or {})) for p in points
        ]

    def iter_ids(self, collection: str) -> Iterator[str]:
        from qdrant_edge import ScrollRequest

        shard = self._shard(collection)
        if shard is None:
            return
        offset: Any = None
        while True:
            records, offset = shard.scroll(
                ScrollRequest(offset=offset, limit=SCROLL_PAGE, with_payload=False, with_vector=False)
            )
            for record in records:
                yield canonical_id(record.id)
            if offset is None:
                return

    def delete(self, collection: str, ids: Sequence[str]) -> None:
        from qdrant_edge import UpdateOperation as Op

        shard = self._shard(collection)
        if shard is None or not ids:
            return
        wanted: list[Any] = [canonical_id(i) for i in ids]
        for start in range(0, len(wanted), WRITE_BATCH):
            shard.update(Op.delete_points(wanted[start : start + WRITE_BATCH]))
        _fold_unindexed(shard)

    def count(self, collection: str) -> int:
        from qdrant_edge import CountRequest

        shard = self._shard(collection)
        return 0 if shard is None else int(shard.count(CountRequest(exact=True)))

    def optimize(self, collection: str) -> None:
        """Index every point, merge segments and drop deleted points (after a bulk load; blocks)."""
        shard = self._shard(collection)
        if shard is not None:
            shard.optimize()
            shard.flush()

    def indexed_points(self, collection: str) -> int:
        """Points in immutable, indexed segments; the rest wait in the appendable segment."""
        shard = self._shard(collection)
        return 0 if shard is None else int(shard.info().indexed_vectors_count)

    def close(self) -> None:
        """Release this opener's share; the shards close with the last opener in the process."""
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close()

    # --- internals --------------------------------------------------------------------------

    def _shard(self, name: str) -> Any:
        """The open shard of a collection, or None when the collection does not exist."""
        from qdrant_edge import EdgeShard

        with self._guard:
            self._live()
            shard = self._shards.get(name)
            dimension = self.collection_dimension(name)
            if shard is None and dimension is not None:
                # The current settings replace the stored ones, so older shards get them too.
                shard = EdgeShard.load(str(self._shard_path(name)), shard_config(dimension))
                self._shards[name] = shard
            return shard

    def _keyed(self, name: str) -> bool:
        """Whether every point carries ``DAY_LANGUAGE``: collections made before it was written lack it."""
        return bool(self._read_manifest()["collections"].get(name, {}).get(DAY_LANGUAGE, False))

    def _shard_path(self, name: str) -> Path:
        if not _SAFE_NAME.match(name):
            raise VectorStoreError(f"vector collection name {name!r} is not a safe folder name")
        return self._folder / _COLLECTIONS / name

    def _read_manifest(self) -> dict[str, Any]:
        path = self._folder / _MANIFEST
        if not path.exists():
            return {"collections": {}, "aliases": {}}
        data = json.loads(path.read_text(encoding="utf-8"))
        return {"collections": dict(data.get("collections", {})), "aliases": dict(data.get("aliases", {}))}

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        path = self._folder / _MANIFEST
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)

    def _live(self) -> None:
        if self._on_close is None:
            raise VectorStoreError(f"the vector store at {self.where} is closed")


def shard_config(dimension: int) -> Any:
    """A collection's Edge settings: cosine vectors on disk, int8 copies in memory, no HNSW graph,
    indexed after ``UNINDEXED_LIMIT``."""
    from qdrant_edge import (
        Distance,
        EdgeConfig,
        EdgeOptimizersConfig,
        EdgeVectorParams,
        HnswIndexConfig,
        Memory,
        ScalarQuantizationConfig,
        ScalarType,
    )

    # The optimizers count kilobytes of vectors; half the limit, so that a segment holding
    # UNINDEXED_LIMIT points is surely over it (0 would switch indexing off).
    threshold_kb = max(1, UNINDEXED_LIMIT * dimension * 4 // 1024 // 2)
    segment_kb = max(threshold_kb, SEGMENT_POINTS * dimension * 4 // 1024)
    return EdgeConfig(
        # Full vectors stay on disk, paged in on use (rescoring, retrieval): kept in memory they made
        # every opening of the store read them all (332 MB resident at 100k points, 1.5 GB at 1M).
        vectors=EdgeVectorParams(size=dimension, distance=Distance.Cosine, memory=Memory.Cold),
        # m=0 and payload_m=0: no graph; every search scores exactly the points that pass its filter.
        hnsw_config=HnswIndexConfig(m=0, ef_construct=100, full_scan_threshold=EXACT_UP_TO_KB, payload_m=0),
        optimizers=EdgeOptimizersConfig(indexing_threshold=threshold_kb, max_segment_size=segment_kb),
        # int8 copies in memory (a quarter of the vectors' size) rank the points that pass a filter;
        # the best RESCORED per result are scored again on the full vectors (see ``search``).
        quantization_config=ScalarQuantizationConfig(
            type=ScalarType.Int8, quantile=0.99, memory=Memory.Cached
        ),
    )


def payload_indexes() -> dict[str, Any]:
    """The payload fields with an index, so a filter selects candidates before any vector is scored.

    No per-field HNSW links (``enable_hnsw=False``): there is no graph to attach them to.
    """
    from qdrant_edge import FloatIndexParams, IntegerIndexParams, KeywordIndexParams

    return {
        "article_id": IntegerIndexParams(lookup=True, range=False, enable_hnsw=False),
        "published_ts": FloatIndexParams(enable_hnsw=False),
        "language": KeywordIndexParams(enable_hnsw=False),
        "outlet": KeywordIndexParams(enable_hnsw=False),
        "country": KeywordIndexParams(enable_hnsw=False),
        DAY_LANGUAGE: KeywordIndexParams(enable_hnsw=False),
    }


def keyed_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as stored: the caller's fields and the day-language key derived from them."""
    key = day_language(payload)
    return payload if key is None else {**payload, DAY_LANGUAGE: key}


def _fold_unindexed(shard: Any) -> None:
    """Run the optimizers once ``UNINDEXED_LIMIT`` points wait outside the indexed segments."""
    info = shard.info()
    if info.points_count - info.indexed_vectors_count >= UNINDEXED_LIMIT:
        shard.optimize()
        shard.flush()  # the segments an optimisation replaced leave the disk only on a flush


# --- opening ------------------------------------------------------------------------------------


class OpenFolder:
    """What every opener of one folder in a process shares: the open shards and their guard."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.shards: dict[str, Any] = {}
        self.guard = threading.RLock()
        (path / _COLLECTIONS).mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        with self.guard:
            shards, self.shards = dict(self.shards), {}
            for shard in shards.values():
                shard.flush()
                shard.close()


_FOLDERS: SharedFolders[OpenFolder] = SharedFolders()
_BUSY_HINT = (
    "The embedded vector store allows one process at a time: run the steps one after another, or use a "
    "Qdrant server (NARRWATCH_QDRANT_URL)."
)


def open_edge_store(folder: Path, lock_timeout_s: float) -> EdgeVectorStore:
    """The store in ``folder``, shared with other openers in this process; ``close`` releases it."""
    shared, release = _FOLDERS.acquire(
        folder.resolve(),
        lock_timeout_s,
        open_handle=OpenFolder,
        close_handle=OpenFolder.close,
        hint=_BUSY_HINT,
    )
    return EdgeVectorStore(shared, on_close=release)


def open_scratch_edge_store() -> EdgeVectorStore:
    """A store in a temporary folder removed on close (``qdrant_path=':memory:'``: tests, demos)."""
    scratch = OpenFolder(Path(tempfile.mkdtemp(prefix="narrwatch-vectors-")))

    def discard() -> None:
        try:
            scratch.close()
        finally:
            shutil.rmtree(scratch.path, ignore_errors=True)

    return EdgeVectorStore(scratch, on_close=discard)
