"""Language of an article: py3langid plus script rules for the region.

The rules, applied in order:

1. Script. Text whose letters are mostly Cyrillic is decided among the Cyrillic languages only.
   Letters that exist in one alphabet settle it: ``ђ ћ`` are Serbian, ``ѓ ќ ѕ`` Macedonian. Cyrillic
   text written entirely with letters of the Serbian alphabet (no ``ы э ё й ъ ь я ю щ`` ...) is never
   Russian, Ukrainian, Belarusian or Bulgarian: those languages cannot write a sentence without such
   letters, so it is Serbian or Macedonian, and py3langid chooses between the two.
2. Latin text goes to py3langid. Bosnian, Croatian, Serbian and Montenegrin (BCMS) are one language
   with four standards that no n-gram model separates reliably, so they are decided as a family: the
   family wins when its summed probability beats every other language; ``đ`` also settles a
   Slovene/Czech/Slovak/Polish guess for BCMS.
3. The code stored for BCMS text (the consistent rule): the feed's declared language when the feed
   declares exactly one of bs/hr/sr/cnr; otherwise ``sr`` for Cyrillic (the only BCMS standard
   written mainly in Cyrillic) and ``hbs`` (ISO 639-3 Serbo-Croatian) for Latin.
4. Too little text to judge (fewer than :data:`MIN_LETTERS` letters): the feed's declared language
   when it declares exactly one, else the detector's best guess, else None.

The detector name stored with each article is :data:`DETECTOR`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

BCMS_CODES = frozenset({"bs", "hr", "sr", "cnr", "hbs"})
GENERIC_BCMS = "hbs"
MIN_LETTERS = 12
_SAMPLE_CHARS = 2_000

_SERBIAN_ONLY = frozenset("ђћЂЋ")
_MACEDONIAN_ONLY = frozenset("ѓќѕЃЌЅ")
_SERBIAN_ALPHABET = frozenset("абвгдђежзијклљмнњопрстћуфхцчџш")
_CYRILLIC_LANGUAGES = ("sr", "mk", "ru", "bg", "uk", "be")
_SERBIAN_LATIN_ONLY = frozenset("đĐ")


def _detector_name() -> str:
    try:
        return f"py3langid-{version('py3langid')}+scripts"
    except PackageNotFoundError:  # pragma: no cover - py3langid is a dependency
        return "py3langid+scripts"


DETECTOR = _detector_name()


@dataclass(frozen=True)
class Detection:
    language: str | None
    confidence: float
    detector: str = DETECTOR


_identifier_lock = threading.Lock()
_identifier: Any = None


def _get_identifier() -> Any:
    """The py3langid model (0.5 s to load): loaded once per process, on first use."""
    global _identifier
    with _identifier_lock:
        if _identifier is None:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        return _identifier


def _rank(text: str) -> list[tuple[str, float]]:
    identifier = _get_identifier()
    with _identifier_lock:  # rank() is not documented as thread-safe
        return [(str(code), float(score)) for code, score in identifier.rank(text)]


def _declared_bcms(declared: Sequence[str]) -> str | None:
    bcms = [code for code in declared if code in BCMS_CODES and code != GENERIC_BCMS]
    return bcms[0] if len(set(bcms)) == 1 else None


def _bcms_code(declared: Sequence[str], cyrillic: bool) -> str:
    return _declared_bcms(declared) or ("sr" if cyrillic else GENERIC_BCMS)


def detect_language(text: str, declared: Sequence[str] = ()) -> Detection:
    """Detect the language of ``text`` by the rules in this module's docstring."""
    sample = text[:_SAMPLE_CHARS]
    letters = [char for char in sample if char.isalpha()]
    fallback = declared[0] if len(declared) == 1 else None
    if len(letters) < MIN_LETTERS:
        if fallback is not None:
            return Detection(fallback, 0.0)
        if not letters:
            return Detection(None, 0.0)
    cyrillic_letters = [char for char in letters if "\u0400" <= char <= "\u04ff"]
    if len(cyrillic_letters) * 2 > len(letters):
        return _detect_cyrillic(sample, cyrillic_letters, declared)
    return _detect_latin(sample, letters, declared)


def _detect_cyrillic(sample: str, letters: list[str], declared: Sequence[str]) -> Detection:
    letter_set = set(letters)
    if letter_set & _SERBIAN_ONLY:
        return Detection(_bcms_code(declared, cyrillic=True), 1.0)
    if letter_set & _MACEDONIAN_ONLY:
        return Detection("mk", 1.0)
    serbian_writable = all(char.lower() in _SERBIAN_ALPHABET for char in letters)
    candidates = ("sr", "mk") if serbian_writable else _CYRILLIC_LANGUAGES
    ranked = [(code, score) for code, score in _rank(sample) if code in candidates]
    total = sum(score for _code, score in ranked) or 1.0
    code, score = ranked[0] if ranked else ("sr", 0.0)
    if code == "sr":
        return Detection(_bcms_code(declared, cyrillic=True), score / total)
    return Detection(code, score / total)


def _detect_latin(sample: str, letters: list[str], declared: Sequence[str]) -> Detection:
    ranked = _rank(sample)
    bcms_score = sum(score for code, score in ranked if code in BCMS_CODES)
    best_other = next(((code, score) for code, score in ranked if code not in BCMS_CODES), ("", 0.0))
    if bcms_score >= best_other[1]:
        return Detection(_bcms_code(declared, cyrillic=False), bcms_score)
    if best_other[0] in ("sl", "cs", "sk", "pl") and set(letters) & _SERBIAN_LATIN_ONLY:
        return Detection(_bcms_code(declared, cyrillic=False), bcms_score)
    return Detection(best_other[0] or None, best_other[1])


def is_bcms(code: str | None) -> bool:
    return code in BCMS_CODES
