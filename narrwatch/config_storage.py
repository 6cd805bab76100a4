"""The first group of narrwatch's settings: where things live (data dir, SQL store, vector store,
input files), with the checks and derived paths that belong to them.

Only a base of ``narrwatch.config.Settings``, which sets the ``NARRWATCH_`` prefix and the ``.env``
file: use ``get_settings()`` from there. Kept apart so config.py stays readable; pydantic lists a
base's fields first, so ``Settings.model_fields`` (and .env.example) keep this group at the top.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

from narrwatch.domain.urls import is_loopback_url


class StorageSettings(BaseSettings):
    # --- where things live -------------------------------------------------------------------
    data_dir: Path = Field(
        Path("var"),
        description="Working directory for the SQLite file, local Qdrant, exported ONNX models and "
        "reports. Relative to the current directory so a checkout is self-contained.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the SQL store (the source of truth). Default: a SQLite file in "
        "the data dir, which needs no server. Production: postgresql+psycopg://...",
    )
    qdrant_url: str | None = Field(
        None,
        description="URL of a Qdrant server. Unset means Qdrant local mode in the data dir, which "
        "allows one process at a time (the DAGs serialise access with a pool of one slot).",
    )
    vector_engine: Literal["edge", "local"] = Field(
        "edge",
        description="Embedded vector engine when qdrant_url is unset: 'edge' (Qdrant Edge, payload-indexed "
        "filtered search, folder <data_dir>/vectors) or 'local' (qdrant-client local mode, brute force in "
        "Python, folder <data_dir>/qdrant; 830 ms per query at 100k points against 13 ms for edge).",
    )
    qdrant_api_key: SecretStr | None = Field(
        None, description="API key for the Qdrant server; required when qdrant_url is not loopback."
    )
    qdrant_path: Path | None = Field(
        None,
        description="Folder of the embedded vector store. Default: <data_dir>/vectors (edge) or "
        "<data_dir>/qdrant (local). ':memory:' for a throw-away store (tests).",
    )
    qdrant_lock_timeout_s: float = Field(
        600.0,
        ge=0,
        description="Qdrant local mode allows one process at a time: a second process waits this long "
        "for the lock on the local folder, then fails with an error naming the holder. 0 = fail at once.",
    )
    feeds_file: Path = Field(Path("feeds.yaml"), description="The outlets to poll.")
    narratives_dir: Path = Field(Path("narratives"), description="Seed narrative YAML files.")
    reports_dir: Path | None = Field(None, description="Where daily reports go. Default: <data_dir>/reports.")
    models_dir: Path | None = Field(
        None,
        description="Where the rebuilt default model and ONNX exports are written on first use (never "
        "into site-packages). Default: <data_dir>/models.",
    )

    @field_validator("database_url")
    @classmethod
    def _normalise_postgres_url(cls, value: str | None) -> str | None:
        # Hosting platforms hand out postgres:// URLs; SQLAlchemy wants a driver name.
        if value and value.startswith("postgres://"):
            return "postgresql+psycopg://" + value[len("postgres://") :]
        if value and value.startswith("postgresql://"):
            return "postgresql+psycopg://" + value[len("postgresql://") :]
        return value

    @model_validator(mode="after")
    def _qdrant_key_off_loopback(self) -> StorageSettings:
        # A Qdrant server reachable beyond this machine without a key lets anyone read or wipe it.
        if self.qdrant_url and self.qdrant_api_key is None and not is_loopback_url(self.qdrant_url):
            raise ValueError(
                "NARRWATCH_QDRANT_API_KEY is required when NARRWATCH_QDRANT_URL is not a loopback "
                f"address ({self.qdrant_url!r})"
            )
        return self

    # --- derived paths -------------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'narrwatch.db').resolve()}"

    @property
    def resolved_qdrant_path(self) -> str:
        if self.qdrant_path is not None:
            return str(self.qdrant_path)
        return str(self.data_dir / "qdrant")

    @property
    def resolved_reports_dir(self) -> Path:
        return self.reports_dir if self.reports_dir is not None else self.data_dir / "reports"

    @property
    def resolved_models_dir(self) -> Path:
        return self.models_dir if self.models_dir is not None else self.data_dir / "models"
