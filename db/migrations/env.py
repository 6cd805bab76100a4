"""Alembic environment: the URL comes from the caller (``narrwatch.db.migrate``, which the CLI uses)."""

from __future__ import annotations

from alembic import context

from narrwatch.db.models import Base
from narrwatch.db.search import is_search_object
from narrwatch.db.session import make_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no sqlalchemy.url: run migrations through `narrwatch db upgrade`")
    return url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot ALTER most things: batch mode rebuilds the table ("move and copy").
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_name=lambda name, type_, parent: not is_search_object(name),
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
