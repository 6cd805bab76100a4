"""Seeds ready to score: their vectors (encoded once per process), thresholds and calibrations.

The match step and the analyst's tools (backtest, calibrate, try a text) prepare seeds the same way.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from sqlalchemy import select

from narrwatch.db.models import (
    Calibration,
    NarrativeVersion,
)
from narrwatch.domain.scoring import (
    BACKGROUND_TEXTS,
    ArticleBatch,
    Level,
    ScoringParams,
    SeedScore,
    SeedVectors,
    Thresholds,
    batch_calibration_inputs,
    build_seed_vectors,
    compete,
    decide,
    gate_by_parent,
    resolve_thresholds,
    score_article,
)
from narrwatch.files import write_atomically
from narrwatch.steps.match.learning import stream_say, with_stance
from narrwatch.steps.match.seeds import NarrativeSet

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from narrwatch.config import Settings
    from narrwatch.context import AppContext
    from narrwatch.domain.scoring import Array
    from narrwatch.domain.verdicts import SeedHead, StreamHead
    from narrwatch.ports import Encoder
    from narrwatch.steps.match.calibration import LanguageCalibrator


log = logging.getLogger(__name__)

#: Bump when the scoring recipe changes in a way that changes scores: stored match states of the old
#: recipe then no longer count as up to date and the next `match` rescores its window.
SCORING_REVISION = "3"

#: Encoded seed texts, keyed by encoder identity, kind (query/passage) and text. A seed version's
#: texts are encoded once per process; an edit re-encodes only the changed phrasings.
_TEXT_VECTORS: dict[tuple[str, str, str], Array] = {}


def encoder_key(encoder: Encoder) -> str:
    """What a text's vector depends on: model files, backend and the prompts put before the text
    (settings can change them; test encoders have none)."""
    prompts = (getattr(encoder, "query_prompt", ""), getattr(encoder, "passage_prompt", ""))
    return f"{encoder.model_name}|{encoder.backend}|{encoder.fingerprint}|{prompts!r}"


def encode_cached(
    encoder: Encoder,
    texts: Sequence[str],
    kind: Literal["query", "passage"],
    cache_dir: Path | None = None,
) -> Array:
    """``texts`` encoded one at a time, each once per process and, with ``cache_dir``, once per
    models folder: every match run, backtest or tried text is a new process that needs every seed
    phrasing (about 20 a seed, 50 ms each here)."""
    key = encoder_key(encoder)
    missing = list(dict.fromkeys(t for t in texts if (key, kind, t) not in _TEXT_VECTORS))
    folder = _text_vector_folder(cache_dir, key) if cache_dir is not None else None
    encode = encoder.encode_queries if kind == "query" else encoder.encode_passages
    for text in missing:
        path = folder / _text_file_name(kind, text) if folder is not None else None
        vector = _read_vector(path, encoder.dimension) if path is not None else None
        if vector is None:
            # One text per call: with dynamically quantised (int8) models a vector depends on the
            # other texts and the padding of its batch (cosine ~0.99 between batchings), so a seed's
            # vectors would depend on what the process happened to encode before.
            vector = np.asarray(encode([text])[0], dtype=np.float32)
            if path is not None:
                _write_vector(path, vector)
        _TEXT_VECTORS[(key, kind, text)] = vector
    if not texts:
        return np.zeros((0, encoder.dimension), dtype=np.float32)
    return np.stack([_TEXT_VECTORS[(key, kind, t)] for t in texts])


def _text_vector_folder(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"text-vectors-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def _text_file_name(kind: str, text: str) -> str:
    return hashlib.sha256(f"{kind}\0{text}".encode()).hexdigest()[:40] + ".npy"


def _read_vector(path: Path, dimension: int) -> Array | None:
    """The stored vector, or None when there is none or it cannot be read (it is then made again)."""
    try:
        vector = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    if vector.shape != (dimension,) or vector.dtype != np.float32:
        return None
    return vector


def _write_vector(path: Path, vector: Array) -> None:
    """Keep ``vector`` for later runs; a folder that cannot be written costs only the time saved."""
    buffer = io.BytesIO()
    np.save(buffer, vector, allow_pickle=False)
    try:
        write_atomically(path, buffer.getvalue())  # a concurrent reader sees the whole vector or none
    except OSError as exc:
        log.warning(
            "cannot keep a seed text's vector in %s (%s): it is encoded again next run", path.parent, exc
        )


def scoring_params(settings: Settings) -> ScoringParams:
    return ScoringParams(
        min_passage_chars=settings.match_min_passage_chars, competition_gap=settings.match_competition_gap
    )


@dataclass
class PreparedSeeds:
    """Seeds encoded for one encoder, with their resolved thresholds."""

    narratives: NarrativeSet
    vectors: dict[str, SeedVectors]
    thresholds: dict[str, Thresholds]
    params: ScoringParams
    model_name: str
    #: the bundled background's vectors (phrasing floors of seeds and verdict passages)
    background: Array
    #: per-language calibration (``learning.attach_calibration``); None: raw scores decide
    calibrator: LanguageCalibrator | None = None
    #: per-seed verdict heads (``learning.apply_verdicts``)
    heads: dict[str, SeedHead] = field(default_factory=dict)
    #: the collection's head over every seed's verdicts, for seeds without their own
    stream_head: StreamHead | None = None
    #: digest of the verdicts learned from: new verdicts make stored match states out of date
    learned: str = ""

    @property
    def parents(self) -> dict[str, str | None]:
        return self.narratives.parents()

    def raw_scores(
        self, passages: Array, texts: Sequence[str], lexical_text: str | None = None
    ) -> dict[str, SeedScore]:
        return {
            seed_id: score_article(passages, texts, seed_vectors, self.params, lexical_text)
            for seed_id, seed_vectors in self.vectors.items()
        }

    def calibration_inputs(self, articles: Sequence[tuple[Array, Sequence[str]]]) -> dict[str, list[float]]:
        """Every seed's calibration inputs (raw scores before their clip) for ``articles``:
        (passage vectors, passage texts) each, scored in one batch per seed."""
        batch = ArticleBatch.of(articles, self.params)
        return {
            seed_id: batch_calibration_inputs(batch, seed_vectors, self.params).tolist()
            for seed_id, seed_vectors in self.vectors.items()
        }

    def score(
        self,
        passages: Array,
        texts: Sequence[str],
        lexical_text: str | None = None,
        language: str | None = None,
    ) -> dict[str, SeedScore]:
        """Raw scores, calibrated for the article's language, with its stance and heads' say."""
        scores = self.raw_scores(passages, texts, lexical_text)
        text = lexical_text if lexical_text is not None else " ".join(texts)
        if self.calibrator is not None:
            scores = self.calibrator.calibrate(self, scores, language, text)
        scores = with_stance(scores, text)
        for seed_id, head in self.heads.items():
            if seed_id in scores and len(passages):
                found = scores[seed_id]
                probability = head.probability(passages[found.evidence_idx], found.score)
                scores[seed_id] = replace(found, head_probability=probability)
        if self.stream_head is not None and len(passages):
            scores = stream_say(self.stream_head, scores, passages)
        return scores

    def raw_threshold(self, seed_id: str, language: str | None, calibrated: float) -> float:
        """The lowest raw score that reaches ``calibrated`` for an article of ``language``."""
        if self.calibrator is None:
            return calibrated
        return self.calibrator.raw_threshold(self, seed_id, language, calibrated)

    def decide(self, scores: Mapping[str, SeedScore]) -> dict[str, Level]:
        levels = {seed_id: decide(score, self.thresholds[seed_id]) for seed_id, score in scores.items()}
        parents = self.parents
        return gate_by_parent(compete(levels, scores, parents, self.params.competition_gap), parents)


def positive_texts(narratives: NarrativeSet, seed_id: str, params: ScoringParams) -> list[str]:
    seed = narratives.get(seed_id)
    texts = [seed.description] if params.use_description else []
    texts += seed.examples + narratives.inherited_examples(seed_id)
    return list(dict.fromkeys(texts))


def prepare_seeds(
    encoder: Encoder,
    narratives: NarrativeSet,
    seed_ids: Iterable[str],
    params: ScoringParams,
    thresholds: Mapping[str, Thresholds],
    cache_dir: Path | None = None,
) -> PreparedSeeds:
    """``cache_dir``: where encoded seed texts are kept between processes (the models folder)."""
    background = encode_cached(encoder, BACKGROUND_TEXTS, "passage", cache_dir)
    vectors = {}
    for seed_id in seed_ids:
        seed = narratives.get(seed_id)
        positives = positive_texts(narratives, seed_id, params)
        vectors[seed_id] = build_seed_vectors(
            seed_id,
            positives,
            encode_cached(encoder, positives, "query", cache_dir),
            seed.negatives,
            encode_cached(encoder, seed.negatives, "query", cache_dir),
            background,
            seed.keywords,
            params,
        )
    return PreparedSeeds(narratives, vectors, dict(thresholds), params, encoder.model_name, background)


def prepare_configured_seeds(
    ctx: AppContext,
    encoder: Encoder,
    narratives: NarrativeSet,
    seed_ids: Iterable[str],
    thresholds: Mapping[str, Thresholds],
) -> PreparedSeeds:
    """Seeds prepared as the match step prepares them: the settings' scoring parameters, and their
    phrasings' vectors kept in the models folder. The analyst's tools call this too, so a seed
    scores a text the same way in ``narratives test`` as in the pipeline."""
    params = scoring_params(ctx.settings)
    return prepare_seeds(encoder, narratives, seed_ids, params, thresholds, ctx.settings.resolved_models_dir)


def resolve_seed_thresholds(
    settings: Settings,
    model_name: str,
    narratives: NarrativeSet,
    calibrations: Mapping[str, tuple[float, float]],
) -> dict[str, Thresholds]:
    result = {}
    for seed in narratives:
        seed_pair = (seed.thresholds.suggest, seed.thresholds.confirm) if seed.thresholds else (None, None)
        result[seed.id] = resolve_thresholds(
            model_name,
            settings=(settings.match_suggest_threshold, settings.match_confirm_threshold),
            seed=seed_pair,
            calibration=calibrations.get(seed.id),
        )
    return result


def load_calibrations(session: Session, collection: str) -> dict[str, tuple[float, float]]:
    rows = session.execute(
        select(Calibration.narrative_id, Calibration.suggest, Calibration.confirm).where(
            Calibration.collection == collection
        )
    ).all()
    return {row.narrative_id: (row.suggest, row.confirm) for row in rows}


def seeds_key(prepared: PreparedSeeds, versions: Mapping[str, NarrativeVersion]) -> str:
    """What an article's match state must equal to be up to date: versions, thresholds, recipe."""
    material = {
        "revision": SCORING_REVISION,
        "learned": prepared.learned,
        "params": asdict(prepared.params),
        "seeds": {
            seed_id: [versions[seed_id].content_hash, prepared.thresholds[seed_id].as_dict()]
            for seed_id in sorted(prepared.vectors)
        },
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
