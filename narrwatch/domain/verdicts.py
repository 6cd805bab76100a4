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
3. Once a collection holds at least :data:`MIN_STREAM_CONFIRMED` confirmed and
   :data:`MIN_STREAM_REJECTED` rejected verdicts over all its seeds, one logistic regression over
   every verdict (the "stream head") decides which suggestions of the seeds without a head of their
   own are confirmed. Most seeds never collect 10 + 10 verdicts, but what analysts reject is often
   the same across seeds: a way of writing (a report of the claim, a roundup) or a seed that wins
   only narrowly. Its features (:func:`decision_features`) are the evidence passage's embedding and
   how the seed's score stands in the article's row; its cut is the probability with the best
   out-of-fold F1 on the verdicts. Chosen on the FNC-1 tuning part (eval/thirdparty/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from narrwatch.domain.scoring import HEAD_CONFIRM_PROBABILITY, Array, SeedScore

MIN_CONFIRMED = 10
MIN_REJECTED = 10
CV_FOLDS = 5
MIN_STREAM_CONFIRMED = 10
MIN_STREAM_REJECTED = 5
#: Inverse regularisation of the stream head: the best out-of-fold F1 of 0.1 / 1 / 10 / 100 on the
#: FNC-1 tuning part's verdicts (CLEF 2020's differed by 0.01 between 10 and 100).
STREAM_HEAD_C = 10.0
_CV_REPEATS = 5
#: Cuts tried on the out-of-fold probabilities; of cuts with equal F1 the lowest wins.
_CUT_GRID = tuple(round(0.10 + 0.05 * i, 2) for i in range(17))


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
    #: :func:`decision_features` of the match the verdict was given on (the stream head's input).
    features: Array | None = None


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
        return (
            f"verdict head on {self.n_confirmed} confirmed / {self.n_rejected} rejected: "
            + _cross_validated(self.cv_precision, self.cv_recall)
        )


def _cross_validated(precision: float | None, recall: float | None) -> str:
    shown = ["n/a" if value is None else f"{value:.2f}" for value in (precision, recall)]
    return f"cross-validated precision {shown[0]}, recall {shown[1]}"


def _content_order(verdict: LabelledPassage) -> tuple[str, str, bool, bytes]:
    """Training rows in an order of their content: the folds, and so the cross-validated figures and
    the stream head's cut, then depend on which verdicts there are, not on the order they came in."""
    return (verdict.narrative_id, verdict.text, verdict.confirmed, np.asarray(verdict.vector).tobytes())


def _features(vectors: Array, scores: np.ndarray) -> np.ndarray:
    return np.hstack([vectors.astype(np.float64), scores.reshape(-1, 1).astype(np.float64)])


def train_head(seed_id: str, verdicts: Sequence[LabelledPassage], seed: int = 0) -> SeedHead | None:
    """The seed's head, or None while it has too few confirmed or rejected verdicts."""
    own = sorted((v for v in verdicts if v.narrative_id == seed_id), key=_content_order)
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


def decision_features(score: SeedScore, row: Mapping[str, SeedScore], vector: Array, passages: int) -> Array:
    """What the stream head sees of one seed's score for an article: the scores (calibrated, raw,
    best passage, nearest negative), whether the article reports or debunks, its length, how far the
    seed stands behind the article's best seed and above its second, and the evidence passage."""
    ranked = sorted((other.score for other in row.values()), reverse=True)
    second = ranked[1] if len(ranked) > 1 else -1.0
    head = [
        score.score,
        score.score if score.raw_score is None else score.raw_score,
        score.evidence_score,
        score.negative_score,
        float(score.stance != "promoting"),
        float(np.log1p(passages)),
        score.score - ranked[0],
        score.score - second,
    ]
    return np.concatenate([np.asarray(head, dtype=np.float32), vector.astype(np.float32)])


@dataclass(frozen=True)
class StreamHead:
    """A logistic regression over a collection's verdicts on every seed (see the module docstring)."""

    model: Any  # sklearn LogisticRegression
    cut: float
    n_confirmed: int
    n_rejected: int
    cv_precision: float | None
    cv_recall: float | None

    def probabilities(self, features: Array) -> np.ndarray:
        """The probability that analysts confirm each row of ``features``."""
        return np.asarray(self.model.predict_proba(features.astype(np.float64))[:, 1])

    def describe(self) -> str:
        return (
            f"stream head on {self.n_confirmed} confirmed / {self.n_rejected} rejected verdicts, all seeds: "
            f"confirms at p >= {self.cut:.2f}, " + _cross_validated(self.cv_precision, self.cv_recall)
        )


def train_stream_head(verdicts: Sequence[LabelledPassage], seed: int = 0) -> StreamHead | None:
    """The collection's stream head, or None while its verdicts are too few of either kind."""
    rows = sorted((v for v in verdicts if v.features is not None), key=_content_order)
    n_confirmed = sum(v.confirmed for v in rows)
    n_rejected = len(rows) - n_confirmed
    if n_confirmed < MIN_STREAM_CONFIRMED or n_rejected < MIN_STREAM_REJECTED:
        return None
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = np.stack([np.asarray(v.features, dtype=np.float64) for v in rows])
    y = np.array([int(v.confirmed) for v in rows])
    model = LogisticRegression(C=STREAM_HEAD_C, max_iter=3000)
    folds = min(CV_FOLDS, n_confirmed, n_rejected)
    # Averaged over several fold assignments: with one, the cut moved by a grid step (and the
    # evaluation's micro-F1 by about 0.02) between fold assignments of the same verdicts.
    out_of_fold = np.mean(
        [
            cross_val_predict(
                model,
                x,
                y,
                cv=StratifiedKFold(folds, shuffle=True, random_state=seed + r),
                method="predict_proba",
            )[:, 1]
            for r in range(_CV_REPEATS)
        ],
        axis=0,
    )
    cut, precision, recall = best_cut(out_of_fold, y)
    model.fit(x, y)
    return StreamHead(model, cut, n_confirmed, n_rejected, precision, recall)


def best_cut(probabilities: np.ndarray, confirmed: np.ndarray) -> tuple[float, float | None, float]:
    """The cut of :data:`_CUT_GRID` with the best F1 of confirming, and its precision and recall."""
    best: tuple[float, float, float | None, float] = (-1.0, _CUT_GRID[0], None, 0.0)
    positives = int(confirmed.sum())
    for cut in _CUT_GRID:
        predicted = probabilities >= cut
        true_positive = int((predicted & (confirmed == 1)).sum())
        chosen = int(predicted.sum())
        f1 = 2 * true_positive / (chosen + positives) if chosen + positives else 0.0
        if f1 > best[0]:
            recall = true_positive / positives if positives else 0.0
            best = (f1, cut, true_positive / chosen if chosen else None, recall)
    return best[1], best[2], best[3]
