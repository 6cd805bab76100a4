"""Fixtures of the embeddings tests: the real bundled model (loaded once per session) and stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from embeddings_support import QDRANT_SERVER, model_settings

from narrwatch.config import Settings
from narrwatch.embeddings.encoder import SentenceEncoder, load_encoder
from narrwatch.embeddings.store import open_vector_store
from narrwatch.ports import VectorStore


@pytest.fixture(scope="session")
def int8_encoder(model_cache_dir: Path) -> SentenceEncoder:
    return load_encoder(model_settings(model_cache_dir, embedding_backend="onnx-int8"))


@pytest.fixture(scope="session")
def torch_encoder(model_cache_dir: Path) -> SentenceEncoder:
    return load_encoder(model_settings(model_cache_dir, embedding_backend="torch"))


def _store_kinds() -> list[str]:
    # The server variant exists only when a server is given: no skipped test stands in for it.
    embedded = ["edge-scratch", "edge", "local-memory", "local"]
    return [*embedded, "server"] if QDRANT_SERVER else embedded


@pytest.fixture(params=_store_kinds())
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    """One contract, every implementation: the embedded engines and (when given) a Qdrant server."""
    kind = request.param
    if kind == "server":
        opened = open_vector_store(Settings(qdrant_url=QDRANT_SERVER, _env_file=None))  # type: ignore[call-arg]
    else:
        engine, _, place = kind.partition("-")
        location = Path(":memory:") if place in ("scratch", "memory") else tmp_path / "vectors"
        opened = open_vector_store(
            Settings(data_dir=tmp_path, vector_engine=engine, qdrant_path=location, _env_file=None)  # type: ignore[call-arg]
        )
    created_before = set(opened.collections())
    try:
        yield opened
    finally:
        # A shared server keeps other collections: drop only what this test made.
        for name in set(opened.collections()) - created_before:
            opened.drop_collection(name)
        opened.close()
