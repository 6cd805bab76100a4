"""Every seed's score for one text, with the evidence passage: how an analyst tries a phrasing."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from narrwatch.context import AppContext
from narrwatch.steps.match.calibration import attach_calibration_bundled
from narrwatch.steps.match.learning import learn_from_store
from narrwatch.steps.match.prepare import (
    load_calibrations,
    prepare_configured_seeds,
    resolve_seed_thresholds,
)
from narrwatch.steps.match.seedstore import load_seeds


@dataclass
class TextSeedResult:
    narrative_id: str
    status: str
    parent: str | None
    score: float
    level: str | None
    thresholds: dict[str, float | str]
    evidence_idx: int
    evidence_text: str
    evidence_example: str
    negative_score: float
    lexical_score: float
    keyword_hits: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TextTestResult:
    model_name: str
    passages: int
    seeds: list[TextSeedResult]
    notes: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "passages": self.passages,
            "seeds": [seed.as_dict() for seed in self.seeds],
            "notes": self.notes,
        }


def test_text(ctx: AppContext, text: str, *, title: str = "", include_drafts: bool = True) -> TextTestResult:
    """Every seed's score for one text, best first, with the evidence passage.

    Drafts are scored as if active (that is what an analyst tests before activating one); retired
    seeds are left out. Calibrated thresholds are used when the SQL store has them.
    """
    from narrwatch.embeddings.collections import collection_for
    from narrwatch.embeddings.passages import split_passages
    from narrwatch.steps.poll.language import detect_language, release_models

    narratives = load_seeds(ctx)
    status_on_disk = {seed.id: seed.status for seed in narratives}
    if include_drafts:
        for seed in list(narratives):
            if seed.status == "draft":
                narratives = narratives.with_status(seed.id, "active")
    encoder = ctx.encoder
    notes: list[str] = []
    calibrations: dict[str, tuple[float, float]] = {}
    try:
        with ctx.transaction() as session:
            calibrations = load_calibrations(session, collection_for(encoder))
    except Exception as exc:  # no schema yet, no server: thresholds without calibrations still work
        notes.append(
            f"calibrations not read from the SQL store ({type(exc).__name__}); using seed/model thresholds"
        )
    passages = split_passages(title, text, encoder)
    if not passages:
        raise ValueError("the text is empty")
    language = detect_language(" ".join(passages)).language
    release_models()  # one text detected: the detector's models need not sit beside the seeds' work
    vectors = encoder.encode_passages(passages)
    active = [seed.id for seed in narratives.active()]
    thresholds = resolve_seed_thresholds(ctx.settings, encoder.model_name, narratives, calibrations)
    prepared = prepare_configured_seeds(ctx, encoder, narratives, active, thresholds)
    try:
        learn_from_store(ctx, prepared, collection_for(encoder), dt.datetime.now(dt.UTC))
    except Exception as exc:  # no schema yet, no server: the bundled background still calibrates
        if ctx.settings.match_calibration:
            attach_calibration_bundled(encoder, prepared, ctx.settings.resolved_models_dir)
        notes.append(
            f"stored backgrounds and verdicts not read ({type(exc).__name__}); bundled background used"
        )
    scores = prepared.score(np.asarray(vectors, dtype=np.float32), passages, language=language)
    levels = prepared.decide(scores)
    results = [
        TextSeedResult(
            narrative_id=seed_id,
            status=status_on_disk[seed_id],
            parent=narratives.get(seed_id).parent,
            score=round(score.score, 4),
            level=levels.get(seed_id),
            thresholds=thresholds[seed_id].as_dict(),
            evidence_idx=score.evidence_idx,
            evidence_text=passages[score.evidence_idx],
            evidence_example=score.nearest_positive,
            negative_score=round(score.negative_score, 4),
            lexical_score=round(score.lexical_score, 4),
            keyword_hits=list(score.keyword_hits),
        )
        for seed_id, score in scores.items()
    ]
    results.sort(key=lambda item: -item.score)
    return TextTestResult(encoder.model_name, len(passages), results, notes)


# pytest would collect a function named test_*: this one is not a test.
test_text.__test__ = False  # type: ignore[attr-defined]
