"""Plain text from feed HTML, Serbian transliteration, and the title keys dedup and counting use.

Everything here is pure (stdlib only) and deterministic.

Keys:

* :func:`normalise_title` folds a title to a comparison form: Serbian Cyrillic transliterated to
  Latin, case folded, diacritics removed (``đ`` -> ``dj``, as Serbian is written without them), every
  run of non-alphanumerics one space. A Cyrillic and a Latin spelling of one title, with or without
  diacritics, give the same string.
* :func:`title_key` is the sha256 of that form, or ``""`` for titles of fewer than
  :data:`MIN_TITLE_KEY_WORDS` words: "Foto", "Vremenska prognoza" and similar recurring short titles
  must not make different articles of one outlet one article.
* :func:`story_key` groups copies of one story across outlets (agency copy republished under the same
  headline): the sorted set of the title's content words, with markers such as "VIDEO" and an
  outlet suffix ("... | N1") removed; titles with too few words fall back to the caller's key.
"""

from __future__ import annotations

import hashlib
import re
import textwrap
import unicodedata
from html.parser import HTMLParser

MIN_TITLE_KEY_WORDS = 4
MIN_STORY_KEY_WORDS = 3

_SERBIAN_CYRILLIC = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "ђ": "đ", "е": "e", "ж": "ž", "з": "z",
    "и": "i", "ј": "j", "к": "k", "л": "l", "љ": "lj", "м": "m", "н": "n", "њ": "nj", "о": "o",
    "п": "p", "р": "r", "с": "s", "т": "t", "ћ": "ć", "у": "u", "ф": "f", "х": "h", "ц": "c",
    "ч": "č", "џ": "dž", "ш": "š",
}  # fmt: skip
_DIGRAPHS = {"Љ": "Lj", "Њ": "Nj", "Џ": "Dž"}

#: Words that mark the form of an item rather than its story (Serbian, Croatian, Bosnian,
#: Montenegrin, Albanian, Macedonian after transliteration, English).
_MARKER_WORDS = frozenset(
    {
        "video", "foto", "fotografije", "galerija", "audio", "uzivo", "live", "update", "breaking",
        "ekskluzivno", "exclusive", "najnovije", "hitno", "dokumentarac", "intervju", "interview",
        "anketa", "mapa", "infografika", "podcast", "pise", "autor", "kolumna", "komentar", "opinion",
        "lajm", "ekskluzive", "foto-video", "vesti", "vijesti", "news",
    }
)  # fmt: skip
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_INVALID_CHARS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]"
)
_HORIZONTAL_SPACE = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_OUTLET_SUFFIX = re.compile(r"\s+\|\s+[^|]{1,30}$")

_SKIPPED_ELEMENTS = frozenset(
    {"script", "style", "noscript", "template", "svg", "math", "iframe", "object", "head", "title"}
)
_BLOCK_ELEMENTS = frozenset(
    {
        "p", "div", "br", "li", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6",
        "tr", "table", "blockquote", "section", "article", "header", "footer", "aside", "pre",
        "figure", "figcaption", "hr", "address", "main", "nav", "details", "summary",
    }
)  # fmt: skip


def transliterate_serbian(text: str) -> str:
    """Serbian Cyrillic to Serbian Latin by the fixed official mapping; other characters unchanged.

    Љ, Њ, Џ become "LJ", "NJ", "DŽ" inside an upper-case word and "Lj", "Nj", "Dž" otherwise. The
    map is one letter to one fixed spelling; the only loss is the one Serbian Latin itself has: the
    digraphs lj, nj, dž also spell л+ј, н+ј, д+ж in a handful of words (e.g. "konjunkcija").
    """
    out: list[str] = []
    for index, char in enumerate(text):
        latin = _SERBIAN_CYRILLIC.get(char)
        if latin is not None:
            out.append(latin)
            continue
        lower = char.lower()
        latin = _SERBIAN_CYRILLIC.get(lower) if lower != char else None
        if latin is None:
            out.append(char)
            continue
        digraph = _DIGRAPHS.get(char)
        if digraph is None:
            out.append(latin.upper())
            continue
        following = text[index + 1] if index + 1 < len(text) else ""
        out.append(digraph.upper() if following.isupper() else digraph)
    return "".join(out)


def clean_text(text: str) -> str:
    """Drop NUL, control characters, lone surrogates and non-characters; normalise to NFC."""
    return unicodedata.normalize("NFC", _INVALID_CHARS.sub("", text))


def truncate(text: str, max_chars: int) -> str:
    """Cut ``text`` to at most ``max_chars`` characters, at a word boundary when one is near."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ", max(0, max_chars - 80))
    return (cut[:space] if space > 0 else cut).rstrip() + "…"


class _TextCollector(HTMLParser):
    def __init__(self, max_chars: int) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.size = 0
        self.max_chars = max_chars
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_ELEMENTS:
            self.skip_depth += 1
        elif tag in _BLOCK_ELEMENTS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_ELEMENTS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_ELEMENTS:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in _BLOCK_ELEMENTS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.skip_depth == 0 and self.size <= self.max_chars:
            self.parts.append(data)
            self.size += len(data)


def html_to_text(fragment: str, max_chars: int = 200_000) -> str:
    """Plain text of an HTML fragment: tags and scripts removed, entities decoded, blocks on lines.

    Also used for text that claims to be plain: a stray ``<b>`` or ``&amp;`` in a feed title is
    the common case, not a literal.
    """
    if not fragment:
        return ""
    if "<" in fragment or "&" in fragment:
        collector = _TextCollector(max_chars)
        # Fed in pieces so that a huge document stops costing time once enough text is collected.
        step = 65_536
        for start in range(0, len(fragment), step):
            collector.feed(fragment[start : start + step])
            if collector.size > max_chars:
                break
        collector.close()
        text = "".join(collector.parts)
    else:
        text = fragment
    return truncate(_tidy_whitespace(clean_text(text)), max_chars)


def _tidy_whitespace(text: str) -> str:
    lines = (_HORIZONTAL_SPACE.sub(" ", line).strip() for line in text.replace("\r", "\n").split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def single_line(text: str) -> str:
    """Collapse all whitespace to single spaces (titles, authors)."""
    return " ".join(text.split())


def normalise_title(title: str) -> str:
    """The comparison form of a title (see the module docstring)."""
    latin = transliterate_serbian(clean_text(title)).casefold().replace("đ", "dj")
    decomposed = unicodedata.normalize("NFKD", latin)
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(_NON_WORD.sub(" ", stripped).split())


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def title_key(title: str) -> str:
    """sha256 of the normalised title, or "" when the title is too short to identify an article."""
    normalised = normalise_title(title)
    if len(normalised.split()) < MIN_TITLE_KEY_WORDS:
        return ""
    return _digest(normalised)


def story_key(title: str, fallback: str) -> str:
    """Key shared by copies of one story across outlets; ``_digest(fallback)`` for short titles."""
    trimmed = _OUTLET_SUFFIX.sub("", clean_text(title).strip())
    words = {
        word
        for word in normalise_title(trimmed).split()
        if len(word) >= 3 and word not in _MARKER_WORDS and not word.isdigit()
    }
    if len(words) < MIN_STORY_KEY_WORDS:
        return _digest("fallback:" + fallback)
    return _digest(" ".join(sorted(words)))


def text_script(text: str) -> str | None:
    """ISO 15924 script of ``text``: ``Cyrl`` when most letters are Cyrillic, ``Latn`` otherwise, None
    when it has no letters. Serbian is written in both, and a model scores the two differently."""
    letters = [char for char in text if char.isalpha()]
    if not letters:
        return None
    cyrillic = sum(1 for char in letters if "\u0400" <= char <= "\u04ff")
    return "Cyrl" if cyrillic * 2 > len(letters) else "Latn"


def shorten(text: str, width: int = 160) -> str:
    """``text`` on one line, cut at a word to at most ``width`` characters (" ..." marks the cut)."""
    return textwrap.shorten(" ".join(text.split()), width=width, placeholder=" ...")
