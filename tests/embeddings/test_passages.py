"""Passages: every one fits the window, nothing is lost, the title and lead come first."""

from __future__ import annotations

import re
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from narrwatch.config import BUNDLED_MODEL
from narrwatch.embeddings.encoder import SentenceEncoder
from narrwatch.embeddings.model_source import resolve_model_dir
from narrwatch.embeddings.passages import passage_token_budget, sentences, split_passages


class TokenizerOnly:
    """The bundled model's real tokenizer with a small window: many splits, no model to load."""

    model_name = "tokenizer-only"
    backend = "none"
    fingerprint = "0" * 16
    dimension = 0
    special_tokens = 2

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self.calls = 0

    def count_tokens(self, text: str) -> int:
        self.calls += 1
        return len(_tokenizer().encode(text, add_special_tokens=False).ids)

    def encode_passages(self, texts: object) -> object:
        raise NotImplementedError

    encode_queries = encode_passages


@cache
def _tokenizer():  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(resolve_model_dir(BUNDLED_MODEL) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


LATIN = "abcdefghijklmnopqrstuvwxyzčćšžđ"
CYRILLIC = "абвгдђежзијклљмнњопрстћуфхцчџш"
word = st.one_of(
    st.text(alphabet=LATIN, min_size=1, max_size=12),
    st.text(alphabet=CYRILLIC, min_size=1, max_size=12),
    st.text(alphabet=LATIN.upper() + CYRILLIC.upper(), min_size=1, max_size=3),
    st.integers(0, 10**6).map(str),
    st.sampled_from(["U.S.", "e.g.", "approx.", "NATO", "EU", "—", "«", "»", "(", ")"]),
)
sentence = st.builds(
    lambda words, end: " ".join(words) + end,
    st.lists(word, min_size=1, max_size=60),
    st.sampled_from([".", "!", "?", "…", "", '."', ";"]),
)
body = st.builds(
    lambda parts, separators: "".join(p + s for p, s in zip(parts, separators, strict=False)),
    st.lists(sentence, max_size=25),
    st.lists(st.sampled_from([" ", "  ", "\n", "\n\n", "\t", " \r\n"]), min_size=25, max_size=25),
)
title = st.builds(" ".join, st.lists(word, max_size=15))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=title, text=body, window=st.sampled_from([16, 40, 128, 256]))
def test_every_passage_fits_and_no_text_is_lost(title: str, text: str, window: int) -> None:
    encoder = TokenizerOnly(window)
    budget = passage_token_budget(encoder)
    passages = split_passages(title, text, encoder)
    for passage in passages:
        assert passage.strip() == passage and passage
        assert encoder.count_tokens(passage) <= budget
    # Only whitespace changes: the characters, in order, are exactly the title's and the text's.
    assert squash("".join(passages)) == squash(title + text)
    assert split_passages(title, text, encoder) == passages  # deterministic
    if squash(title) and encoder.count_tokens(" ".join(title.split())) <= budget:
        assert passages[0].startswith(" ".join(title.split()))


def test_empty_article_has_no_passages() -> None:
    encoder = TokenizerOnly(64)
    assert split_passages("", "", encoder) == []
    assert split_passages("  ", "\n\n \t", encoder) == []
    assert split_passages("Only a title", "", encoder) == ["Only a title"]


def test_short_article_is_one_passage_with_title_then_lead() -> None:
    passages = split_passages(
        "Talks stall", "Parties met on Monday.\n\nNo deal was made.", TokenizerOnly(256)
    )
    assert passages == ["Talks stall\nParties met on Monday.\nNo deal was made."]


def test_long_article_is_cut_at_sentences_into_balanced_passages() -> None:
    lead = "The minister said on Monday that the plan would go ahead."
    filler = " ".join(f"Sentence number {i} adds another detail to the report." for i in range(40))
    encoder = TokenizerOnly(128)
    passages = split_passages("Plan goes ahead", f"{lead} {filler}", encoder)
    assert len(passages) > 2
    assert passages[0].startswith(f"Plan goes ahead\n{lead}")
    for passage in passages:
        assert passage.endswith("."), "cut between sentences, not inside one"
    sizes = [encoder.count_tokens(p) for p in passages]
    assert min(sizes) >= 0.75 * max(sizes), f"balanced sizes, not a full passage and a scrap: {sizes}"


def test_text_without_punctuation_is_cut_between_words() -> None:
    encoder = TokenizerOnly(32)
    text = " ".join(f"word{i}" for i in range(300))
    passages = split_passages("", text, encoder)
    assert len(passages) > 5
    assert " ".join(passages).split() == text.split()


def test_sentences_keep_abbreviations_and_split_paragraphs() -> None:
    text = "Prices rose, e.g. for bread. Then they fell!\nA new line «Quoted.» Next one"
    assert sentences(text) == [
        "Prices rose, e.g. for bread.",
        "Then they fell!",
        "A new line «Quoted.»",
        "Next one",
    ]


def test_cyrillic_needs_more_passages_than_latin_and_all_fit(int8_encoder: SentenceEncoder) -> None:
    """The real encoder: Serbian Cyrillic takes several times more wordpieces than Latin script."""
    cyrillic = " ".join(
        ["Влада је у понедељак саопштила да план неће бити прихваћен без гласања у скупштини."] * 40
    )
    latin = " ".join(
        ["Vlada je u ponedeljak saopštila da plan neće biti prihvaćen bez glasanja u skupštini."] * 40
    )
    budget = passage_token_budget(int8_encoder)
    assert budget == int8_encoder.max_tokens - 2 == 254
    cyr = split_passages("Наслов", cyrillic, int8_encoder)
    lat = split_passages("Naslov", latin, int8_encoder)
    assert len(cyr) > len(lat) > 1
    for passage in cyr + lat:
        assert int8_encoder.count_tokens(passage) <= budget
    assert squash("".join(cyr)) == squash("Наслов" + cyrillic)


def test_window_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="no room"):
        split_passages("t", "text", TokenizerOnly(6))
