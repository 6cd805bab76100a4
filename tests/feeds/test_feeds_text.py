"""Transliteration, plain text from HTML, title and story keys (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from narrwatch.domain.text import (
    clean_text,
    html_to_text,
    normalise_title,
    story_key,
    title_key,
    transliterate_serbian,
    truncate,
)

SERBIAN_CYRILLIC = "абвгдђежзијклљмнњопрстћуфхцчџш"
SERBIAN_LATIN = [
    "a",
    "b",
    "v",
    "g",
    "d",
    "đ",
    "e",
    "ž",
    "z",
    "i",
    "j",
    "k",
    "l",
    "lj",
    "m",
    "n",
    "nj",
    "o",
    "p",
    "r",
    "s",
    "t",
    "ć",
    "u",
    "f",
    "h",
    "c",
    "č",
    "dž",
    "š",
]


def test_transliteration_follows_the_official_alphabet_letter_by_letter() -> None:
    assert len(SERBIAN_CYRILLIC) == len(SERBIAN_LATIN) == 30
    for cyrillic, latin in zip(SERBIAN_CYRILLIC, SERBIAN_LATIN, strict=True):
        assert transliterate_serbian(cyrillic) == latin
        assert transliterate_serbian(cyrillic.upper() + "а") == latin[0].upper() + latin[1:] + "a"


def test_transliteration_of_sentences_and_capitals() -> None:
    assert transliterate_serbian("Вучић: Србија неће признати Косово") == "Vučić: Srbija neće priznati Kosovo"
    assert transliterate_serbian("ЉУБАВ и Љубав, ЏЕП и Џеп") == "LJUBAV i Ljubav, DŽEP i Džep"
    assert transliterate_serbian("Путин заявил: ы, э, я") == "Putin zaяvil: ы, э, я"  # only Serbian letters


@given(st.text(alphabet=SERBIAN_CYRILLIC + SERBIAN_CYRILLIC.upper() + " .,:!?0123456789", max_size=80))
def test_transliteration_leaves_no_serbian_cyrillic_and_is_fixed(text: str) -> None:
    latin = transliterate_serbian(text)
    assert not any(char in SERBIAN_CYRILLIC for char in latin.lower())
    assert transliterate_serbian(latin) == latin  # Latin input is left alone
    assert latin == transliterate_serbian(text)


@given(st.text(alphabet=SERBIAN_CYRILLIC + " ", min_size=1, max_size=60))
def test_cyrillic_and_latin_spellings_of_a_title_share_one_key(text: str) -> None:
    assert normalise_title(text) == normalise_title(transliterate_serbian(text))
    assert title_key(text) == title_key(transliterate_serbian(text))


def test_title_key_ignores_case_punctuation_and_diacritics() -> None:
    forms = [
        "Вучић: Србија неће признати независност Косова",
        "Vučić: Srbija neće priznati nezavisnost Kosova",
        "VUCIC - Srbija nece priznati nezavisnost Kosova!",
        "  vučić srbija   neće priznati nezavisnost kosova ",
    ]
    assert len({title_key(form) for form in forms}) == 1
    assert title_key("Đoković osvojio turnir u Beogradu danas") == title_key(
        "Djokovic osvojio turnir u Beogradu danas"
    )


def test_short_titles_have_no_title_key() -> None:
    assert title_key("Foto") == ""
    assert title_key("Vremenska prognoza") == ""
    assert title_key("Kursna lista NBS") == ""
    assert title_key("Vremenska prognoza za sutra, utorak") != ""


def test_story_key_drops_markers_and_outlet_suffixes() -> None:
    assert story_key("VIDEO: Vučić o Kosovu i Metohiji | N1", "a") == story_key(
        "Vučić o Kosovu i Metohiji", "b"
    )
    assert story_key("Vučić o Kosovu i Metohiji", "a") != story_key("Kurti o Kosovu i Metohiji", "a")
    assert story_key("Foto", "https://a.test/1") != story_key("Foto", "https://a.test/2")


def test_html_to_text() -> None:
    html = (
        "<p>Prvi <b>pasus</b> &amp; <a href='x'>veza</a>.</p><script>alert(1)</script>"
        "<style>p{}</style><ul><li>jedan</li><li>dva</li></ul>Kraj&nbsp;teksta&#33;"
    )
    assert html_to_text(html) == "Prvi pasus & veza.\n\njedan\n\ndva\n\nKraj teksta!"
    assert html_to_text("a < b and c > d") == "a < b and c > d"
    assert html_to_text("Tom &amp; Jerry") == "Tom & Jerry"
    assert html_to_text("") == ""


def test_html_to_text_caps_huge_input_quickly() -> None:
    text = html_to_text("<p>" + "reč " * 500_000 + "</p>", max_chars=1000)
    assert len(text) <= 1001
    assert text.endswith("…")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=500))
def test_html_to_text_never_returns_markup_controls_or_nul(text: str) -> None:
    result = html_to_text(text, max_chars=300)
    assert "\x00" not in result
    assert len(result) <= 301
    assert "<script" not in result.lower() or "<script" in text.lower()


@pytest.mark.parametrize(("raw", "clean"), [("a\x00b", "ab"), ("a\x07b\ufffec", "abc"), ("e\u0301", "é")])
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_truncate_cuts_at_a_word_boundary() -> None:
    assert truncate("short", 10) == "short"
    assert truncate("one two three four", 12) == "one two…"
