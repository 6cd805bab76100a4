"""The schema of a seed narrative file (pydantic), its size limits, and the problem it reports."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SeedStatus = Literal["active", "draft", "retired"]

#: Lower-case slug: stable ids end up in URLs, SQL keys and reports.
ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$"
#: ISO 639 code with an optional script or region: en, sr, sr-Latn, sr-Cyrl, pt-BR.
LANGUAGE_PATTERN = r"^[a-z]{2,3}(?:-[A-Za-z]{2,4})?$"

# Limits that keep one careless or hostile file from stalling matching for every seed: the shipped
# seeds are 3-6 KB with 5-12 examples of under 300 characters, so these leave ample room.
#: Largest seed file read at all (checked before reading).
MAX_SEED_FILE_BYTES = 256 * 1024
#: Most phrasings in each of examples, negatives and keywords.
MAX_PHRASES = 200
#: Longest single phrasing; an example is a sentence or two, not an article.
MAX_PHRASE_CHARS = 2_000
#: Longest message of one problem: inputs quoted in errors are cut, never printed whole.
MAX_PROBLEM_CHARS = 300

#: Placeholder texts of the `narratives new` scaffold: a seed still holding one was never edited.
SCAFFOLD_TITLE = "One line that names the claim, as a headline would"
SCAFFOLD_EXAMPLES = (
    "First phrasing of the narrative, written as a sentence from an article that pushes it.",
    "A second phrasing with different words and a different hook.",
)
SCAFFOLD_NEGATIVE = "A neutral news sentence about the same topic that does not push the narrative."


class SeedThresholds(BaseModel):
    """Per-seed thresholds; either may be left out and is then taken from the model's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suggest: float | None = Field(None, ge=-1.0, le=1.0)
    confirm: float | None = Field(None, ge=-1.0, le=1.0)

    @model_validator(mode="after")
    def _suggest_not_above_confirm(self) -> SeedThresholds:
        if self.suggest is not None and self.confirm is not None and self.suggest > self.confirm:
            raise ValueError(
                f"suggest ({self.suggest}) must not be greater than confirm ({self.confirm}): "
                "suggest sends a match to review, confirm puts it in the report"
            )
        return self


def phrase_key(text: str) -> str:
    """What makes two phrasings "the same" for the duplicate check: case, spacing and NFC folded."""
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def _check_phrases(values: list[str], kind: str) -> list[str]:
    if len(values) > MAX_PHRASES:
        raise ValueError(f"{kind}: {len(values)} items, at most {MAX_PHRASES} are allowed")
    cleaned: list[str] = []
    seen: dict[str, int] = {}
    for position, value in enumerate(values):
        text = " ".join(value.split())
        if not text:
            raise ValueError(f"{kind}[{position}] is empty")
        if len(text) > MAX_PHRASE_CHARS:
            raise ValueError(
                f"{kind}[{position}] has {len(text)} characters, at most {MAX_PHRASE_CHARS} are allowed"
            )
        key = phrase_key(text)
        if key in seen:
            raise ValueError(f"{kind}[{position}] duplicates {kind}[{seen[key]}]: {text!r}")
        seen[key] = position
        cleaned.append(text)
    return cleaned


class Seed(BaseModel):
    """One seed narrative as written in its YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str = Field(pattern=ID_PATTERN)
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    examples: list[str] = Field(min_length=1)
    parent: str | None = Field(None, pattern=ID_PATTERN)
    negatives: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    thresholds: SeedThresholds | None = None
    status: SeedStatus = "active"
    owner: str | None = None
    tags: list[str] = Field(default_factory=list)
    version: int | str | None = None

    @field_validator("description")
    @classmethod
    def _fold_description(cls, value: str) -> str:
        # YAML block scalars keep line breaks; the encoder should see one paragraph.
        return " ".join(value.split())

    @field_validator("examples")
    @classmethod
    def _examples(cls, value: list[str]) -> list[str]:
        return _check_phrases(value, "examples")

    @field_validator("negatives")
    @classmethod
    def _negatives(cls, value: list[str]) -> list[str]:
        return _check_phrases(value, "negatives")

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, value: list[str]) -> list[str]:
        return _check_phrases(value, "keywords")

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str]) -> list[str]:
        for position, code in enumerate(value):
            if not re.match(LANGUAGE_PATTERN, code):
                raise ValueError(
                    f"languages[{position}] {code!r} is not a language code such as en, sr or sr-Latn"
                )
        return value

    @model_validator(mode="after")
    def _cross_field(self) -> Seed:
        if self.parent == self.id:
            raise ValueError("parent: a seed cannot be its own parent")
        if self.title == SCAFFOLD_TITLE:
            raise ValueError("title: still the placeholder of `narratives new`: write the claim's headline")
        placeholders = {phrase_key(text) for text in (*SCAFFOLD_EXAMPLES, SCAFFOLD_NEGATIVE)}
        for kind, phrases in (("examples", self.examples), ("negatives", self.negatives)):
            for position, text in enumerate(phrases):
                if phrase_key(text) in placeholders:
                    raise ValueError(
                        f"{kind}[{position}] is still the placeholder of `narratives new`: {text!r}"
                    )
        positives = {phrase_key(text) for text in self.examples}
        for position, negative in enumerate(self.negatives):
            if phrase_key(negative) in positives:
                raise ValueError(f"negatives[{position}] is also an example: {negative!r}")
        return self

    def definition(self) -> dict[str, Any]:
        """The seed as plain JSON data, the content that versions are made of."""
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class SeedProblem:
    """One thing wrong with a seed file: where it is and what to do about it."""

    file: str
    field: str
    message: str
    line: int | None = None

    def __post_init__(self) -> None:
        # Messages may quote the offending input (pydantic does): keep each problem one short line.
        message = " ".join(self.message.split())
        if len(message) > MAX_PROBLEM_CHARS:
            message = message[: MAX_PROBLEM_CHARS - 3] + "..."
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "field", self.field[:100])

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field}: {self.message}"
