"""The encoder on the bundled model: torch and ONNX int8, offline, normalised, deterministic."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from embeddings_support import model_settings

from narrwatch.config import BUNDLED_MODEL, Settings
from narrwatch.embeddings.backends import int8_variant
from narrwatch.embeddings.encoder import SentenceEncoder, load_encoder
from narrwatch.embeddings.encoder_errors import EncoderError
from narrwatch.embeddings.model_source import model_fingerprint, model_slug, resolve_model_dir
from narrwatch.embeddings.onnx_weights import side_weights_file

TEXTS = [
    "The West ignores Serbia's sovereignty.",
    "Western countries disregard the sovereign rights of Serbia.",
    "Add the flour and stir the soup for ten minutes.",
    "The national team won the qualifier 2-0 in Belgrade on Tuesday night.",
    "Запад игнорише суверенитет Србије.",
    "Parliament adopted the budget amendments with 132 votes in favour.",
    "",
]


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_bundled_model_shape_and_identity(
    int8_encoder: SentenceEncoder, torch_encoder: SentenceEncoder
) -> None:
    for encoder, backend in ((int8_encoder, "onnx-int8"), (torch_encoder, "torch")):
        assert encoder.model_name == BUNDLED_MODEL
        assert encoder.backend == backend
        assert encoder.dimension == 384
        assert encoder.max_tokens == 256
        assert encoder.special_tokens == 2
        assert re.fullmatch(r"[0-9a-f]{16}", encoder.fingerprint)
    # The fingerprint describes the model's files, whatever backend runs them.
    assert int8_encoder.fingerprint == torch_encoder.fingerprint


@pytest.mark.parametrize("backend", ["torch", "onnx-int8"])
def test_vectors_are_normalised_float32_and_deterministic(
    backend: str, int8_encoder: SentenceEncoder, torch_encoder: SentenceEncoder
) -> None:
    encoder = int8_encoder if backend == "onnx-int8" else torch_encoder
    vectors = encoder.encode_passages(TEXTS)
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(encoder.encode_passages(TEXTS), vectors)
    # Batch-mates do not move a vector: torch masks padding out; int8 quantises each token row with
    # its own scale.
    alone = np.vstack([encoder.encode_passages([text]) for text in TEXTS])
    assert cosine_rows(alone, vectors).min() > 0.99999
    assert encoder.encode_passages([]).shape == (0, 384)


@pytest.mark.long
def test_bf16_gives_a_text_the_same_bits_in_any_batch(
    model_cache_dir: Path, torch_encoder: SentenceEncoder
) -> None:
    """bf16's kernels follow the batch's shape; the encoder fixes each text's shape by its length."""
    import torch

    encoder = load_encoder(model_settings(model_cache_dir, embedding_backend="torch-bf16"))
    # loaded straight in bf16 (no fp32 copy is ever held), every weight included
    assert {parameter.dtype for parameter in encoder._model.parameters()} == {torch.bfloat16}
    reference = encoder.encode_passages(TEXTS)
    alone = np.vstack([encoder.encode_passages([text]) for text in TEXTS])
    np.testing.assert_array_equal(alone, reference)
    company = [f"Filler number {i} on the weather in the region. " * (1 + i % 9) for i in range(23)]
    for rotation in range(3):
        mixed = company[rotation:] + TEXTS[::-1] + company[:rotation]
        vectors = encoder.encode_passages(mixed)
        at = {text: vectors[index] for index, text in enumerate(mixed)}
        np.testing.assert_array_equal(np.vstack([at[text] for text in TEXTS]), reference)
    assert cosine_rows(reference, torch_encoder.encode_passages(TEXTS)).min() > 0.999
    lengths = [256, 250, 12, 12, 12, 3, 256, 100, 90, 5, 33] * 3
    for batch in encoder.batch_plan(lengths):
        widths = {encoder.batch_width([lengths[i]]) for i in batch}
        assert len(widths) == 1, "one width per batch"
        assert len(batch) * widths.pop() < 2048 + 32


def test_int8_stays_close_to_torch_and_keeps_the_ranking(
    int8_encoder: SentenceEncoder, torch_encoder: SentenceEncoder
) -> None:
    full = torch_encoder.encode_passages(TEXTS)
    quantised = int8_encoder.encode_passages(TEXTS)
    cosines = cosine_rows(full, quantised)
    assert cosines.mean() > 0.98 and cosines.min() > 0.95
    for vectors in (full, quantised):
        paraphrase = float(vectors[0] @ vectors[1])
        unrelated = float(vectors[0] @ vectors[2])
        assert paraphrase > 0.7 and unrelated < 0.3


def test_token_length_batches_respect_the_budget(
    int8_encoder: SentenceEncoder, torch_encoder: SentenceEncoder
) -> None:
    lengths = [256, 250, 12, 12, 12, 3, 256, 100, 90, 5] * 20
    budget = Settings.model_fields["embedding_batch_tokens"].default
    # int8's per-row scales let it batch like the others.
    for plan in (int8_encoder.batch_plan(lengths), torch_encoder.batch_plan(lengths)):
        assert sorted(i for batch in plan for i in batch) == list(range(len(lengths)))
        for batch in plan:
            assert len(batch) * max(lengths[i] for i in batch) <= budget or len(batch) == 1
        assert len(plan[-1]) > len(plan[0]), "short texts run in larger batches"


def test_encoding_after_a_count_truncates_again(int8_encoder: SentenceEncoder) -> None:
    # Counting and encoding share the model's tokenizer: counting turns its window off, and the next
    # encoding must have it back (a text past the window would otherwise reach the model whole).
    long_text = "word " * 600
    expected = int8_encoder.encode_passages([long_text])
    assert int8_encoder.count_tokens(long_text) == 600
    np.testing.assert_array_equal(int8_encoder.encode_passages([long_text]), expected)
    assert int8_encoder.count_tokens(long_text) == 600, "and counting has no window after encoding"


def test_counting_beside_encoding_in_other_threads_keeps_both_right(int8_encoder: SentenceEncoder) -> None:
    # Counting turns the shared tokenizer's window off; encoding needs it on (texts past the window).
    long_texts = [f"{n} " + "word " * 600 for n in range(6)]
    expected_vectors = int8_encoder.encode_passages(long_texts)
    expected_count = int8_encoder.count_tokens(long_texts[0])
    assert expected_count > int8_encoder.max_tokens
    counts: list[int] = []
    vectors: list[np.ndarray] = []

    def count() -> None:
        counts.extend(int8_encoder.count_tokens(long_texts[0]) for _ in range(300))

    def encode() -> None:
        vectors.extend(int8_encoder.encode_passages(long_texts) for _ in range(3))

    workers = [threading.Thread(target=job) for job in (count, encode, count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert set(counts) == {expected_count}
    assert len(vectors) == 3 and all(np.array_equal(v, expected_vectors) for v in vectors)


def test_count_tokens_has_no_window_and_no_special_tokens(int8_encoder: SentenceEncoder) -> None:
    long_text = "word " * 1000
    assert int8_encoder.count_tokens(long_text) == 1000
    assert int8_encoder.count_tokens("") == 0
    # Cyrillic is tokenised character by character by this English model.
    assert int8_encoder.count_tokens("Запад игнорише") > 2 * int8_encoder.count_tokens("Zapad ignorise")


def test_same_settings_give_the_same_encoder_and_prompts_change_it(model_cache_dir: Path) -> None:
    plain = load_encoder(model_settings(model_cache_dir, embedding_backend="torch"))
    assert load_encoder(model_settings(model_cache_dir, embedding_backend="torch")) is plain
    prompted = load_encoder(
        model_settings(
            model_cache_dir,
            embedding_backend="torch",
            embedding_query_prompt="query: ",
            embedding_passage_prompt="passage: ",
        )
    )
    assert prompted is not plain
    assert prompted.passage_prompt_tokens == plain.count_tokens("passage: ") > 0
    text = ["Kosovo declared independence in 2008."]
    np.testing.assert_allclose(
        prompted.encode_passages(text), plain.encode_passages(["passage: " + text[0]]), atol=1e-6
    )
    np.testing.assert_allclose(
        prompted.encode_queries(text), plain.encode_queries(["query: " + text[0]]), atol=1e-6
    )


def test_onnx_files_live_in_the_models_dir_not_in_site_packages(
    int8_encoder: SentenceEncoder, model_cache_dir: Path
) -> None:
    assert int8_encoder.onnx_file is not None
    assert int8_encoder.onnx_file.is_file()
    assert int8_encoder.onnx_file.is_relative_to(model_cache_dir.resolve())
    assert int8_encoder.onnx_file.name == f"model_int8_rows_{int8_variant()}.onnx"
    # The weights sit beside the graph, where ONNX Runtime maps them instead of copying them.
    weights = side_weights_file(int8_encoder.onnx_file)
    assert weights.stat().st_size > 10_000_000 > int8_encoder.onnx_file.stat().st_size
    assert weights.stat().st_mode & 0o044 == int8_encoder.onnx_file.stat().st_mode & 0o044
    bundled = resolve_model_dir(BUNDLED_MODEL)
    assert not (bundled / "onnx").exists()


def test_int8_variant_follows_the_cpu() -> None:
    flags = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        flags = next((line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), "")
    expected = "avx512_vnni" if " avx512_vnni" in flags else "avx512" if " avx512f" in flags else None
    variant = int8_variant()
    assert variant in {"avx512_vnni", "avx512", "avx2", "arm64"}
    if expected:
        assert variant == expected


def test_fingerprint_follows_file_contents_and_is_cached(tmp_path: Path) -> None:
    copy = tmp_path / "my-model"
    shutil.copytree(resolve_model_dir(BUNDLED_MODEL), copy)
    cache = tmp_path / "cache"
    original = model_fingerprint(copy, cache)
    assert list((cache / ".fingerprints").iterdir()), "the hash is cached"
    assert model_fingerprint(copy, cache) == original
    assert model_fingerprint(copy) == original, "the cache holds the same value a fresh hash gives"
    (copy / "README.md").write_text("changed\n")
    assert model_fingerprint(copy, cache) != original
    (copy / "onnx").mkdir()
    (copy / "onnx" / "model.onnx").write_bytes(b"derived files do not count")
    assert model_fingerprint(copy, cache) == model_fingerprint(copy)


def test_model_slug() -> None:
    assert model_slug(BUNDLED_MODEL) == "all-minilm-l6-v2"
    assert model_slug("intfloat/multilingual-e5-small") == "multilingual-e5-small"
    assert model_slug("/srv/models/My Model/") == "my-model"


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="NARRWATCH_EMBEDDING_MODEL=.*no model directory"):
        load_encoder(model_settings(tmp_path, embedding_model=str(tmp_path / "nowhere")))


RACER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from narrwatch.embeddings.model_source import model_fingerprint, resolve_model_dir
    from narrwatch.embeddings import onnx_export
    from narrwatch.embeddings.onnx_export import ensure_onnx_export
    from narrwatch.config import BUNDLED_MODEL
    source = resolve_model_dir(BUNDLED_MODEL)
    models = Path(sys.argv[1])
    export = onnx_export._export_fp32
    def counted_export(*args):
        with open(sys.argv[2], "a") as log:
            print("export", file=log)
        export(*args)
    onnx_export._export_fp32 = counted_export
    folder, name = ensure_onnx_export(source, "race", model_fingerprint(source), models, "onnx-int8")
    print(json.dumps([str(folder), name]))
    """
)


def test_two_processes_exporting_at_once_both_get_a_complete_export_made_once(tmp_path: Path) -> None:
    models = tmp_path / "models"
    exports = tmp_path / "exports.log"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(models), str(exports)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = []
    for racer in racers:
        out, _ = racer.communicate(timeout=300)
        assert racer.returncode == 0
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0] == results[1]
    folder, name = Path(results[0][0]), results[0][1]
    assert side_weights_file(folder / "onnx" / "model.onnx").stat().st_size > 50_000_000
    assert side_weights_file(folder / name).stat().st_size > 10_000_000
    leftovers = [p.name for p in models.iterdir() if p.name.startswith(".") and p.name != ".fingerprints"]
    assert leftovers == [], "temporary export folders are cleaned up"
    assert exports.read_text().splitlines() == ["export"], "the second process waited for the first's export"


def test_a_new_export_layout_removes_the_old_ones_of_the_same_model(tmp_path: Path) -> None:
    from narrwatch.embeddings.onnx_export import ensure_onnx_export

    source = resolve_model_dir(BUNDLED_MODEL)
    fingerprint = model_fingerprint(source)
    models = tmp_path / "models"
    older = models / f"minilm-{fingerprint}-onnx-v1" / "onnx"
    other_model = models / "minilm-0123456789abcdef-onnx-v1" / "onnx"
    for folder in (older, other_model):
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(b"an export of an earlier version")
    folder, _ = ensure_onnx_export(source, "minilm", fingerprint, models, "onnx")
    assert (folder / "onnx" / "model.onnx").is_file()
    assert not older.parent.exists(), "the same model's export in an older layout is gone"
    assert other_model.is_dir(), "another model's export is left alone"
