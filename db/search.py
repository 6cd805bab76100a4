"""Full-text search over stored articles: SQLite FTS5 or PostgreSQL's text search.

SQLite keeps an external-content FTS5 table (``articles_fts``) that triggers keep in step with
``articles``; PostgreSQL needs no copy, only a GIN index on the same text. Both are created by the
migration and, idempotently, by ``ensure_search_index`` (stores made with ``create_all``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, text

FTS_TABLE = "articles_fts"
#: The PostgreSQL document: 'simple' (no stemming) because the outlets write in eight languages.
PG_DOCUMENT = (
    "to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(summary, '') || ' ' || coalesce(text, ''))"
)

_INSERT_NEW = (
    f"INSERT INTO {FTS_TABLE}(rowid, title, summary, text) VALUES (new.id, new.title, new.summary, new.text)"
)
_DELETE_OLD = (
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, title, summary, text) "
    "VALUES ('delete', old.id, old.title, old.summary, old.text)"
)
_SQLITE_DDL = [
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
    "title, summary, text, content='articles', content_rowid='id', tokenize='unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_ai AFTER INSERT ON articles BEGIN {_INSERT_NEW}; END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_ad AFTER DELETE ON articles BEGIN {_DELETE_OLD}; END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_au AFTER UPDATE ON articles BEGIN "
    f"{_DELETE_OLD}; {_INSERT_NEW}; END",
]


def create_search_index(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        existed = conn.execute(
            text("SELECT 1 FROM sqlite_master WHERE type='table' AND name=:name"), {"name": FTS_TABLE}
        ).first()
        for statement in _SQLITE_DDL:
            conn.execute(text(statement))
        if not existed:
            # Index the articles stored before the table existed.
            conn.execute(text(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')"))
    elif conn.dialect.name == "postgresql":
        conn.execute(
            text(f"CREATE INDEX IF NOT EXISTS ix_articles_fulltext ON articles USING gin ({PG_DOCUMENT})")
        )


def drop_search_index(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        for suffix in ("ai", "ad", "au"):
            conn.execute(text(f"DROP TRIGGER IF EXISTS {FTS_TABLE}_{suffix}"))
        conn.execute(text(f"DROP TABLE IF EXISTS {FTS_TABLE}"))
    elif conn.dialect.name == "postgresql":
        conn.execute(text("DROP INDEX IF EXISTS ix_articles_fulltext"))


def ensure_search_index(engine: Engine) -> None:
    with engine.begin() as conn:
        create_search_index(conn)


def is_search_object(name: str | None) -> bool:
    """Objects this module owns, which the models do not describe (Alembic's drift check skips them)."""
    return bool(name) and (str(name).startswith(FTS_TABLE) or name == "ix_articles_fulltext")


@dataclass(frozen=True)
class SearchHit:
    article_id: int
    rank: float


def _fts5_query(query: str) -> str:
    # Each word as a quoted prefix term: user input never reaches FTS5's query syntax.
    words = re.findall(r"\w+", query, flags=re.UNICODE)
    return " ".join(f'"{word}"*' for word in words)


def search_articles(conn: Connection, query: str, *, limit: int = 50, offset: int = 0) -> list[SearchHit]:
    """Article ids matching every word of ``query``, best first."""
    if conn.dialect.name == "sqlite":
        match = _fts5_query(query)
        if not match:
            return []
        rows = conn.execute(
            text(
                f"SELECT rowid, bm25({FTS_TABLE}, 4.0, 2.0, 1.0) AS rank FROM {FTS_TABLE} "
                f"WHERE {FTS_TABLE} MATCH :match ORDER BY rank LIMIT :limit OFFSET :offset"
            ),
            {"match": match, "limit": limit, "offset": offset},
        )
        return [SearchHit(int(row[0]), float(row[1])) for row in rows]
    rows = conn.execute(
        text(
            f"SELECT id, ts_rank({PG_DOCUMENT}, q) AS rank "
            "FROM articles, plainto_tsquery('simple', :query) q "
            f"WHERE {PG_DOCUMENT} @@ q ORDER BY rank DESC, id DESC LIMIT :limit OFFSET :offset"
        ),
        {"query": query, "limit": limit, "offset": offset},
    )
    return [SearchHit(int(row[0]), float(row[1])) for row in rows]
