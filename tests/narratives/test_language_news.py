"""The parallel data and the intervals of bench/match_languages.py (bench/language_news.py)."""

from __future__ import annotations

import numpy as np

from bench.language_news import (
    FACTOR,
    LANGUAGES,
    PASSES_FOR_FACTOR,
    bootstrap_weights,
    document_counts,
    in_bundle,
    load_documents,
    make_units,
    ratio_interval,
    units_needed,
    verdict,
)


def test_both_sets_are_parallel_in_every_language_and_leave_out_the_bundled_documents() -> None:
    documents = load_documents()
    ntrex = [doc for doc in documents if doc.source == "ntrex"]
    flores = [doc for doc in documents if doc.source == "flores"]
    assert sum(len(doc.sentences["en"]) for doc in ntrex) == 1559
    assert sum(len(doc.sentences["en"]) for doc in flores) == 2009
    assert not any(in_bundle(doc.key) for doc in ntrex)
    for doc in documents:
        assert {len(doc.sentences[lang]) for lang in LANGUAGES} == {len(doc.sentences["en"])}
        assert all(text.strip() for lang in LANGUAGES for text in doc.sentences[lang])
    first = flores[0].sentences
    assert first["sr-Latn"][0].startswith("U ponedeljak") and first["sr-Cyrl"][0].startswith("У понедељак")


def test_halves_split_by_document_and_articles_keep_a_document_whole() -> None:
    documents = load_documents(["flores"])
    assert 0.4 < np.mean([doc.half for doc in documents]) < 0.6
    sentences = make_units(documents, "sentence")
    articles = make_units(documents, "article", lambda text: [text[: len(text) // 2], text[len(text) // 2 :]])
    assert len(sentences) == 2009 and len(articles) == len(documents)
    whole = "".join(articles[0].passages["hr"])
    assert whole == " ".join(unit.passages["hr"][0] for unit in sentences if unit.document == 0)


def test_interval_of_a_rate_ratio_covers_the_truth_and_narrows_with_counts() -> None:
    rng = np.random.default_rng(3)
    documents = rng.integers(0, 400, size=20000)
    weights = bootstrap_weights(400, draws=1000)
    widths = []
    for rate in (0.002, 0.02):
        english = rng.random((20000, 1)) < rate
        other = rng.random((20000, 1)) < rate * 1.2
        low, high = ratio_interval(
            document_counts(other, documents, 400), document_counts(english, documents, 400), weights
        )
        assert low[0] < 1.2 < high[0]
        widths.append(high[0] / low[0])
    assert widths[1] < widths[0]


def test_no_passes_anywhere_gives_no_interval_and_no_units_figure() -> None:
    none = np.zeros((10, 1))
    low, high = ratio_interval(none, none, bootstrap_weights(10, draws=50))
    assert np.isnan(low[0]) and verdict(low[0], high[0]) == "no passes"
    assert units_needed(0.0) is None
    assert units_needed(0.01) == PASSES_FOR_FACTOR * 100


def test_verdict_reads_the_interval_against_the_factor() -> None:
    assert verdict(0.8, 1.3) == "within"
    assert verdict(0.8, FACTOR + 0.1) == "unsure"
    assert verdict(FACTOR + 0.1, 3.0) == "OUTSIDE"
    assert verdict(0.1, 0.5) == "OUTSIDE"


def test_a_single_pass_against_none_is_no_evidence_either_way() -> None:
    english = np.zeros((30, 1))
    one = np.zeros((30, 1))
    one[4, 0] = 1
    low, high = ratio_interval(one, english, bootstrap_weights(30, draws=200))
    assert low[0] < 1 / FACTOR and high[0] == np.inf and verdict(low[0], high[0]) == "unsure"
    low, high = ratio_interval(english, one, bootstrap_weights(30, draws=200))
    assert low[0] == 0.0 and high[0] > FACTOR and verdict(low[0], high[0]) == "unsure"
