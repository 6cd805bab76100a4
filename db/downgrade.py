"""`narrwatch db downgrade`: one migration back at a time, never through stored data.

Alembic's own downgrade runs any number of steps and drops whatever a step's ``downgrade()`` drops.
Here a downgrade goes exactly one revision back, and is refused when that step would drop data:
the initial migration's downgrade drops every table, and a later migration names the tables whose
rows or columns its downgrade drops in ``DOWNGRADE_DROPS``; the step is refused while any of them
holds rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, table

from narrwatch.db.migrate import alembic_config, downgrade
from narrwatch.db.session import make_engine


class DowngradeRefused(RuntimeError):
    """The step would lose stored rows, or there is nothing to downgrade; nothing was changed."""


@dataclass(frozen=True)
class DowngradeStep:
    current: str
    target: str | None  # None: the empty database before the first migration
    rows_lost: dict[str, int]  # table -> rows the step would drop


def _count_rows(url: str, tables: list[str]) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            present = set(inspect(connection).get_table_names())
            counts = {}
            for name in tables:
                if name in present:
                    counts[name] = connection.scalar(select(func.count()).select_from(table(name))) or 0
            return counts
    finally:
        engine.dispose()


def plan_downgrade(url: str) -> DowngradeStep:
    """The one step back from the database's revision, with the rows it would lose."""
    config = alembic_config(url)
    scripts = ScriptDirectory.from_config(config)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
            tables = [name for name in inspect(connection).get_table_names() if name != "alembic_version"]
    finally:
        engine.dispose()
    if current is None:
        raise DowngradeRefused("the database has no migration applied: nothing to downgrade")
    script = scripts.get_revision(current)
    if script is None:
        raise DowngradeRefused(f"revision {current} is not among this version's migrations")
    down = script.down_revision
    if down is not None and not isinstance(down, str):
        raise DowngradeRefused(f"revision {current} merges branches: downgrade it with alembic directly")
    # The first migration's downgrade drops every table; later ones say what they drop.
    dropped = tables if down is None else list(getattr(script.module, "DOWNGRADE_DROPS", ()))
    counts = _count_rows(url, dropped)
    return DowngradeStep(current=current, target=down, rows_lost={k: v for k, v in counts.items() if v})


def downgrade_one_step(url: str) -> DowngradeStep:
    """Downgrade one revision, or raise :class:`DowngradeRefused` naming the rows it would drop."""
    step = plan_downgrade(url)
    if step.rows_lost:
        listed = ", ".join(f"{name} {count}" for name, count in sorted(step.rows_lost.items()))
        raise DowngradeRefused(
            f"downgrading {step.current} -> {step.target or 'an empty database'} would drop tables "
            f"that hold data ({listed}); nothing was changed. Export what you need and remove the "
            "rows (or use a fresh database) first."
        )
    downgrade(url, step.target or "base")
    return step
