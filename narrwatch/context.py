"""The composition root: settings, the SQL store and (lazily) the encoder and vector store.

A use case receives an ``AppContext`` and its ``now`` or window. The heavy adapters are built on
first use so that commands which do not need them (``feeds list``, the DAG parser) never import
torch or qdrant-client.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from narrwatch.config import Settings, get_settings
from narrwatch.db.session import make_engine, make_session_factory, transaction

if TYPE_CHECKING:
    from narrwatch.ports import Encoder, VectorStore


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    _encoder: Encoder | None = field(default=None, repr=False)
    _vector_store: VectorStore | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> AppContext:
        settings = settings or get_settings()
        engine = make_engine(settings.resolved_database_url)
        return cls(settings=settings, engine=engine, sessions=make_session_factory(engine))

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with transaction(self.sessions) as session:
            yield session

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            from narrwatch.embeddings.encoder import load_encoder

            self._encoder = load_encoder(self.settings)
        return self._encoder

    @property
    def vector_store(self) -> VectorStore:
        if self._vector_store is None:
            from narrwatch.embeddings.store import open_vector_store

            self._vector_store = open_vector_store(self.settings)
        return self._vector_store

    def close(self) -> None:
        if self._vector_store is not None:
            self._vector_store.close()
            self._vector_store = None
        self.engine.dispose()
