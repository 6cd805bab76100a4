"""Shared fixtures.

Every test that touches the SQL store takes ``ctx`` (or ``settings`` + ``ctx``) and carries the ``db``
marker; ``.ci/run`` runs those again with ``NARRWATCH_TEST_DATABASE_URL`` pointing at PostgreSQL.
Qdrant runs in ``:memory:`` mode unless a test asks for a path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text

from narrwatch.config import BUNDLED_MODEL, Settings
from narrwatch.context import AppContext
from narrwatch.db.models import Base
from narrwatch.embeddings.backends import available_cpus

# Property tests check behaviour, not speed: on a loaded 2-core CI machine Hypothesis's default
# 200 ms per-example deadline fails tests at random (timings belong in bench/).
hypothesis_settings.register_profile("narrwatch", deadline=None)
hypothesis_settings.load_profile("narrwatch")

REPO = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("NARRWATCH_TEST_DATABASE_URL")

# Under pytest-xdist (`make test` runs two workers) each worker gets an equal share of the cores:
# torch's and ONNX Runtime's default of one thread per core in every worker made the workers' threads
# wait on each other (a model-bound test took 3.7x as long as alone). Set before numpy or torch load.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    _threads = str(max(1, available_cpus() // _WORKERS))
    for _variable in ("NARRWATCH_EMBEDDING_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_variable, _threads)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``long`` first: with several workers, a long test that starts last keeps one
    worker busy while the others sit idle."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.fixture(scope="session")
def model_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ONNX exports and encoded backgrounds are made once per test session, not once per test; with
    pytest-xdist once per session too, in the folder the workers' temporary folders share (exports and
    caches are written atomically, so two workers making one at once is safe)."""
    shared = os.environ.get("NARRWATCH_TEST_MODELS_DIR")
    if shared:
        Path(shared).mkdir(parents=True, exist_ok=True)
        return Path(shared)
    if _WORKERS > 1:
        session_models = tmp_path_factory.getbasetemp().parent / "models"
        session_models.mkdir(exist_ok=True)
        return session_models
    return tmp_path_factory.mktemp("models")


def _reset_schema(ctx: AppContext) -> None:
    if ctx.engine.dialect.name == "postgresql":
        with ctx.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    Base.metadata.create_all(ctx.engine)


@pytest.fixture
def settings(tmp_path: Path, model_cache_dir: Path) -> Settings:
    data_dir = tmp_path / "var"
    return Settings(
        data_dir=data_dir,
        database_url=PG_URL or f"sqlite:///{data_dir / 'test.db'}",
        qdrant_path=Path(":memory:"),
        models_dir=model_cache_dir,
        # The suite's figures were set on the English model in fp32; tests of the multilingual default
        # (tests/embeddings/test_multilingual_model.py, the demo) and of the other backends
        # (tests/embeddings) name them themselves. int8 moves borderline scores by about 0.001, and
        # `auto` picks it on some CPUs, which would make the suite's decisions depend on the machine.
        embedding_model=BUNDLED_MODEL,
        embedding_backend="torch",
        feeds_file=REPO / "feeds.yaml",
        narratives_dir=REPO / "narratives",
        allow_private_networks=True,
        fetch_per_host_delay_s=0.0,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def ctx(settings: Settings) -> Iterator[AppContext]:
    context = AppContext.from_settings(settings)
    _reset_schema(context)
    try:
        yield context
    finally:
        context.close()
