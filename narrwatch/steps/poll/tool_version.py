"""The name and installed version of a library the poll step relies on, recorded with what it made."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def tool_name(label: str, distribution: str, suffix: str = "") -> str:
    """``<label>-<version><suffix>``, or ``<label><suffix>`` when the distribution's metadata is
    missing (a vendored or source checkout)."""
    try:
        return f"{label}-{version(distribution)}{suffix}"
    except PackageNotFoundError:
        return f"{label}{suffix}"
