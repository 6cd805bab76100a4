"""The stream head: one model over a collection's verdicts on every seed (narrwatch.domain.verdicts)."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from narrwatch.domain.scoring import (
    HEAD_CONFIRM_PROBABILITY,
    DecidingHead,
    ScoringParams,
    SeedScore,
    Thresholds,
    build_seed_vectors,
    decide,
    deciding_head,
    resolve_thresholds,
)
from narrwatch.domain.verdicts import (
    _CUT_GRID,
    MIN_STREAM_CONFIRMED,
    MIN_STREAM_REJECTED,
    LabelledPassage,
    best_cut,
    decision_features,
    train_stream_head,
)
from narrwatch.steps.match.learning import apply_verdicts, labelled_passage, stream_say
from narrwatch.steps.match.prepare import PreparedSeeds

DIM = 16
PUSH, REPORT = np.eye(DIM)[0], np.eye(DIM)[1]


def _score(seed: str, value: float, **extra: object) -> SeedScore:
    return SeedScore(seed, value, value, 0.0, 0, value, "x", -1.0, False, **extra)  # type: ignore[arg-type]


def _verdicts(n: int, confirmed: bool, style: np.ndarray, rng: np.random.Generator) -> list[LabelledPassage]:
    """One verdict on each of ``n`` different seeds (too few for any seed's own head), all written
    in one ``style``, with the same scores whatever the verdict: only the writing tells them apart."""
    rows = []
    for i in range(n):
        vector = (style + rng.normal(0, 0.3, DIM)).astype(np.float32)
        vector /= np.linalg.norm(vector)
        seed = f"seed-{i}-{confirmed}"
        scores = {seed: _score(seed, 0.3), "other": _score("other", 0.1)}
        rows.append(labelled_passage(seed, scores, vector[np.newaxis, :], ["text"], confirmed, "en"))
    return rows


def test_the_stream_head_needs_verdicts_of_both_kinds() -> None:
    rng = np.random.default_rng(1)
    few_confirmed = _verdicts(MIN_STREAM_CONFIRMED - 1, True, PUSH, rng) + _verdicts(30, False, REPORT, rng)
    assert train_stream_head(few_confirmed) is None
    few_rejected = _verdicts(30, True, PUSH, rng) + _verdicts(MIN_STREAM_REJECTED - 1, False, REPORT, rng)
    assert train_stream_head(few_rejected) is None
    without_features = [
        LabelledPassage(v.narrative_id, v.text, v.vector, v.score, v.confirmed)
        for v in _verdicts(30, True, PUSH, rng) + _verdicts(30, False, REPORT, rng)
    ]
    assert train_stream_head(without_features) is None


def test_the_stream_head_learns_a_way_of_writing_across_seeds() -> None:
    rng = np.random.default_rng(2)
    head = train_stream_head(_verdicts(20, True, PUSH, rng) + _verdicts(20, False, REPORT, rng))
    assert head is not None and head.cut in _CUT_GRID
    assert head.cv_precision is not None and head.cv_precision >= 0.9 and head.cv_recall >= 0.9
    assert "cross-validated precision" in head.describe()

    # A new seed, never given a verdict: its suggestions are judged by how they are written.
    thresholds = Thresholds(0.2, 0.5)
    passages = np.stack([PUSH, REPORT]).astype(np.float32)
    row = {
        "pushed": _score("pushed", 0.3),  # evidence passage 0, between suggest and confirm
        "reported": SeedScore("reported", 0.9, 0.9, 0.0, 1, 0.9, "x", -1.0, False),  # passage 1
        "own-head": _score("own-head", 0.9, head_probability=0.9),
    }
    said = stream_say(head, row, passages)
    assert said["own-head"].stream_probability is None  # a seed's own head keeps the say
    assert said["pushed"].stream_cut == head.cut == said["reported"].stream_cut
    assert decide(said["pushed"], thresholds) == "confirm"
    assert decide(said["reported"], thresholds) == "suggest"
    assert decide(said["own-head"], thresholds) == "confirm"


def test_the_stream_head_only_decides_between_suggest_and_confirm() -> None:
    thresholds = Thresholds(0.2, 0.5)
    sure = {"stream_probability": 0.99, "stream_cut": 0.5}
    assert decide(_score("s", 0.1, **sure), thresholds) is None  # below suggest stays unmatched
    assert decide(_score("s", 0.3, **sure), thresholds) == "confirm"
    assert decide(_score("s", 0.3, stance="debunking", **sure), thresholds) == "suggest"
    doubtful = {"stream_probability": 0.2, "stream_cut": 0.5}
    assert decide(_score("s", 0.9, **doubtful), thresholds) == "suggest"


def test_decision_features_place_the_seed_in_its_row() -> None:
    row = {"a": _score("a", 0.6, raw_score=0.8), "b": _score("b", 0.4), "c": _score("c", 0.1)}
    vector = np.arange(DIM, dtype=np.float32)
    features = decision_features(row["b"], row, vector, passages=3)
    assert features.shape == (8 + DIM,)
    assert features[6] == np.float32(0.4 - 0.6) and features[7] == np.float32(0.0)  # behind a, level with 2nd
    leader = decision_features(row["a"], row, vector, passages=3)
    assert leader[1] == np.float32(0.8) and leader[6] == 0 and leader[7] == np.float32(0.6 - 0.4)
    assert np.array_equal(features[8:], vector)


@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=40))
def test_best_cut_has_the_best_f1_of_the_grid(rows: list[tuple[float, bool]]) -> None:
    probabilities = np.array([p for p, _ in rows])
    confirmed = np.array([int(c) for _, c in rows])

    def f1(cut: float) -> float:
        predicted = probabilities >= cut
        hits = int((predicted & (confirmed == 1)).sum())
        total = int(predicted.sum()) + int(confirmed.sum())
        return 2 * hits / total if total else 0.0

    cut, precision, recall = best_cut(probabilities, confirmed)
    assert cut in _CUT_GRID
    assert all(f1(cut) >= f1(other) - 1e-12 for other in _CUT_GRID)
    predicted = probabilities >= cut
    if predicted.any():
        assert precision == (predicted & (confirmed == 1)).sum() / predicted.sum()
    if confirmed.any():
        assert recall == (predicted & (confirmed == 1)).sum() / confirmed.sum()


class _Narratives:
    def parents(self) -> dict[str, str | None]:
        return {"new": None}


def test_the_match_step_scores_with_the_stream_head_its_verdicts_trained() -> None:
    rng = np.random.default_rng(4)
    params = ScoringParams()
    bundled = np.stack([np.eye(DIM)[i % DIM] for i in range(3, 33)]).astype(np.float32)
    phrasing = ((PUSH + REPORT) / np.sqrt(2)).astype(np.float32)[np.newaxis, :]
    seed = build_seed_vectors("new", ["it"], phrasing, [], np.zeros((0, DIM)), bundled, [], params)
    prepared = PreparedSeeds(cast(Any, _Narratives()), {"new": seed}, {}, params, "test", bundled)
    assert apply_verdicts(prepared, _verdicts(3, True, PUSH, rng)) == {}
    assert prepared.stream_head is None  # three verdicts teach nothing yet
    apply_verdicts(prepared, _verdicts(20, True, PUSH, rng) + _verdicts(20, False, REPORT, rng))
    assert prepared.stream_head is not None
    scores = prepared.score(PUSH[np.newaxis, :].astype(np.float32), ["pushed"])
    assert scores["new"].stream_cut == prepared.stream_head.cut
    assert scores["new"].stream_probability is not None and scores["new"].stream_probability >= 0.5
    reported = prepared.score(REPORT[np.newaxis, :].astype(np.float32), ["reported"])["new"]
    assert reported.stream_probability is not None and reported.stream_probability < 0.5


def test_the_same_verdicts_in_another_order_train_the_same_head() -> None:
    rng = np.random.default_rng(6)
    verdicts = (
        _verdicts(15, True, PUSH, rng) + _verdicts(15, False, REPORT, rng) + _verdicts(8, True, REPORT, rng)
    )
    shuffled = list(verdicts)
    np.random.default_rng(0).shuffle(shuffled)  # type: ignore[arg-type]
    first, second = train_stream_head(verdicts), train_stream_head(shuffled)
    assert first is not None and second is not None
    assert (first.cut, first.cv_precision, first.cv_recall) == (
        second.cut,
        second.cv_precision,
        second.cv_recall,
    )
    probe = np.stack([v.features for v in verdicts if v.features is not None])
    assert np.array_equal(first.probabilities(probe), second.probabilities(probe))


def test_thresholds_an_analyst_chose_for_the_seed_keep_the_say() -> None:
    sure = {"stream_probability": 0.99, "stream_cut": 0.5}
    calibrated = resolve_thresholds("multilingual-e5-small", calibration=(0.2, 0.5))
    in_the_seed_file = resolve_thresholds("multilingual-e5-small", seed=(None, 0.5))
    defaults = resolve_thresholds("multilingual-e5-small", settings=(0.2, 0.5))
    assert calibrated.chosen_for_the_seed and in_the_seed_file.chosen_for_the_seed
    assert not defaults.chosen_for_the_seed
    assert decide(_score("s", 0.3, **sure), calibrated) == "suggest"
    assert decide(_score("s", 0.3, **sure), in_the_seed_file) == "suggest"
    assert decide(_score("s", 0.3, **sure), defaults) == "confirm"
    # which head the match row records as having decided follows the same rule
    assert deciding_head(_score("s", 0.3, **sure), calibrated) is None
    assert deciding_head(_score("s", 0.3, **sure), defaults) == DecidingHead("stream", 0.99, 0.5)
    own = deciding_head(_score("s", 0.3, head_probability=0.7, **sure), calibrated)
    assert own == DecidingHead("seed", 0.7, HEAD_CONFIRM_PROBABILITY)
