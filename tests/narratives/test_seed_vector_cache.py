"""Seed phrasings are encoded once per models folder, not once per process."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from narrwatch.steps.match import prepare
from narrwatch.steps.match.prepare import encode_cached


class CountingEncoder:
    """Deterministic vectors from the text's characters; records every text it encodes."""

    model_name = "test-counting"
    backend = "test"
    dimension = 8
    max_tokens = 64

    def __init__(self, fingerprint: str = "0123456789abcdef") -> None:
        self.fingerprint = fingerprint
        self.encoded: list[str] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.encoded += texts
        rows = np.array([[(ord(c) * (i + 1)) % 17 + 1 for i, c in enumerate((t * 8)[:8])] for t in texts])
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)

    def encode_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._encode(texts)

    def encode_passages(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return self._encode(texts)


@pytest.fixture
def new_process(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Forget the in-process vectors, as a new match run starts with none."""

    def reset() -> None:
        monkeypatch.setattr(prepare, "_TEXT_VECTORS", {})

    reset()
    return reset


def test_a_later_process_reads_the_vectors_and_encodes_only_new_texts(
    tmp_path: Path, new_process: Callable[[], None]
) -> None:
    first = CountingEncoder()
    made = encode_cached(first, ["west ignores", "nato aggressor"], "query", tmp_path)
    assert first.encoded == ["west ignores", "nato aggressor"]

    new_process()
    later = CountingEncoder()
    again = encode_cached(later, ["west ignores", "nato aggressor", "a new phrasing"], "query", tmp_path)
    assert later.encoded == ["a new phrasing"]
    assert np.array_equal(again[:2], made)
    # The same text as a passage is another vector (another prompt): encoded, not read.
    encode_cached(later, ["west ignores"], "passage", tmp_path)
    assert later.encoded == ["a new phrasing", "west ignores"]


def test_an_unreadable_file_is_encoded_again_and_another_model_has_its_own(
    tmp_path: Path, new_process: Callable[[], None]
) -> None:
    encode_cached(CountingEncoder(), ["west ignores"], "query", tmp_path)
    (stored,) = tmp_path.glob("text-vectors-*/*.npy")
    stored.write_bytes(b"half a vector")

    new_process()
    again = CountingEncoder()
    vector = encode_cached(again, ["west ignores"], "query", tmp_path)
    assert again.encoded == ["west ignores"]
    assert np.array_equal(vector, CountingEncoder().encode_queries(["west ignores"]))
    assert np.array_equal(np.load(stored), vector[0]), "the file is whole again"

    new_process()
    other_model = CountingEncoder(fingerprint="fedcba9876543210")
    encode_cached(other_model, ["west ignores"], "query", tmp_path)
    assert other_model.encoded == ["west ignores"]
    assert len(list(tmp_path.glob("text-vectors-*"))) == 2


def test_another_prompt_is_another_vector(tmp_path: Path, new_process: Callable[[], None]) -> None:
    plain = CountingEncoder()
    encode_cached(plain, ["west ignores"], "query", tmp_path)
    new_process()
    prompted = CountingEncoder()
    prompted.query_prompt = "query: "  # type: ignore[attr-defined]
    encode_cached(prompted, ["west ignores"], "query", tmp_path)
    assert prompted.encoded == ["west ignores"], "a vector made under another prompt is not reused"


def test_a_folder_that_cannot_be_written_only_costs_time(
    tmp_path: Path, new_process: Callable[[], None]
) -> None:
    blocked = tmp_path / "models"
    blocked.write_text("a file where the folder should be")
    encoder = CountingEncoder()
    vectors = encode_cached(encoder, ["west ignores"], "query", blocked)
    assert np.array_equal(vectors, CountingEncoder().encode_queries(["west ignores"]))
