"""Seed narratives: the YAML files analysts write, their schema and the loader.

A seed file is read with a safe YAML loader (one that also refuses duplicate keys) and checked
against :class:`Seed`; the set of files is then checked as a whole (unique ids, known parents, no
parent cycles, no active sub-narrative under an inactive parent). Every problem is reported as a
:class:`SeedProblem` naming the file, the field and, for YAML errors, the line, and the loader
reports all problems of all files at once so an analyst fixes them in one pass.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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


class NarrativeError(Exception):
    """The seed files have problems; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[SeedProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


class SeedFilesSkipped(Exception):
    """A step did its work with the usable seeds but skipped bad files: one line per bad file."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = list(lines)
        super().__init__(f"{len(self.lines)} bad seed file(s) skipped: " + " | ".join(self.lines))


@dataclass(frozen=True)
class LoadedSeed:
    seed: Seed
    path: Path


class NarrativeSet:
    """The seeds of one directory, checked as a whole, with the hierarchy they form."""

    def __init__(self, loaded: Sequence[LoadedSeed]) -> None:
        self._loaded = {item.seed.id: item for item in loaded}
        self._children: dict[str, list[str]] = {seed_id: [] for seed_id in self._loaded}
        for item in loaded:
            if item.seed.parent is not None:
                self._children[item.seed.parent].append(item.seed.id)

    def __len__(self) -> int:
        return len(self._loaded)

    def __iter__(self) -> Iterator[Seed]:
        return (item.seed for item in self._loaded.values())

    def __contains__(self, seed_id: object) -> bool:
        return seed_id in self._loaded

    @property
    def ids(self) -> list[str]:
        return list(self._loaded)

    def get(self, seed_id: str) -> Seed:
        try:
            return self._loaded[seed_id].seed
        except KeyError:
            raise KeyError(f"no seed narrative with id {seed_id!r}") from None

    def path_of(self, seed_id: str) -> Path:
        return self._loaded[seed_id].path

    def children(self, seed_id: str) -> list[str]:
        return list(self._children.get(seed_id, []))

    def descendants(self, seed_id: str) -> list[str]:
        found: list[str] = []
        stack = list(reversed(self._children.get(seed_id, [])))
        while stack:
            child = stack.pop()
            found.append(child)
            stack.extend(reversed(self._children.get(child, [])))
        return found

    def parents(self) -> dict[str, str | None]:
        return {seed_id: item.seed.parent for seed_id, item in self._loaded.items()}

    def ancestors(self, seed_id: str) -> list[str]:
        found: list[str] = []
        current = self.get(seed_id).parent
        while current is not None:
            found.append(current)
            current = self.get(current).parent
        return found

    def with_status(self, seed_id: str, status: SeedStatus) -> NarrativeSet:
        """A copy in which one seed has another status (a draft backtested as if it were active)."""
        changed = [
            LoadedSeed(item.seed.model_copy(update={"status": status}), item.path)
            if seed_id == item.seed.id
            else item
            for item in self._loaded.values()
        ]
        return NarrativeSet(changed)

    def top_level(self, seed_id: str) -> str:
        current = self.get(seed_id)
        while current.parent is not None:
            current = self.get(current.parent)
        return current.id

    def active(self) -> list[Seed]:
        return [seed for seed in self if seed.status == "active"]

    def inherited_examples(self, seed_id: str) -> list[str]:
        """Examples of active sub-narratives: a passage pushing a refinement also pushes the parent."""
        found: list[str] = []
        for child_id in self.descendants(seed_id):
            child = self.get(child_id)
            if child.status == "active":
                found.extend(child.examples)
        return found

    def matching_definition(self, seed_id: str) -> dict[str, Any]:
        """What a stored version records: the seed's own fields plus the examples it inherits."""
        definition = self.get(seed_id).definition()
        definition["inherited_examples"] = self.inherited_examples(seed_id)
        return definition

    def content_hash(self, seed_id: str) -> str:
        """sha256 of the matching definition: any edit, also to an inherited example, is a new version."""
        canonical = json.dumps(
            self.matching_definition(seed_id), sort_keys=True, ensure_ascii=False, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- YAML ---------------------------------------------------------------------------------------


class _UniqueKeySafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice (plain safe_load keeps the last silently)
    and refuses aliases (``*name``): nested aliases expand exponentially (a 481-byte file can ask for
    gigabytes), and a seed file has no use for them."""

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                "YAML aliases (*name) are not allowed in seed files: write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def _construct_mapping_unique(loader: _UniqueKeySafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping",
                node.start_mark,
                f"found the key {key!r} twice",
                key_node.start_mark,
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_UniqueKeySafeLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping_unique,
)


def _yaml_problem(display: str, exc: yaml.YAMLError) -> SeedProblem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"{context}: {problem}" if context else str(problem)
    started = getattr(exc, "context_mark", None)
    if started is not None and line is not None and started.line + 1 != line:
        message += f" (it started on line {started.line + 1})"
    return SeedProblem(display, "(yaml)", f"YAML syntax error: {message}", line)


def _field_name(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + part)
    return "".join(parts) or "(file)"


def _validation_problems(display: str, exc: ValidationError) -> list[SeedProblem]:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field (a typo?); see narratives/README.md for the fields"
        elif error["type"] == "missing":
            message = "required field is missing"
        elif error["type"] == "string_type":
            # YAML reads 1999, yes or 2024-01-01 as numbers, booleans and dates.
            message = f"expected text, got {error.get('input')!r}: put the value in quotes"
        # Field validators name the offending item themselves ("examples[2] ..."): show that.
        item = re.match(r"^(\w+\[\d+\])", message)
        field = item.group(1) if item else _field_name(loc)
        if not loc and ":" in message and message.split(":", 1)[0].isidentifier():
            field, message = (part.strip() for part in message.split(":", 1))
        problems.append(SeedProblem(display, field, message))
    return problems


def parse_seed_file(path: Path, display: str | None = None) -> tuple[Seed | None, list[SeedProblem]]:
    """Read one seed file: the seed (None if unreadable) and the problems found in it."""
    shown = display or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_SEED_FILE_BYTES:
            return None, [
                SeedProblem(
                    shown,
                    "(file)",
                    f"the file has {size:,} bytes, at most {MAX_SEED_FILE_BYTES:,} are allowed "
                    "(a seed needs a title, a description and a few dozen examples at most)",
                )
            ]
        raw_text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, [SeedProblem(shown, "(file)", f"not UTF-8 text: {exc}")]
    except OSError as exc:
        return None, [SeedProblem(shown, "(file)", f"cannot read: {exc.strerror or exc}")]
    try:
        data = yaml.load(raw_text, Loader=_UniqueKeySafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        return None, [_yaml_problem(shown, exc)]
    if data is None:
        return None, [SeedProblem(shown, "(file)", "the file is empty")]
    if not isinstance(data, dict):
        return None, [SeedProblem(shown, "(file)", "a seed file must be a mapping of fields (id: ..., ...)")]
    try:
        seed = Seed.model_validate(data)
    except ValidationError as exc:
        return None, _validation_problems(shown, exc)
    if seed.id != path.stem:
        # Returned with the seed so that the set checks (duplicate ids) still see it.
        return seed, [
            SeedProblem(
                shown, "id", f"id {seed.id!r} must equal the file name without extension ({path.stem!r})"
            )
        ]
    return seed, []


def seed_files(directory: Path) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` below ``directory``, in a stable order; hidden paths skipped."""
    found = [
        path
        for pattern in ("*.yaml", "*.yml")
        for path in directory.rglob(pattern)
        if not any(part.startswith(".") for part in path.relative_to(directory).parts)
    ]
    return sorted(found)


def _set_problems(loaded: Sequence[LoadedSeed], display: Mapping[str, str]) -> list[SeedProblem]:
    problems: list[SeedProblem] = []
    by_id = {item.seed.id: item for item in loaded}
    for item in loaded:
        seed, shown = item.seed, display[item.seed.id]
        if seed.parent is None:
            continue
        parent = by_id.get(seed.parent)
        if parent is None:
            problems.append(
                SeedProblem(shown, "parent", f"unknown parent {seed.parent!r}: no seed has that id")
            )
            continue
        if seed.status == "active" and parent.seed.status != "active":
            problems.append(
                SeedProblem(
                    shown,
                    "status",
                    f"an active sub-narrative needs an active parent: "
                    f"{seed.parent!r} is {parent.seed.status}",
                )
            )
        # Walk up: a cycle would make "matched under its parent" impossible to decide.
        seen = {seed.id}
        current = parent.seed
        while current.parent is not None and current.parent in by_id:
            if current.id in seen:
                problems.append(
                    SeedProblem(shown, "parent", f"parent chain loops: {' -> '.join(sorted(seen))}")
                )
                break
            seen.add(current.id)
            current = by_id[current.parent].seed
    return problems


def check_narratives(directory: Path) -> tuple[NarrativeSet | None, list[SeedProblem]]:
    """Load and check every seed file of a directory; the set is None when anything is wrong."""
    directory = Path(directory)
    if not directory.is_dir():
        return None, [SeedProblem(str(directory), "(directory)", "no such directory of seed narratives")]
    files = seed_files(directory)
    if not files:
        return None, [SeedProblem(str(directory), "(directory)", "no *.yaml seed files found")]
    problems: list[SeedProblem] = []
    loaded: list[LoadedSeed] = []
    display: dict[str, str] = {}
    for path in files:
        shown = str(path)
        seed, file_problems = parse_seed_file(path, shown)
        problems.extend(file_problems)
        if seed is None:
            continue
        if seed.id in display:
            problems.append(
                SeedProblem(shown, "id", f"duplicate id {seed.id!r}: also defined in {display[seed.id]}")
            )
            continue
        display[seed.id] = shown
        loaded.append(LoadedSeed(seed, path))
    problems.extend(_set_problems(loaded, display))
    if problems:
        return None, problems
    return NarrativeSet(loaded), []


def load_usable_narratives(directory: Path) -> tuple[NarrativeSet, list[SeedProblem]]:
    """The seeds that can be used although others are broken, and the problems of the others.

    A file with any problem is left out, and so is every seed whose parent chain reaches a seed
    left out (its matches would be gated by a parent that is not there). The problems name each
    file; matching goes on with the rest. A missing or empty directory gives an empty set.
    """
    directory = Path(directory)
    _, problems = check_narratives(directory)
    if not problems:
        return load_narratives(directory), []
    bad_files = {problem.file for problem in problems}
    loaded: list[LoadedSeed] = []
    seen: set[str] = set()
    for path in seed_files(directory) if directory.is_dir() else []:
        if str(path) in bad_files:
            continue
        seed, file_problems = parse_seed_file(path, str(path))
        if seed is None or file_problems or seed.id in seen:
            continue
        seen.add(seed.id)
        loaded.append(LoadedSeed(seed, path))
    skipped = list(problems)
    while True:
        ids = {item.seed.id for item in loaded}
        orphans = [item for item in loaded if item.seed.parent is not None and item.seed.parent not in ids]
        if not orphans:
            break
        for item in orphans:
            if str(item.path) not in bad_files:
                skipped.append(
                    SeedProblem(
                        str(item.path), "parent", f"skipped: its parent {item.seed.parent!r} cannot be used"
                    )
                )
        loaded = [item for item in loaded if item not in orphans]
    return NarrativeSet(loaded), skipped


def bad_seed_files(problems: Sequence[SeedProblem]) -> dict[str, str]:
    """One line per bad file (its first problem and how many more), in file order."""
    by_file: dict[str, list[SeedProblem]] = {}
    for problem in problems:
        by_file.setdefault(problem.file, []).append(problem)
    lines = {}
    for file, found in sorted(by_file.items()):
        more = f" (and {len(found) - 1} more problem(s))" if len(found) > 1 else ""
        lines[file] = f"{found[0]}{more}"
    return lines


def load_narratives(directory: Path) -> NarrativeSet:
    """The checked seeds of ``directory``; raises :class:`NarrativeError` listing every problem."""
    narratives, problems = check_narratives(directory)
    if narratives is None:
        raise NarrativeError(problems)
    return narratives


def scaffold(seed_id: str, parent: str | None = None, owner: str | None = None) -> str:
    """The text of a new seed file: every field present, commented, ready to edit."""
    if not re.match(ID_PATTERN, seed_id):
        raise ValueError(f"{seed_id!r} is not a valid id: lower-case letters, digits and '-' only")
    parent_line = f"parent: {parent}" if parent else "# parent: the-id-of-the-seed-this-refines"
    owner_line = f"owner: {owner}" if owner else "owner: your-team"
    return f"""\
# Seed narrative; the fields are explained in narratives/README.md.
id: {seed_id}
title: {SCAFFOLD_TITLE}
description: >
  Two to four sentences: what the narrative claims, who it blames, which events it hangs on.
  Describe the framing, not the facts it distorts.
{parent_line}
status: draft  # draft until `narratives backtest {seed_id}` looks right, then active
{owner_line}
version: 1
languages: [en]
tags: []
examples:
  # Several phrasings the way an outlet pushing the narrative would write them (any language).
  - {SCAFFOLD_EXAMPLES[0]}
  - {SCAFFOLD_EXAMPLES[1]}
negatives:
  # Near misses that must NOT match: neutral coverage of the same topic, reporting or rebutting it.
  - {SCAFFOLD_NEGATIVE}
keywords: []
# thresholds:  # leave out to use the model's defaults or the calibrated ones
#   suggest: 0.45
#   confirm: 0.6
"""
