"""Language detection: Serbian Cyrillic is never Russian, BCMS is detected as BCMS."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from narrwatch.domain.text import transliterate_serbian
from narrwatch.steps.poll.language import BCMS_CODES, DETECTOR, detect_language, is_bcms

SERBIAN_ALPHABET = "абвгдђежзијклљмнњопрстћуфхцчџш"

SERBIAN_CYRILLIC = [
    "Председник Србије рекао је да Србија неће признати независност Косова.",
    "Влада је усвојила предлог закона о буџету за наредну годину.",
    "Председник у посети Москви",  # no letter only Serbian has
    "Министар спољних послова разговарао је са амбасадором Русије о енергетици.",
    "Народна скупштина Републике Српске усвојила је декларацију.",
]
RUSSIAN = [
    "Президент России Владимир Путин заявил, что Россия не признает независимость Косова.",
    "Министр иностранных дел провёл переговоры с коллегой из Сербии в Москве.",
]
BCMS_LATIN = [
    ("Predsednik Srbije rekao je da Srbija neće priznati nezavisnost Kosova.", "hbs"),
    ("Predsjednik Hrvatske rekao je da Hrvatska neće poslati vojnike u Ukrajinu.", "hbs"),
    ("Vijeće ministara BiH usvojilo je prijedlog budžeta za narednu godinu.", "hbs"),
    ("Vlada Crne Gore usvojila je prijedlog zakona o budžetu.", "hbs"),
]


@pytest.mark.parametrize("text", SERBIAN_CYRILLIC)
def test_serbian_cyrillic_is_serbian_never_russian(text: str) -> None:
    assert detect_language(text).language == "sr"
    assert detect_language(text, ["ru"]).language == "sr"  # even when the feed claims Russian


@pytest.mark.parametrize("text", RUSSIAN)
def test_russian_is_russian(text: str) -> None:
    assert detect_language(text).language == "ru"
    assert detect_language(text, ["sr"]).language == "ru"  # an RT/Sputnik feed may carry Russian


@pytest.mark.parametrize(("text", "generic"), BCMS_LATIN)
def test_bcms_latin_is_one_family_refined_by_the_feed(text: str, generic: str) -> None:
    assert detect_language(text).language == generic
    assert detect_language(text, ["hr"]).language == "hr"
    assert detect_language(text, ["cnr"]).language == "cnr"
    assert detect_language(text, ["bs", "hr", "sr"]).language == "hbs"  # ambiguous feed: the family


def test_other_languages_of_the_region() -> None:
    assert detect_language("Претседателот на Владата изјави дека ќе продолжат реформите.").language == "mk"
    assert (
        detect_language("Kryeministri i Kosovës tha se dialogu me Serbinë do të vazhdojë.").language == "sq"
    )
    assert (
        detect_language(
            "The European Union said talks with Belgrade and Pristina would resume.", ["sr"]
        ).language
        == "en"
    )


def test_short_text_falls_back_to_the_declared_language() -> None:
    assert detect_language("Foto", ["sq"]).language == "sq"
    assert detect_language("", []).language is None
    assert detect_language("Вести", ["sr"]).language == "sr"


def test_detector_name_is_recorded() -> None:
    assert DETECTOR.startswith("py3langid-") and len(DETECTOR) <= 40
    assert detect_language("Влада је усвојила предлог").detector == DETECTOR
    assert is_bcms("sr") and is_bcms("hbs") and not is_bcms("mk") and BCMS_CODES >= {"bs", "hr", "sr", "cnr"}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=SERBIAN_ALPHABET, min_size=2, max_size=10), min_size=3, max_size=12))
def test_any_text_in_the_serbian_alphabet_is_never_east_slavic(words: list[str]) -> None:
    text = " ".join(words)
    assert detect_language(text).language in {"sr", "mk"}
    latin = detect_language(transliterate_serbian(text)).language
    assert latin is not None
