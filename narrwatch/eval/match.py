"""`narrwatch eval match`: the matching figures on a labelled set, a contract other tools rely on.

The articles go through the pipeline's own code on temporary stores (a SQLite file in a temporary
folder and Qdrant ``:memory:``): the same passage splitting and encoder (``vectorize.embed_pending``)
and the same matching (``matching.match_articles``) with the seeds of the given directory. The
configured database and vector store are never opened.

Input: JSON Lines, one article per line: ``id``, ``title``, ``text``, ``language``, optional
``published`` (ISO 8601) and ``outlet``, and ``labels`` (seed ids, leaf convention, [] for none).

Output (``--json``): ``{"n_articles": N, "fine": {...}, "coarse": {...}, "per_narrative": {...}}``;
``fine`` and ``coarse`` hold ``precision``, ``recall``, ``f1_micro``, ``f1_macro``, ``f1_samples``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import re
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from sqlalchemy import select

from narrwatch.config import Settings
from narrwatch.context import AppContext
from narrwatch.db import rules
from narrwatch.db.models import Article, Base, Feed, Match
from narrwatch.domain.clock import iso_utc
from narrwatch.domain.metrics import coarse_mapper, evaluate, map_labels
from narrwatch.domain.scoring import LEVELS, ScoringParams, Thresholds, leaf_labels
from narrwatch.steps.match.seeds import NarrativeSet, load_narratives

if TYPE_CHECKING:
    from narrwatch.ports import Encoder

EvalLevel = Literal["suggest", "confirm"]

#: Published time given to articles without one: any fixed instant works, matching looks at all.
UNDATED = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
#: Country of articles whose input gives none (not a real ISO code, on purpose).
EVAL_COUNTRY = "xx"


class EvalDataError(ValueError):
    """A line of the articles file is unusable; the message names the file and line."""


@dataclass(frozen=True)
class EvalArticle:
    id: str
    title: str
    text: str
    language: str | None
    published: dt.datetime
    outlet: str
    labels: frozenset[str]
    country: str = EVAL_COUNTRY


def iter_jsonl_rows(path: Path, error: type[ValueError]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(where, row)`` for each JSON object line of a labelled file, ``where`` = file:line.

    Every problem raises ``error`` naming the file and line; ids must be present and unique.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror or exc}") from exc
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{where}: not JSON: {exc.msg}") from exc
        if not isinstance(row, dict):
            raise error(f"{where}: each line must be a JSON object")
        if row.get("id") in (None, ""):
            raise error(f"{where}: field 'id' is missing")
        article_id = str(row["id"])
        if article_id in seen:
            raise error(f"{where}: id {article_id!r} already used on line {seen[article_id]}")
        seen[article_id] = number
        yield where, row


def read_eval_articles(path: Path, narratives: NarrativeSet | None = None) -> list[EvalArticle]:
    """Parse and check the JSON Lines file; labels must be seed ids when ``narratives`` is given."""
    articles: list[EvalArticle] = []
    for where, row in iter_jsonl_rows(path, EvalDataError):
        for name in ("title", "text", "labels"):
            if name not in row:
                raise EvalDataError(f"{where}: field {name!r} is missing")
        labels = row["labels"]
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise EvalDataError(f"{where}: labels must be a list of seed ids")
        if narratives is not None:
            unknown = sorted(set(labels) - set(narratives.ids))
            if unknown:
                raise EvalDataError(f"{where}: labels {unknown} are not seed ids in the narratives dir")
        if not isinstance(row["title"], str) or not isinstance(row["text"], str):
            raise EvalDataError(f"{where}: title and text must be strings")
        articles.append(
            EvalArticle(
                id=str(row["id"]),
                title=row["title"],
                text=row["text"],
                language=row.get("language"),
                published=_parse_published(row.get("published"), where),
                outlet=str(row.get("outlet") or "eval"),
                labels=frozenset(labels),
            )
        )
    if not articles:
        raise EvalDataError(f"{path}: no articles")
    return articles


def _parse_published(value: Any, where: str) -> dt.datetime:
    if value in (None, ""):
        return UNDATED
    try:
        return iso_utc(str(value))
    except ValueError as exc:
        raise EvalDataError(f"{where}: published {value!r} is not ISO 8601") from exc


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@contextmanager
def temporary_context(
    settings: Settings, narratives_dir: Path, encoder: Encoder | None = None
) -> Iterator[AppContext]:
    """An AppContext on a throw-away SQLite file and Qdrant ``:memory:``, with the given seeds."""
    with tempfile.TemporaryDirectory(prefix="narrwatch-eval-") as folder:
        temp = Path(folder)
        temp_settings = settings.model_copy(
            update={
                "data_dir": temp,
                "database_url": f"sqlite:///{temp / 'eval.db'}",
                "qdrant_url": None,
                "qdrant_api_key": None,
                "qdrant_path": Path(":memory:"),
                "narratives_dir": Path(narratives_dir),
                "reports_dir": temp / "reports",
                # ONNX exports are reused from the configured folder, never written into the temp one
                "models_dir": settings.resolved_models_dir,
            }
        )
        ctx = AppContext.from_settings(temp_settings)
        if encoder is not None:
            ctx._encoder = encoder
        try:
            Base.metadata.create_all(ctx.engine)
            yield ctx
        finally:
            ctx.close()


class StorableArticle(Protocol):
    """What the evaluation commands store: a labelled row of any of their input files."""

    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def language(self) -> str | None: ...
    @property
    def published(self) -> dt.datetime: ...
    @property
    def outlet(self) -> str: ...
    @property
    def country(self) -> str: ...


def store_eval_articles(
    ctx: AppContext, articles: Sequence[StorableArticle], now: dt.datetime
) -> dict[str, int]:
    """Insert the articles, one made-up feed per outlet; returns input id -> stored article id.

    URLs and title/story keys derive from the input id, so every row is its own article and story:
    the evaluation measures matching, clustering and detection, not deduplication.
    """
    ids: dict[str, int] = {}
    with ctx.transaction() as session:
        feeds: dict[str, str] = {}
        for article in articles:
            if article.outlet not in feeds:
                slug = re.sub(r"[^a-z0-9]+", "-", article.outlet.lower()).strip("-") or "x"
                feed_id = f"eval-{slug[:80]}-{_digest(article.outlet)[:8]}"
                feeds[article.outlet] = feed_id
                if session.get(Feed, feed_id) is not None:
                    continue  # stored with an earlier set (eval match --verdicts)
                session.add(
                    Feed(
                        id=feed_id,
                        outlet=article.outlet[:100],
                        name=f"evaluation outlet {article.outlet}",
                        url=f"https://eval.invalid/{feed_id}",
                        country=article.country,
                    )
                )
        session.flush()
        for article in articles:
            key = _digest(article.id)[:32]
            row = Article(
                canonical_url=f"https://eval.invalid/{key}",
                url=f"https://eval.invalid/{key}",
                feed_id=feeds[article.outlet],
                outlet=article.outlet[:100],
                country=article.country,
                language=article.language,
                title=article.title,
                title_key=_digest("title:" + article.id),
                summary="",
                text=article.text,
                content_hash=_digest(article.title + "\n" + article.text),
                published_at=article.published,
                fetched_at=now,
                story_key=_digest("story:" + article.id),
            )
            session.add(row)
            session.flush()
            ids[article.id] = row.id
    return ids


@dataclass
class EmbeddedSet:
    """An evaluation set stored, embedded and ready to match, inside a temporary context."""

    ctx: AppContext
    articles: list[EvalArticle]
    ids: dict[str, int]
    start: dt.datetime
    end: dt.datetime


@contextmanager
def embedded_set(
    articles_path: Path, narratives_dir: Path, settings: Settings, encoder: Encoder | None = None
) -> Iterator[EmbeddedSet]:
    from narrwatch.steps.embed import embed as vectorize

    narratives = load_narratives(narratives_dir)
    articles = read_eval_articles(articles_path, narratives)
    start = min(article.published for article in articles)
    end = max(article.published for article in articles) + dt.timedelta(seconds=1)
    with temporary_context(settings, narratives_dir, encoder) as ctx:
        ids = store_eval_articles(ctx, articles, end)
        vectorize.embed_pending(ctx, end)
        yield EmbeddedSet(ctx, articles, ids, start, end)


def predicted_labels(ctx: AppContext, ids: dict[str, int], level: EvalLevel) -> dict[str, set[str]]:
    """Stored matches at ``level`` (confirm: only confirmed; suggest: both), per eval article id."""
    allowed = LEVELS[LEVELS.index(level) :]
    by_article: dict[int, set[str]] = {}
    with ctx.transaction() as session:
        for article_id, narrative_id, match_level in session.execute(
            select(Match.article_id, Match.narrative_id, Match.level)
        ):
            if match_level in allowed:
                by_article.setdefault(article_id, set()).add(narrative_id)
    return {eval_id: by_article.get(stored_id, set()) for eval_id, stored_id in ids.items()}


def figures(
    articles: Sequence[EvalArticle], predicted: dict[str, set[str]], narratives: NarrativeSet
) -> dict[str, Any]:
    """The contract's JSON object from gold labels and (raw) predictions."""
    parents = narratives.parents()
    gold = [leaf_labels(article.labels, parents) for article in articles]
    guess = [leaf_labels(predicted.get(article.id, set()), parents) for article in articles]
    to_top = coarse_mapper(parents)
    fine = evaluate(gold, guess, labels=[seed.id for seed in narratives.active()])
    coarse = evaluate(
        map_labels(gold, to_top),
        map_labels(guess, to_top),
        labels=[seed.id for seed in narratives.active() if seed.parent is None],
    )
    per_narrative: dict[str, Any] = {}
    for seed_id, label_figures in fine.per_label.items():
        entry: dict[str, Any] = label_figures.as_dict()
        if seed_id in coarse.per_label:
            entry["coarse"] = coarse.per_label[seed_id].as_dict()
        per_narrative[seed_id] = entry
    return {
        "n_articles": len(articles),
        "fine": fine.as_dict(),
        "coarse": coarse.as_dict(),
        "per_narrative": per_narrative,
    }


def eval_match(
    articles_path: Path,
    narratives_dir: Path,
    level: EvalLevel,
    settings: Settings,
    *,
    encoder: Encoder | None = None,
    verdicts_path: Path | None = None,
) -> dict[str, Any]:
    """Run the articles through embedding and matching on temporary stores and score the matches.

    ``verdicts_path`` (same format) is stored, embedded and matched first; its labels then become
    analysts' verdicts (:func:`apply_labels_as_verdicts`) that the matching of ``articles_path``
    learns from. ``encoder`` lets a caller that already holds the configured encoder (tests,
    tuning) skip loading it again; by default it is loaded from ``settings``.
    """
    from narrwatch.steps.embed import embed as vectorize
    from narrwatch.steps.match import match as matching

    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    narratives = load_narratives(narratives_dir)
    articles = read_eval_articles(articles_path, narratives)
    verdict_rows = read_eval_articles(verdicts_path, narratives) if verdicts_path is not None else []
    clash = {a.id for a in articles} & {a.id for a in verdict_rows}
    if clash:
        raise EvalDataError(f"{verdicts_path}: ids also in {articles_path}: {sorted(clash)[:5]}")
    everything = [*verdict_rows, *articles]
    start = min(article.published for article in everything)
    end = max(article.published for article in everything) + dt.timedelta(seconds=1)
    with temporary_context(settings, narratives_dir, encoder) as ctx:
        if verdict_rows:
            verdict_ids = store_eval_articles(ctx, verdict_rows, end)
            vectorize.embed_pending(ctx, end)
            matching.match_articles(ctx, start, end, end)
            apply_labels_as_verdicts(ctx, verdict_rows, verdict_ids, narratives, end)
        ids = store_eval_articles(ctx, articles, end)
        vectorize.embed_pending(ctx, end)
        matching.match_articles(ctx, start, end, end)
        predicted = predicted_labels(ctx, ids, level)
    return figures(articles, predicted, narratives)


def apply_labels_as_verdicts(
    ctx: AppContext,
    articles: Sequence[EvalArticle],
    ids: dict[str, int],
    narratives: NarrativeSet,
    now: dt.datetime,
) -> dict[str, int]:
    """An analyst's pass over the review queue: each stored match of these articles (suggest level
    or above) is confirmed when its seed is labelled, or is an ancestor of a labelled seed (the leaf
    convention), and rejected otherwise. Labelled seeds that matched nothing get no verdict."""
    from narrwatch.db.models import Verdict
    from narrwatch.domain.scoring import ancestors

    parents = narratives.parents()
    wanted: dict[int, set[str]] = {}
    for article in articles:
        labels = set(article.labels)
        wanted[ids[article.id]] = labels | {a for label in labels for a in ancestors(label, parents)}
    counts = {"confirm": 0, "reject": 0}
    with ctx.transaction() as session:
        # The articles were stored just now: none has a verdict yet, so plain inserts suffice.
        for match in session.scalars(
            select(Match).where(Match.article_id.in_(list(wanted))).order_by(Match.id)
        ):
            verdict = "confirm" if match.narrative_id in wanted[match.article_id] else "reject"
            session.add(
                Verdict(
                    article_id=match.article_id,
                    narrative_id=match.narrative_id,
                    match_id=match.id,
                    verdict=verdict,
                    score=match.score,
                    collection=match.collection,
                    note="eval match --verdicts",
                    created_at=now,
                )
            )
            counts[verdict] += 1
        rules.mark_articles_stale(session, wanted)
    return counts


# --- tuning (eval/tune only) --------------------------------------------------------------------


@dataclass(frozen=True)
class TuneCandidate:
    params: ScoringParams
    suggest: float
    confirm: float
    figures_suggest: dict[str, Any]
    figures_confirm: dict[str, Any]


def _f_beta(precision: float, recall: float, beta: float) -> float:
    if precision == 0 and recall == 0:
        return 0.0
    b2 = beta * beta
    return (1 + b2) * precision * recall / (b2 * precision + recall)


def tune_match(
    articles_path: Path,
    narratives_dir: Path,
    settings: Settings,
    *,
    grid: dict[str, Sequence[Any]] | None = None,
    thresholds: Sequence[float] | None = None,
    encoder: Encoder | None = None,
) -> list[TuneCandidate]:
    """Search scoring parameters and the two global thresholds on a tuning set; best first.

    Rule: ``suggest`` maximises the fine micro F2 (the review queue should miss little) and
    ``confirm`` the fine micro F0.5 (the report should be right), never below ``suggest``.
    Candidates are ranked by the fine micro F1 at the confirm level. Run it on eval/tune only:
    eval/dev stays held out for the figures.
    """
    from narrwatch.steps.match.prepare import prepare_seeds, scoring_params
    from narrwatch.steps.match.stored import load_stored_articles

    narratives = load_narratives(narratives_dir)
    grid = grid or {
        "top_k": [1, 2, 3],
        "negative_weight": [0.0, 0.5, 1.0, 2.0],
        "lexical_weight": [0.0, 0.05, 0.1],
        "rebuttal_weight": [0.0, 0.05, 0.1, 0.15],
        "use_description": [True, False],
    }
    steps = thresholds or [round(0.2 + 0.01 * i, 2) for i in range(61)]
    base = scoring_params(settings)
    candidates: list[TuneCandidate] = []
    with embedded_set(articles_path, narratives_dir, settings, encoder) as data:
        from narrwatch.embeddings.collections import collection_for

        ctx = data.ctx
        collection = collection_for(ctx.encoder)
        with ctx.transaction() as session:
            stored, _missing = load_stored_articles(
                session, ctx.vector_store, collection, list(data.ids.values())
            )
        by_stored = {article.id: article for article in stored}
        active = [seed.id for seed in narratives.active()]
        names = list(grid)
        for values in itertools.product(*(grid[name] for name in names)):
            params = replace(base, **dict(zip(names, values, strict=True)))
            unset = {seed_id: Thresholds(-1.0, -1.0) for seed_id in active}
            prepared = prepare_seeds(
                ctx.encoder, narratives, active, params, unset, cache_dir=ctx.settings.resolved_models_dir
            )
            scored = {
                eval_id: prepared.score(by_stored[stored_id].vectors, by_stored[stored_id].passage_texts)
                for eval_id, stored_id in data.ids.items()
                if stored_id in by_stored
            }

            def predict(
                threshold: float, level: EvalLevel, prepared: Any = prepared, scored: Any = scored
            ) -> dict[str, set[str]]:
                prepared.thresholds = {s: Thresholds(threshold, threshold) for s in active}
                allowed = LEVELS[LEVELS.index(level) :]
                return {
                    eval_id: {s for s, found in prepared.decide(scores).items() if found in allowed}
                    for eval_id, scores in scored.items()
                }

            def fine_f(item: tuple[float, dict[str, Any]], beta: float) -> float:
                return _f_beta(item[1]["fine"]["precision"], item[1]["fine"]["recall"], beta)

            suggest_curve = [(t, figures(data.articles, predict(t, "suggest"), narratives)) for t in steps]
            suggest_t, suggest_fig = max(suggest_curve, key=lambda item: fine_f(item, 2.0))
            confirm_curve = [
                (t, figures(data.articles, predict(t, "confirm"), narratives))
                for t in steps
                if t >= suggest_t
            ]
            confirm_t, confirm_fig = max(confirm_curve, key=lambda item: fine_f(item, 0.5))
            candidates.append(TuneCandidate(params, suggest_t, confirm_t, suggest_fig, confirm_fig))
    candidates.sort(key=lambda c: -c.figures_confirm["fine"]["f1_micro"])
    return candidates
