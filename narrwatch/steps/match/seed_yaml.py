"""Reading one seed file: a safe YAML loader, file discovery, and problems naming file and field."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from narrwatch.steps.match.seed_schema import MAX_SEED_FILE_BYTES, Seed, SeedProblem


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
    seed, problems = _parse_seed_text(raw_text, shown, path.stem)
    return seed, list(problems)


@lru_cache(maxsize=1024)
def _parse_seed_text(raw_text: str, shown: str, stem: str) -> tuple[Seed | None, tuple[SeedProblem, ...]]:
    """One seed file's text read (kept: every match run reads every seed file, mostly unchanged)."""
    seed, problems = _parse_seed_text_uncached(raw_text, shown, stem)
    return seed, tuple(problems)


def _parse_seed_text_uncached(raw_text: str, shown: str, stem: str) -> tuple[Seed | None, list[SeedProblem]]:
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
    if seed.id != stem:
        # Returned with the seed so that the set checks (duplicate ids) still see it.
        return seed, [
            SeedProblem(shown, "id", f"id {seed.id!r} must equal the file name without extension ({stem!r})")
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
