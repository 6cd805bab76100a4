"""Lexical signals: text folded across scripts, keyword patterns, and rebuttal cues (pure, stdlib)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

# Serbian and Macedonian Cyrillic to Latin (the official, lossless mapping), plus the Russian letters
# the region's outlets use; keywords and text are compared after the same folding.
_CYRILLIC_TO_LATIN = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "ђ": "đ", "е": "e", "ж": "ž", "з": "z",
    "и": "i", "ј": "j", "к": "k", "л": "l", "љ": "lj", "м": "m", "н": "n", "њ": "nj", "о": "o",
    "п": "p", "р": "r", "с": "s", "т": "t", "ћ": "ć", "у": "u", "ф": "f", "х": "h", "ц": "c",
    "ч": "č", "џ": "dž", "ш": "š", "ѓ": "gj", "ќ": "kj", "ѕ": "dz", "й": "j", "ы": "y", "э": "e",
    "ю": "ju", "я": "ja", "ё": "jo", "щ": "šč", "ъ": "", "ь": "", "і": "i", "ї": "ji", "є": "je",
}  # fmt: skip


#: Words of reporting at a distance and of rebuttal, in English and BCMS (Cyrillic is folded to Latin
#: before matching). Words that outlets pushing a narrative use as much ("disinformation",
#: "propaganda", "accuse") are left out on purpose.
REBUTTAL_CUES: tuple[str, ...] = (
    "claim*", "fact-check*", "factcheck*", "misleading", "misrepresent*", "no evidence", "false",
    "falsely", "debunk*", "reject*", "dismiss*", "dispute*", "rhetoric", "framing", "deny", "denies",
    "denied", "conspiracy theor*",
    "tvrdnj*", "netačn*", "neistin*", "obmanjuj*", "odbacuj*", "odbaci*", "demant*", "nema dokaza",
    "bez dokaza", "retorik*",
)  # fmt: skip


_TO_LATIN = str.maketrans({**_CYRILLIC_TO_LATIN, "đ": "dj"})
_COMBINING = re.compile(r"[\u0300-\u036f]")


def fold_text(text: str) -> str:
    """Lower case, Cyrillic to Latin, diacritics off: "Агресија", "agresija", "AGRESIJA" agree."""
    latin = text.casefold().translate(_TO_LATIN)
    if latin.isascii():
        return latin
    return _COMBINING.sub("", unicodedata.normalize("NFKD", latin))


@lru_cache(maxsize=4096)
def keyword_probe(keyword: str) -> tuple[str, re.Pattern[str]]:
    """A keyword as a regex over folded text (words in order, ``*`` ends a prefix, word bounds kept),
    with the longest literal that every match of it contains."""
    tokens = [token for token in re.split(r"[\s\-]+", fold_text(keyword)) if token]
    parts = []
    for token in tokens:
        stem = token.rstrip("*")
        body = re.escape(stem)
        parts.append(body + r"\w*" if token.endswith("*") else body)
    literal = max((token.rstrip("*") for token in tokens), key=len, default="")
    return literal, re.compile(r"(?<!\w)" + r"[\W_]+".join(parts) + r"(?!\w)")


@lru_cache(maxsize=256)
def fold_text_cached(text: str) -> str:
    """:func:`fold_text` of an article's whole text, cached for the seeds scored after the first."""
    # An article is scored against every seed: fold its text once, not once per seed.
    return fold_text(text)


@lru_cache(maxsize=256)
def rebuttal_hits(folded: str) -> tuple[str, ...]:
    """The :data:`REBUTTAL_CUES` found in already folded text."""
    return tuple(keyword_hits(REBUTTAL_CUES, folded, folded=True))


def keyword_hits(keywords: Iterable[str], text: str, *, folded: bool = False) -> list[str]:
    """The distinct keywords found in ``text`` (``folded``: the text went through fold_text already)."""
    target = text if folded else fold_text(text)
    found = []
    for keyword in keywords:
        # Most keywords are absent from most articles: a substring test rules them out far faster
        # than the pattern's look-behind, tried at every position, can.
        literal, pattern = keyword_probe(keyword)
        if literal in target and pattern.search(target):
            found.append(keyword)
    return found
