"""One body of vector-store tests, run against :memory:, a local folder and (if given) a server.

The server variant exists when NARRWATCH_TEST_QDRANT_URL is set (see conftest.store).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from embeddings_support import unique_collection

from narrwatch.config import Settings
from narrwatch.embeddings import edge_store
from narrwatch.embeddings import store as store_module
from narrwatch.embeddings.store import VectorStoreBusy, VectorStoreError, open_vector_store
from narrwatch.ports import SearchFilter, VectorPoint, VectorStore

DIM = 8
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def make_points(n: int, seed: int = 0, start: int = 0) -> list[VectorPoint]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        VectorPoint(
            id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://x.example/{start + i}#0")),
            vector=vectors[i],
            payload={
                "article_id": start + i,
                "language": ["en", "sr", "mk"][(start + i) % 3],
                "published_ts": (T0 + dt.timedelta(hours=start + i)).timestamp(),
                "outlet": "o",
            },
        )
        for i in range(n)
    ]


def brute_force(points: list[VectorPoint], query: np.ndarray, keep: list[bool], limit: int) -> list[str]:
    scored = sorted(
        ((float(p.vector @ query), p.id) for p, ok in zip(points, keep, strict=True) if ok), reverse=True
    )
    return [point_id for _, point_id in scored[:limit]]


def test_upsert_is_idempotent_and_vectors_round_trip(store: VectorStore) -> None:
    name = unique_collection()
    store.ensure_collection(name, DIM)
    store.ensure_collection(name, DIM)  # second call is a no-op
    points = make_points(30)
    store.upsert(name, points)
    store.upsert(name, points)
    assert store.count(name) == 30

    got = store.retrieve_vectors(name, [p.id for p in points[:5]] + [str(uuid.uuid4())])
    assert set(got) == {p.id for p in points[:5]}
    for point in points[:5]:
        assert got[point.id].dtype == np.float32
        np.testing.assert_allclose(got[point.id], point.vector, atol=1e-6)

    # Upserting the same id with a new vector and payload replaces the point.
    replaced = VectorPoint(
        id=points[0].id, vector=points[1].vector, payload={**points[0].payload, "outlet": "new"}
    )
    store.upsert(name, [replaced])
    assert store.count(name) == 30
    hit = store.search(name, points[1].vector, 2)
    assert {h.id for h in hit} == {points[0].id, points[1].id}
    assert next(h for h in hit if h.id == points[0].id).payload["outlet"] == "new"


def test_ids_are_compared_in_canonical_form(store: VectorStore) -> None:
    name = unique_collection()
    store.ensure_collection(name, DIM)
    point = make_points(1)[0]
    store.upsert(name, [VectorPoint(id=point.id.upper(), vector=point.vector, payload=point.payload)])
    assert list(store.iter_ids(name)) == [point.id]
    assert set(store.retrieve_vectors(name, [point.id.upper()])) == {point.id}


def test_search_matches_brute_force_under_every_filter(store: VectorStore) -> None:
    name = unique_collection()
    store.ensure_collection(name, DIM)
    points = make_points(60, seed=3)
    store.upsert(name, points)
    query = points[7].vector
    published = [T0 + dt.timedelta(hours=i) for i in range(60)]
    languages = [p.payload["language"] for p in points]

    cases = [
        (None, [True] * 60),
        (
            SearchFilter(published_from=published[10], published_to=published[20]),
            [10 <= i < 20 for i in range(60)],
        ),
        (SearchFilter(published_from=published[50]), [i >= 50 for i in range(60)]),
        (SearchFilter(published_to=published[5]), [i < 5 for i in range(60)]),
        (SearchFilter(article_ids=[1, 7, 9, 40]), [i in {1, 7, 9, 40} for i in range(60)]),
        (SearchFilter(languages=["sr"]), [lang == "sr" for lang in languages]),
        (
            SearchFilter(published_from=published[0], published_to=published[30], languages=["en", "mk"]),
            [i < 30 and languages[i] != "sr" for i in range(60)],
        ),
        (  # from 20:00 on day 0 to 02:00 on day 2: parts of days at both ends
            SearchFilter(published_from=published[20], published_to=published[50], languages=["sr"]),
            [20 <= i < 50 and languages[i] == "sr" for i in range(60)],
        ),
        (
            SearchFilter(published_from=published[9], published_to=published[9], languages=["sr"]),
            [False] * 60,
        ),
    ]
    for flt, keep in cases:
        hits = store.search(name, query, 5, flt)
        assert [h.id for h in hits] == brute_force(points, query, keep, 5), flt
        for hit in hits:  # the payload as written: nothing an engine adds for itself
            assert hit.payload == points[[p.id for p in points].index(hit.id)].payload

    # The upper bound is exclusive, the lower inclusive: a day window never counts an article twice.
    boundary = store.search(
        name, query, 60, SearchFilter(published_from=published[3], published_to=published[4])
    )
    assert [h.payload["article_id"] for h in boundary] == [3]

    assert store.search(name, query, 5, SearchFilter(article_ids=[])) == []
    assert store.search(name, query, 5, SearchFilter(languages=[])) == []
    assert store.search(name, query, 0) == []


def test_naive_datetimes_are_refused(store: VectorStore) -> None:
    name = unique_collection()
    store.ensure_collection(name, DIM)
    with pytest.raises(ValueError, match="naive"):
        store.search(name, make_points(1)[0].vector, 3, SearchFilter(published_from=dt.datetime(2025, 1, 1)))


def test_iter_ids_pages_through_everything_and_delete(
    store: VectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in (store_module, edge_store):
        monkeypatch.setattr(module, "SCROLL_PAGE", 7)
        monkeypatch.setattr(module, "WRITE_BATCH", 9)
    name = unique_collection()
    store.ensure_collection(name, DIM)
    points = make_points(40)
    store.upsert(name, points)
    ids = list(store.iter_ids(name))
    assert len(ids) == 40 and set(ids) == {p.id for p in points}

    store.delete(name, [p.id for p in points[:25]] + [str(uuid.uuid4())])  # unknown ids are ignored
    assert store.count(name) == 15
    assert set(store.iter_ids(name)) == {p.id for p in points[25:]}
    store.delete(name, [])
    assert store.count(name) == 15


def test_edge_folds_written_points_into_indexed_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past UNINDEXED_LIMIT waiting points a write indexes them; replacing, deleting, searching and
    reopening then behave as before."""
    monkeypatch.setattr(edge_store, "UNINDEXED_LIMIT", 40)
    folder = tmp_path / "vectors"
    opened = edge_store.open_edge_store(folder, 0.0)
    opened.ensure_collection("c", DIM)
    points = make_points(100, seed=5)
    opened.upsert("c", points[:30])
    assert opened.indexed_points("c") == 0
    opened.upsert("c", points[30:60])
    assert opened.indexed_points("c") == 60
    opened.upsert("c", points[60:])
    assert opened.indexed_points("c") == 100

    replaced = VectorPoint(id=points[0].id, vector=points[1].vector, payload=points[0].payload)
    opened.upsert("c", [replaced])
    opened.delete("c", [p.id for p in points[90:]])
    kept = [replaced, *points[1:90]]
    opened.close()

    reopened = edge_store.open_edge_store(folder, 0.0)
    assert reopened.count("c") == 90
    np.testing.assert_allclose(reopened.retrieve_vectors("c", [points[0].id])[points[0].id], points[1].vector)
    query = points[5].vector
    window = SearchFilter(published_from=T0, published_to=T0 + dt.timedelta(hours=70), languages=["sr", "mk"])
    keep = [p.payload["article_id"] < 70 and p.payload["language"] != "en" for p in kept]
    assert [h.id for h in reopened.search("c", query, 10, window)] == brute_force(kept, query, keep, 10)
    assert [h.id for h in reopened.search("c", query, 10)] == brute_force(kept, query, [True] * 90, 10)
    reopened.close()


def test_missing_collection_reads_as_empty(store: VectorStore) -> None:
    name = unique_collection("absent")
    assert store.count(name) == 0
    assert list(store.iter_ids(name)) == []
    assert store.search(name, np.ones(DIM, dtype=np.float32), 3) == []
    assert store.retrieve_vectors(name, [str(uuid.uuid4())]) == {}
    store.delete(name, [str(uuid.uuid4())])
    assert name not in store.collections()


def test_dimension_mismatch_is_an_error(store: VectorStore) -> None:
    name = unique_collection()
    store.ensure_collection(name, DIM)
    with pytest.raises(VectorStoreError, match="not 16"):
        store.ensure_collection(name, 16)


def test_alias_moves_between_collections_without_touching_them(store: VectorStore) -> None:
    old, new, alias = unique_collection("old"), unique_collection("new"), unique_collection("alias")
    store.ensure_collection(old, DIM)
    store.ensure_collection(new, DIM)
    store.upsert(old, make_points(4))
    store.set_alias(alias, old)
    assert store.aliases()[alias] == old
    store.set_alias(alias, new)
    store.set_alias(alias, new)
    assert store.aliases()[alias] == new
    assert store.count(old) == 4 and store.count(new) == 0
    store.drop_collection(new)
    assert alias not in store.aliases()


@pytest.mark.parametrize("engine", ["edge", "local"])
def test_closed_store_refuses_work(tmp_path: Path, engine: str) -> None:
    for location in (Path(":memory:"), tmp_path / engine):
        opened = open_vector_store(Settings(vector_engine=engine, qdrant_path=location, _env_file=None))  # type: ignore[call-arg]
        opened.close()
        opened.close()  # closing twice is harmless
        with pytest.raises(VectorStoreError, match="closed"):
            opened.count("x")


# --- local mode: persistence and the one-process rule ---------------------------------------------


def local_settings(folder: Path, timeout: float = 0.0, engine: str = "edge") -> Settings:
    return Settings(  # type: ignore[call-arg]
        data_dir=folder.parent,
        vector_engine=engine,
        qdrant_path=folder,
        qdrant_lock_timeout_s=timeout,
        _env_file=None,
    )


@pytest.mark.parametrize("engine", ["edge", "local"])
def test_local_folder_persists_and_is_shared_within_a_process(tmp_path: Path, engine: str) -> None:
    folder = tmp_path / "qdrant"
    first = open_vector_store(local_settings(folder, engine=engine))
    second = open_vector_store(local_settings(folder, engine=engine))  # same process: shares the client
    first.ensure_collection("c", DIM)
    first.upsert("c", make_points(5))
    first.close()
    assert second.count("c") == 5  # still usable after the other handle closed
    second.close()

    reopened = open_vector_store(local_settings(folder, engine=engine))
    assert reopened.count("c") == 5
    reopened.close()


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from narrwatch.embeddings.store import open_vector_store
    from narrwatch.config import Settings
    store = open_vector_store(Settings(qdrant_path=Path(sys.argv[1]), _env_file=None))
    Path(sys.argv[2]).write_text("open")
    time.sleep(float(sys.argv[3]))
    store.close()
    """
)


def test_second_process_waits_for_the_local_folder_then_gets_it(tmp_path: Path) -> None:
    folder = tmp_path / "qdrant"
    marker = tmp_path / "holder-open"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), str(marker), "3"])
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert holder.poll() is None, "the holder process died"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(VectorStoreBusy, match=rf"in use by another process \(pid {holder.pid}\)"):
            open_vector_store(local_settings(folder, timeout=0))
        started = time.monotonic()
        waited = open_vector_store(local_settings(folder, timeout=60))  # blocks until the holder exits
        assert time.monotonic() - started > 0.5
        waited.ensure_collection("c", DIM)
        waited.close()
    finally:
        holder.kill()
        holder.wait()


def test_unreachable_server_is_a_clear_error() -> None:
    settings = Settings(qdrant_url="http://127.0.0.1:9", _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(VectorStoreError, match=r"NARRWATCH_QDRANT_URL=http://127.0.0.1:9 does not answer"):
        open_vector_store(settings)


def test_local_writes_use_sqlite_wal(tmp_path: Path) -> None:
    """Guards the local-mode write tuning: if qdrant-client moves its SQLite connection, this fails."""
    import sqlite3

    folder = tmp_path / "qdrant"
    opened = open_vector_store(local_settings(folder, engine="local"))
    opened.ensure_collection("c", DIM)
    opened.upsert("c", make_points(3))
    opened.close()
    [storage] = list(folder.rglob("storage.sqlite"))
    with sqlite3.connect(storage) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    reopened = open_vector_store(local_settings(folder, engine="local"))
    assert reopened.count("c") == 3
    reopened.close()
