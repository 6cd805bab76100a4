"""Split an article into passages that each fit the encoder's window.

A transformer encoder silently truncates what does not fit its window (256 wordpieces for
all-MiniLM-L6-v2), so a long article would lose its end, and Cyrillic text, which this model
tokenises character by character, would lose most of itself. Passages are cut at sentence
boundaries; a sentence longer than the window is cut between words, and a "word" longer than the
window (a run of text without spaces) between characters. The title and the lead form the first
passage. When an article needs several passages they are balanced in size rather than a full one
followed by a scrap, because a two-sentence scrap makes poor evidence.

Only whitespace changes: joining every passage gives back the title and text word for word.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from narrwatch.ports import Encoder

#: A sentence ends at . ! ? or … (plus closing quotes/brackets); the whitespace after it is the cut.
_SENTENCE_END = re.compile(r"[.!?…。！？][\"'»”’)\]]*(\s+)")
_PARAGRAPH = re.compile(r"\s*\n\s*\n\s*|\s*\r?\n\s*")


@dataclass(frozen=True)
class _Unit:
    text: str
    tokens: int
    title: bool = False


def passage_token_budget(encoder: Encoder) -> int:
    """Wordpieces one passage may hold: the window minus special tokens and the passage prompt.

    ``special_tokens`` and ``passage_prompt_tokens`` are extras of ``narrwatch.embeddings.encoder``'s encoder;
    another ``Encoder`` is assumed to add BERT's two ([CLS], [SEP]) and no prompt.
    """
    special = int(getattr(encoder, "special_tokens", 2))
    prompt = int(getattr(encoder, "passage_prompt_tokens", 0))
    budget = encoder.max_tokens - special - prompt
    if budget < 8:
        raise ValueError(f"the encoder's window ({encoder.max_tokens} tokens) leaves no room for text")
    return budget


def split_passages(title: str, text: str, encoder: Encoder) -> list[str]:
    """Passages of an article, in order, the first one starting with the title and the lead."""
    title = " ".join(title.split())
    body = _normalise(text)
    if not title and not body:
        return []
    budget = passage_token_budget(encoder)
    whole = f"{title}\n{body}" if title and body else title or body
    if encoder.count_tokens(whole) <= budget:
        return [whole]

    units = [_Unit(piece, count, title=True) for piece, count in _fit(title, budget, encoder)]
    for sentence in sentences(body):
        units.extend(_Unit(piece, count) for piece, count in _fit(sentence, budget, encoder))
    groups = _balanced(units, budget)
    passages: list[str] = []
    for group in groups:
        passage = _join(group)
        if encoder.count_tokens(passage) <= budget:
            passages.append(passage)
        else:
            # Token counts are not exactly additive for every tokenizer: re-pack with real counts.
            passages.extend(_join(g) for g in _strict_pack(group, budget, encoder))
    return passages


def sentences(text: str) -> list[str]:
    """Sentences and paragraph lines of ``text``, whitespace collapsed, none empty.

    A break before a lowercase letter is not a sentence end ("e.g. this", "approx. five").
    """
    result: list[str] = []
    for paragraph in _PARAGRAPH.split(text):
        pending = ""
        for piece in _cut_at_sentence_ends(paragraph):
            piece = " ".join(piece.split())
            if not piece:
                continue
            if pending and piece[0].islower():
                pending = f"{pending} {piece}"
                continue
            if pending:
                result.append(pending)
            pending = piece
        if pending:
            result.append(pending)
    return result


def _cut_at_sentence_ends(paragraph: str) -> list[str]:
    pieces = []
    start = 0
    for match in _SENTENCE_END.finditer(paragraph):
        pieces.append(paragraph[start : match.start(1)])
        start = match.end(1)
    pieces.append(paragraph[start:])
    return pieces


def _normalise(text: str) -> str:
    """Paragraphs kept as line breaks, other whitespace collapsed."""
    paragraphs = (" ".join(p.split()) for p in _PARAGRAPH.split(text))
    return "\n".join(p for p in paragraphs if p)


def _fit(text: str, budget: int, encoder: Encoder) -> list[tuple[str, int]]:
    """``text`` as pieces of at most ``budget`` tokens each: whole, else by words, else by characters."""
    if not text:
        return []
    count = encoder.count_tokens(text)
    if count <= budget:
        return [(text, count)]
    pieces: list[tuple[str, int]] = []
    current: list[str] = []
    used = 0
    for word in text.split():
        word_tokens = encoder.count_tokens(word)
        if word_tokens > budget:
            if current:
                pieces.append((" ".join(current), used))
                current, used = [], 0
            pieces.extend(_split_word(word, budget, encoder))
            continue
        if current and used + word_tokens > budget:
            pieces.append((" ".join(current), used))
            current, used = [], 0
        current.append(word)
        used += word_tokens
    if current:
        pieces.append((" ".join(current), used))
    return pieces


def _split_word(word: str, budget: int, encoder: Encoder) -> list[tuple[str, int]]:
    """A run without spaces, cut into the longest prefixes that fit (binary search on characters)."""
    pieces: list[tuple[str, int]] = []
    rest = word
    while rest:
        low, high = 1, len(rest)
        while low < high:
            middle = (low + high + 1) // 2
            if encoder.count_tokens(rest[:middle]) <= budget:
                low = middle
            else:
                high = middle - 1
        pieces.append((rest[:low], encoder.count_tokens(rest[:low])))
        rest = rest[low:]
    return pieces


def _pack(units: list[_Unit], limit: int) -> list[list[_Unit]]:
    """Greedy in-order packing: a new group when the next unit would pass ``limit`` tokens."""
    groups: list[list[_Unit]] = []
    current: list[_Unit] = []
    used = 0
    for unit in units:
        if current and used + unit.tokens > limit:
            groups.append(current)
            current, used = [], 0
        current.append(unit)
        used += unit.tokens
    if current:
        groups.append(current)
    return groups


def _balanced(units: list[_Unit], budget: int) -> list[list[_Unit]]:
    """As few groups as greedy packing needs, with the smallest limit that still achieves that."""
    fewest = len(_pack(units, budget))
    if fewest <= 1:
        return _pack(units, budget)
    total = sum(unit.tokens for unit in units)
    low = max(max(unit.tokens for unit in units), math.ceil(total / fewest))
    high = budget
    while low < high:  # greedy packing needs fewer groups as the limit grows: binary search
        middle = (low + high) // 2
        if len(_pack(units, middle)) <= fewest:
            high = middle
        else:
            low = middle + 1
    return _pack(units, low)


def _strict_pack(units: list[_Unit], budget: int, encoder: Encoder) -> list[list[_Unit]]:
    groups: list[list[_Unit]] = []
    current: list[_Unit] = []
    for unit in units:
        if current and encoder.count_tokens(_join([*current, unit])) > budget:
            groups.append(current)
            current = []
        current.append(unit)
    if current:
        groups.append(current)
    return groups


def _join(units: list[_Unit]) -> str:
    text = ""
    for index, unit in enumerate(units):
        if index == 0:
            text = unit.text
        elif units[index - 1].title and not unit.title:
            text = f"{text}\n{unit.text}"
        else:
            text = f"{text} {unit.text}"
    return text
