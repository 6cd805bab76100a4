"""What analysts' verdicts teach a seed. Pure computation (numpy, scikit-learn), no I/O.

Every verdict is a labelled passage: the evidence passage of a confirmed match is a phrasing of
the narrative as outlets really write it, that of a rejected one a near miss. Two uses:

1. From the first verdict on, confirmed passages join the seed's positives (and its parent's: a
   sub-narrative's article also carries the parent) and rejected passages join its negatives, so
   the ordinary scoring (nearest phrasing, negative penalty, background calibration) learns from
   them. The evidence then names the verdict it came closest to.
2. Once a seed has at least :data:`MIN_CONFIRMED` confirmed and :data:`MIN_REJECTED` rejected
   verdicts, a logistic regression over the evidence passage's embedding and its calibrated score
   takes over the decision from the threshold (the "head"). Its precision at the confirm cut is
   estimated by cross-validation on the verdicts and shown to the analyst.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from narrwatch.domain.scoring import HEAD_CONFIRM_PROBABILITY, Array

MIN_CONFIRMED = 10
MIN_REJECTED = 10
CV_FOLDS = 5


@dataclass(frozen=True)
class LabelledPassage:
    """One verdict: the seed, the evidence passage (text and vector), its calibrated score.

    ``stream_key``: the language key (``background.language_key``) of the passage's article, whose
    stored passages give the passage its floor (``learning.apply_verdicts``); None when unknown.
    """

    narrative_id: str
    text: str
    vector: Array
    score: float
    confirmed: bool
    stream_key: str | None = None


@dataclass(frozen=True)
class VerdictExamples:
    """Verdict passages to add to a seed's phrasings."""

    positives: tuple[str, ...]
    positive_vectors: Array
    negatives: tuple[str, ...]
    negative_vectors: Array
    positive_keys: tuple[str | None, ...] = ()
    negative_keys: tuple[str | None, ...] = ()


def examples_for(
    seed_id: str, verdicts: Sequence[LabelledPassage], parents: dict[str, str | None], dimension: int
) -> VerdictExamples:
    """Confirmed passages of the seed and of its sub-narratives; rejected passages of the seed."""
    children_of_seed = {child for child, parent in parents.items() if _descends(child, seed_id, parents)}
    positives = [
        v
        for v in verdicts
        if v.confirmed and (v.narrative_id == seed_id or v.narrative_id in children_of_seed)
    ]
    negatives = [v for v in verdicts if not v.confirmed and v.narrative_id == seed_id]

    def stack(rows: list[LabelledPassage]) -> Array:
        if not rows:
            return np.zeros((0, dimension), dtype=np.float32)
        return np.stack([row.vector for row in rows]).astype(np.float32)

    return VerdictExamples(
        positives=tuple(verdict_phrasing(v.text) for v in positives),
        positive_vectors=stack(positives),
        negatives=tuple(verdict_phrasing(v.text) for v in negatives),
        negative_vectors=stack(negatives),
        positive_keys=tuple(v.stream_key for v in positives),
        negative_keys=tuple(v.stream_key for v in negatives),
    )


def verdict_phrasing(text: str) -> str:
    """How a verdict passage is named as the closest phrasing in evidence."""
    return "verdict: " + text


def _descends(seed_id: str, ancestor: str, parents: dict[str, str | None]) -> bool:
    seen = {seed_id}
    current = parents.get(seed_id)
    while current is not None and current not in seen:
        if current == ancestor:
            return True
        seen.add(current)
        current = parents.get(current)
    return False


@dataclass(frozen=True)
class SeedHead:
    """A per-seed logistic regression over [evidence embedding, calibrated score]."""

    narrative_id: str
    model: Any  # sklearn LogisticRegression
    n_confirmed: int
    n_rejected: int
    cv_precision: float | None  # at HEAD_CONFIRM_PROBABILITY, from out-of-fold predictions
    cv_recall: float | None

    def probability(self, vector: Array, score: float) -> float:
        features = _features(vector[np.newaxis, :], np.array([score]))
        return float(self.model.predict_proba(features)[0, 1])

    def describe(self) -> str:
        precision = "n/a" if self.cv_precision is None else f"{self.cv_precision:.2f}"
        recall = "n/a" if self.cv_recall is None else f"{self.cv_recall:.2f}"
        return (
            f"verdict head on {self.n_confirmed} confirmed / {self.n_rejected} rejected: "
            f"cross-validated precision {precision}, recall {recall}"
        )


def _features(vectors: Array, scores: np.ndarray) -> np.ndarray:
    return np.hstack([vectors.astype(np.float64), scores.reshape(-1, 1).astype(np.float64)])


def train_head(seed_id: str, verdicts: Sequence[LabelledPassage], seed: int = 0) -> SeedHead | None:
    """The seed's head, or None while it has too few confirmed or rejected verdicts."""
    own = [v for v in verdicts if v.narrative_id == seed_id]
    n_confirmed = sum(v.confirmed for v in own)
    n_rejected = len(own) - n_confirmed
    if n_confirmed < MIN_CONFIRMED or n_rejected < MIN_REJECTED:
        return None
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = _features(np.stack([v.vector for v in own]), np.array([v.score for v in own]))
    y = np.array([int(v.confirmed) for v in own])
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
    folds = min(CV_FOLDS, n_confirmed, n_rejected)
    out_of_fold = cross_val_predict(
        model, x, y, cv=StratifiedKFold(folds, shuffle=True, random_state=seed), method="predict_proba"
    )[:, 1]
    predicted = out_of_fold >= HEAD_CONFIRM_PROBABILITY
    true_positive = int((predicted & (y == 1)).sum())
    precision = true_positive / int(predicted.sum()) if predicted.any() else None
    recall = true_positive / n_confirmed
    model.fit(x, y)
    return SeedHead(seed_id, model, n_confirmed, n_rejected, precision, recall)
