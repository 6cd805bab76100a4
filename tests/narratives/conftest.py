"""Fixtures of the narratives tests: the real bundled model (loaded once per session), seed folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from narrwatch.config import BUNDLED_MODEL, Settings
from narrwatch.context import AppContext
from narrwatch.ports import Encoder

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def encoder(model_cache_dir: Path) -> Encoder:
    from narrwatch.embeddings.encoder import load_encoder

    settings = Settings(
        data_dir=model_cache_dir.parent,
        models_dir=model_cache_dir,
        embedding_model=BUNDLED_MODEL,  # the figures of these tests were set on the English model
        embedding_backend="torch",  # in fp32, on every CPU (see tests/conftest.py)
        _env_file=None,  # type: ignore[call-arg]
    )
    return load_encoder(settings)


@pytest.fixture
def seeds_dir(tmp_path: Path) -> Path:
    """A private copy of the fixture seeds that a test may edit."""
    target = tmp_path / "seeds"
    shutil.copytree(FIXTURES / "seeds", target)
    return target


@pytest.fixture
def nctx(ctx: AppContext, seeds_dir: Path, encoder: Encoder) -> AppContext:
    """The shared test context, pointed at the fixture seeds and holding the session's encoder."""
    ctx.settings = ctx.settings.model_copy(update={"narratives_dir": seeds_dir})
    ctx._encoder = encoder
    return ctx


@pytest.fixture(autouse=True)
def raw_scale_matching(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machinery tests here (versions, idempotency, backtest, review) were set on the raw scale
    with the fixture seeds' thresholds; calibration and verdict learning have their own tests
    (test_language_calibration.py, test_eval_verdicts.py) and the third-party bench."""
    monkeypatch.setenv("NARRWATCH_MATCH_CALIBRATION", "false")
    monkeypatch.setenv("NARRWATCH_MATCH_LEARN_FROM_VERDICTS", "false")
