"""Pure scoring: properties of the score, the decisions, the hierarchy and the thresholds."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from narrwatch.domain.lexical import REBUTTAL_CUES, fold_text, keyword_hits, keyword_probe
from narrwatch.domain.scoring import (
    ArticleBatch,
    ScoringParams,
    SeedScore,
    Thresholds,
    batch_calibration_inputs,
    build_seed_vectors,
    compete,
    decide,
    gate_by_parent,
    leaf_labels,
    model_default_thresholds,
    model_key,
    rescale,
    resolve_thresholds,
    score_article,
    top_level,
)

DIM = 8
LONG = "x" * 60  # a passage long enough to be evidence


def unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32).reshape(-1, DIM)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms == 0, 1, norms)).astype(np.float32)


vectors = st.integers(1, 5).flatmap(
    lambda n: arrays(np.float32, (n, DIM), elements=st.floats(-1, 1, width=32)).filter(
        lambda a: bool((np.linalg.norm(a, axis=1) > 0.1).all())
    )
)


def seed_from(positives: np.ndarray, negatives: np.ndarray, keywords: tuple[str, ...] = ()) -> object:
    background = unit(np.eye(DIM)[-2:])
    return build_seed_vectors(
        "s",
        [f"p{i}" for i in range(len(positives))],
        unit(positives),
        [f"n{i}" for i in range(len(negatives))],
        unit(negatives) if len(negatives) else np.zeros((0, DIM), np.float32),
        background,
        keywords,
        ScoringParams(),
    )


@given(vectors, vectors, vectors)
@settings(max_examples=60, deadline=None)
def test_score_is_bounded_and_ignores_passage_order(
    passages: np.ndarray, pos: np.ndarray, neg: np.ndarray
) -> None:
    seed = seed_from(pos, neg)
    texts = [LONG] * len(passages)
    first = score_article(unit(passages), texts, seed, ScoringParams())
    assert -1.0 <= first.score <= 1.0
    order = np.arange(len(passages))[::-1]
    second = score_article(unit(passages)[order], texts, seed, ScoringParams())
    assert second.score == pytest.approx(first.score, abs=1e-6)


@given(vectors, vectors)
@settings(max_examples=60, deadline=None)
def test_negatives_only_pull_down(passages: np.ndarray, pos: np.ndarray) -> None:
    without = score_article(
        unit(passages), [LONG] * len(passages), seed_from(pos, np.zeros((0, DIM))), ScoringParams()
    )
    # The worst negative for these passages: one equal to a passage.
    with_negative = score_article(
        unit(passages), [LONG] * len(passages), seed_from(pos, passages[:1]), ScoringParams()
    )
    assert with_negative.score <= without.score + 1e-6


def test_a_passage_closer_to_a_negative_loses() -> None:
    positive = unit(np.eye(DIM)[:1])
    negative = unit(np.eye(DIM)[1:2])
    passage = unit([[0.5, 0.9, 0, 0, 0, 0, 0, 0]])
    plain = score_article(passage, [LONG], seed_from(positive, np.zeros((0, DIM))), ScoringParams())
    pulled = score_article(passage, [LONG], seed_from(positive, negative), ScoringParams())
    assert pulled.score < plain.score
    assert pulled.negative_score > pulled.vector_score


def test_the_closest_passage_is_the_evidence_and_a_paraphrase_scores_near_one() -> None:
    positives = unit(np.eye(DIM)[:2])
    passages = unit([[0, 0, 1, 0, 0, 0, 0, 0], [1, 0.05, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0, 0]])
    score = score_article(
        passages,
        [LONG, LONG, LONG],
        seed_from(positives, np.zeros((0, DIM))),
        ScoringParams(lexical_weight=0, rebuttal_weight=0),
    )
    assert score.evidence_idx == 1
    assert score.nearest_positive == "p0"
    assert score.score > 0.95


def test_rescale_maps_the_floor_to_zero_and_one_to_one() -> None:
    floor = np.array([0.0, 0.5, 0.8], dtype=np.float32)
    sims = np.array([[0.0, 0.5, 0.8], [1.0, 1.0, 1.0]], dtype=np.float32)
    assert np.allclose(rescale(sims, floor), [[0, 0, 0], [1, 1, 1]])


def test_short_text_guard() -> None:
    positives = unit(np.eye(DIM)[:1])
    seed = seed_from(positives, np.zeros((0, DIM)))
    passages = unit([[1, 0, 0, 0, 0, 0, 0, 0], [0.6, 0.8, 0, 0, 0, 0, 0, 0]])
    # The short passage matches perfectly, but a long one exists: the long one is the evidence.
    score = score_article(passages, ["Short title", LONG], seed, ScoringParams())
    assert score.evidence_idx == 1 and not score.short_evidence
    # Only short text: it is the evidence, and the match can never be confirmed.
    only_short = score_article(passages[:1], ["Short title"], seed, ScoringParams())
    assert only_short.short_evidence and only_short.score > 0.9
    assert decide(only_short, Thresholds(0.1, 0.2)) == "suggest"


def test_keywords_and_rebuttal_cues_fold_scripts_and_accents() -> None:
    assert fold_text("Агресија НАТО") == fold_text("agresija nato") == "agresija nato"
    assert fold_text("Šmit, Đorđe, Џеп") == "smit, djordje, dzep"
    assert keyword_hits(["agresij*", "so-called", "1244"], "НАТО агресијом; the So Called state; 1244.") == [
        "agresij*",
        "so-called",
        "1244",
    ]
    assert keyword_hits(["veto"], "vetoed") == []  # whole words unless the keyword ends in *
    assert keyword_hits(REBUTTAL_CUES, "Fact-checkers found no evidence for the claim.") == [
        "claim*",
        "fact-check*",
        "no evidence",
    ]


_WORDS = st.sampled_from(
    ["nato", "agresij*", "so-called", "sanction", "sankcij*", "1244", "kosov*", "veto", "-", "*"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(_WORDS, min_size=1, max_size=3).map(" ".join), max_size=6),
    st.lists(
        st.sampled_from(
            ["NATO", "агресијом", "so called", "Sanctions", "санкције", "vetoed", "1244", "Kosovo", ".", " "]
        ),
        max_size=12,
    ).map(" ".join),
)
def test_keyword_hits_are_the_patterns_hits(keywords: list[str], text: str) -> None:
    # the substring test in front of each pattern only saves time: it never changes a hit
    folded = fold_text(text)
    assert keyword_hits(keywords, folded, folded=True) == [
        k for k in keywords if keyword_probe(k)[1].search(folded)
    ]


@given(st.integers(0, 3), st.integers(0, 3))
def test_keywords_raise_and_rebuttals_lower_the_score(n_keywords: int, n_cues: int) -> None:
    positives = unit(np.eye(DIM)[:1])
    seed = seed_from(positives, np.zeros((0, DIM)), keywords=("alpha", "beta", "gamma"))
    passage = unit([[0.7, 0.7, 0, 0, 0, 0, 0, 0]])
    words = ["alpha", "beta", "gamma"][:n_keywords] + ["misleading", "debunked", "denied"][:n_cues]
    text = LONG + " " + " ".join(words)
    base = score_article(passage, [LONG], seed, ScoringParams(), lexical_text=LONG)
    scored = score_article(passage, [LONG], seed, ScoringParams(), lexical_text=text)
    assert scored.lexical_score == pytest.approx(min(1, n_keywords / 3))
    expected = base.score + 0.15 * min(1, n_keywords / 3) - 0.15 * min(1, n_cues / 2)
    assert scored.score == pytest.approx(expected, abs=1e-6)


def make_score(value: float, short: bool = False) -> SeedScore:
    return SeedScore("s", value, value, 0.0, 0, value, "p", -1.0, short)


@given(st.floats(-1, 1), st.floats(-1, 1), st.floats(-1, 1))
def test_decide_is_monotone_in_the_score(a: float, b: float, suggest: float) -> None:
    thresholds = Thresholds(suggest, max(suggest, 0.5))
    rank = {None: 0, "suggest": 1, "confirm": 2}
    low, high = sorted((a, b))
    assert rank[decide(make_score(low), thresholds)] <= rank[decide(make_score(high), thresholds)]
    if suggest > -1:
        assert decide(make_score(suggest - 1e-6), thresholds) is None
    assert decide(make_score(suggest), thresholds) is not None


PARENTS = {"top": None, "child": "top", "grandchild": "child", "other": None}
levels = st.sampled_from([None, "suggest", "confirm"])


@given(st.fixed_dictionaries(dict.fromkeys(PARENTS, levels)))
def test_sub_narratives_only_under_a_matched_parent(raw: dict[str, str | None]) -> None:
    decided = gate_by_parent(raw, PARENTS)
    rank = {"suggest": 1, "confirm": 2}
    for seed_id, level in decided.items():
        parent = PARENTS[seed_id]
        assert raw[seed_id] is not None
        if parent is not None:
            assert parent in decided and rank[level] <= rank[decided[parent]]
    assert ("other" in decided) == (raw["other"] is not None)


@given(st.sets(st.sampled_from(list(PARENTS))))
def test_leaf_convention(predicted: set[str]) -> None:
    leaves = leaf_labels(predicted, PARENTS)
    assert leaves <= predicted
    for seed_id in predicted - leaves:  # every dropped id is the ancestor of a kept one
        assert any(top_level(leaf, PARENTS) == top_level(seed_id, PARENTS) for leaf in leaves)
    for a in leaves:
        for b in leaves:
            assert a == b or PARENTS.get(b) != a


def test_leaf_convention_examples() -> None:
    assert leaf_labels({"top", "child"}, PARENTS) == {"child"}
    assert leaf_labels({"top"}, PARENTS) == {"top"}
    assert leaf_labels({"top", "child", "grandchild", "other"}, PARENTS) == {"grandchild", "other"}
    assert top_level("grandchild", PARENTS) == "top"


def test_threshold_layers() -> None:
    model = "bundled:all-MiniLM-L6-v2"
    default = model_default_thresholds(model)
    assert default.source == "model:all-minilm-l6-v2"
    assert resolve_thresholds(model) == default
    assert resolve_thresholds(model, settings=(0.3, None)).suggest == 0.3
    seeded = resolve_thresholds(model, settings=(0.3, 0.4), seed=(None, 0.6))
    assert (seeded.suggest, seeded.confirm, seeded.source) == (0.3, 0.6, "seed")
    calibrated = resolve_thresholds(model, seed=(0.2, 0.6), calibration=(0.25, 0.8))
    assert (calibrated.suggest, calibrated.confirm, calibrated.source) == (0.25, 0.8, "calibration")
    # Never confirm below the suggest level.
    raised = resolve_thresholds(model, seed=(0.9, None))
    assert raised.confirm >= raised.suggest == 0.9
    unknown = model_default_thresholds("/models/some-other-model")
    assert unknown.source == "rule:unknown-model"
    assert (unknown.suggest, unknown.confirm) == (default.suggest, default.confirm)


@pytest.mark.parametrize(
    "name",
    [
        "bundled:all-MiniLM-L6-v2",
        "sentence-transformers/all-MiniLM-L6-v2",
        "/opt/models/all-MiniLM-L6-v2/",
        "C:\\models\\all-MiniLM-L6-v2",
    ],
)
def test_model_key(name: str) -> None:
    assert model_key(name) == "all-minilm-l6-v2"


def test_background_floor_discounts_a_phrasing_that_looks_like_everything() -> None:
    background = unit(np.eye(DIM)[4:6])
    generic = unit([[0, 0, 0, 0, 1, 1, 0.2, 0]])  # close to the background
    specific = unit(np.eye(DIM)[:1])
    seed = build_seed_vectors(
        "s",
        ["g", "s"],
        np.vstack([generic, specific]),
        [],
        np.zeros((0, DIM), np.float32),
        background,
        (),
        ScoringParams(),
    )
    assert seed.positive_floor[0] > 0.5 and seed.positive_floor[1] == 0.0


def _score(seed_id: str, value: float) -> SeedScore:
    return SeedScore(seed_id, value, value, 0.0, 0, value, "", -1.0, False)


def test_a_confirmed_seed_must_lead_its_rivals_by_the_gap() -> None:
    parents: dict[str, str | None] = {"a": None, "b": None, "a1": "a", "a2": "a"}
    scores = {"a": _score("a", 0.8), "b": _score("b", 0.75), "a1": _score("a1", 0.6), "a2": _score("a2", 0.3)}
    levels = {"a": "confirm", "b": "confirm", "a1": "confirm", "a2": None}
    decided = compete(levels, scores, parents, gap=0.1)  # type: ignore[arg-type]
    # a and b are 0.05 apart: neither is confirmed; a1 leads its only sibling a2 by 0.3
    assert decided == {"a": "suggest", "b": "suggest", "a1": "confirm", "a2": None}
    # no gap never downgrades; 0 keeps only the best of each group
    assert compete(levels, scores, parents, gap=None) == levels  # type: ignore[arg-type]
    assert compete(levels, scores, parents, gap=0.0)["b"] == "suggest"  # type: ignore[arg-type]


def test_a_seed_without_rivals_keeps_its_level() -> None:
    decided = compete({"a": "confirm"}, {"a": _score("a", 0.5)}, {"a": None}, gap=0.5)
    assert decided == {"a": "confirm"}


def test_the_unclipped_score_keeps_what_the_clip_loses() -> None:
    seed = seed_from(np.eye(DIM)[:1], np.eye(DIM)[1:2])
    near_negative = unit(np.eye(DIM)[1:2] + 0.01)
    found = score_article(near_negative, [LONG], seed, ScoringParams())  # type: ignore[arg-type]
    assert found.score == -1.0
    assert found.unclipped is not None and found.unclipped < -1.0
    assert found.calibration_input == found.unclipped


#: Passage texts mixing what changes a score: length (the short-text guard), keywords, rebuttal cues.
passage_texts = st.sampled_from(["short", LONG, f"{LONG} sovereignty", f"{LONG} {REBUTTAL_CUES[0]}", "nato"])


@given(
    st.lists(
        st.integers(0, 4).flatmap(
            lambda n: st.tuples(
                arrays(np.float32, (n, DIM), elements=st.floats(-1, 1, width=32)),
                st.lists(passage_texts, min_size=n, max_size=n),
            )
        ),
        max_size=6,
    ),
    vectors,
    vectors,
)
@settings(max_examples=80, deadline=None)
def test_a_batch_scores_each_article_as_score_article_does(
    articles: list[tuple[np.ndarray, list[str]]], pos: np.ndarray, neg: np.ndarray
) -> None:
    seed = seed_from(pos, neg, keywords=("sovereign", "nato"))
    params = ScoringParams()
    articles = [(unit(passages) if len(passages) else passages, texts) for passages, texts in articles]
    batch = ArticleBatch.of(articles, params)
    expected = [
        score_article(passages, texts, seed, params).calibration_input for passages, texts in articles
    ]  # type: ignore[arg-type]
    assert batch_calibration_inputs(batch, seed, params).tolist() == pytest.approx(expected, abs=1e-6)  # type: ignore[arg-type]
