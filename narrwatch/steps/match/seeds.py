"""Seed narratives: the set of seed files of a directory, checked as a whole, and its hierarchy.

Each file is read by :mod:`narrwatch.steps.match.seed_yaml` and checked against the schema of
:mod:`narrwatch.steps.match.seed_schema`; the set of files is then checked as a whole (unique ids,
known parents, no parent cycles, no active sub-narrative under an inactive parent). Every problem is
reported as a :class:`SeedProblem` naming the file, the field and, for YAML errors, the line, and the
loader reports all problems of all files at once so an analyst fixes them in one pass.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from narrwatch.steps.match.seed_schema import (
    ID_PATTERN,
    SCAFFOLD_EXAMPLES,
    SCAFFOLD_NEGATIVE,
    SCAFFOLD_TITLE,
    Seed,
    SeedProblem,
    SeedStatus,
)
from narrwatch.steps.match.seed_yaml import parse_seed_file, seed_files


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
