"""Checks on the settings that pydantic cannot make from one field: misspelt variable names.

A ``NARRWATCH_`` variable that names no setting would otherwise be ignored, and the setting the
operator meant would silently keep its default.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path

PREFIX = "NARRWATCH_"
#: Variables with the prefix that are not settings: read by the test suite and its tools only, and
#: the served app's NARRWATCH_WEB_* (checked the same way by narrwatch.web.settings.load_web_settings).
NOT_SETTINGS_PREFIXES = ("NARRWATCH_TEST_", "NARRWATCH_WEB_")
NOT_SETTINGS = frozenset({"NARRWATCH_REGEN_GOLDEN"})


class UnknownSettingError(ValueError):
    """One or more NARRWATCH_ variables name no setting; each line suggests the closest one."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


def dotenv_names(path: Path) -> list[str]:
    """Variable names assigned in a .env file (``NAME=value`` and ``export NAME=value`` lines)."""
    if not path.is_file():
        return []
    names = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stripped = line.strip().removeprefix("export ").strip()
        if stripped and not stripped.startswith("#") and "=" in stripped:
            names.append(stripped.split("=", 1)[0].strip())
    return names


def unknown_settings(names: Iterable[str], fields: Iterable[str]) -> list[str]:
    """One message per NARRWATCH_ name that is no setting, naming the closest real one."""
    known = {f"{PREFIX}{name.upper()}" for name in fields}
    lines = []
    for name in sorted(set(names)):
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper in known or upper in NOT_SETTINGS:
            continue
        if upper.startswith(NOT_SETTINGS_PREFIXES):
            continue
        # Compared without the prefix, which every name shares and would make anything look close.
        bare = sorted(name.removeprefix(PREFIX) for name in known)
        close = difflib.get_close_matches(upper.removeprefix(PREFIX), bare, n=1, cutoff=0.75)
        hint = f"; did you mean {PREFIX}{close[0]}?" if close else "; the settings are in narrwatch/config.py"
        lines.append(f"{name}: no such setting{hint}")
    return lines


def check_variable_names(environ: Mapping[str, str], env_file: Path | None, fields: Iterable[str]) -> None:
    """Raise :class:`UnknownSettingError` when the environment or the .env file has a misspelt name."""
    names = list(environ)
    if env_file is not None:
        names += dotenv_names(env_file)
    lines = unknown_settings(names, list(fields))
    if lines:
        raise UnknownSettingError(lines)
