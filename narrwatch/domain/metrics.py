"""Multi-label figures for matching: micro P/R/F1, macro F1, samples F1, per label.

Conventions (the ones scikit-learn uses with ``zero_division=0``, except samples F1 as the
evaluation contract asks):

- micro precision with no predictions at all, or recall with no gold labels at all, is 0;
- macro F1 averages the per-label F1 over labels that occur in the gold or the predictions (a label
  that is neither has no defined F1 and does not count);
- samples F1 is the per-article F1 averaged over articles, where an article with no gold and no
  predicted label scores 1 and one with only one of the two scores 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LabelFigures:
    support: int  # gold articles with the label
    predicted: int  # articles predicted with the label
    true_positives: int

    @property
    def precision(self) -> float:
        return self.true_positives / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.support if self.support else 0.0

    @property
    def f1(self) -> float:
        denominator = self.support + self.predicted
        return 2 * self.true_positives / denominator if denominator else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "support": self.support,
            "predicted": self.predicted,
            "true_positives": self.true_positives,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
        }


@dataclass(frozen=True)
class LevelFigures:
    precision: float
    recall: float
    f1_micro: float
    f1_macro: float
    f1_samples: float
    per_label: dict[str, LabelFigures]

    def as_dict(self) -> dict[str, float]:
        return {
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1_micro": round(self.f1_micro, 4),
            "f1_macro": round(self.f1_macro, 4),
            "f1_samples": round(self.f1_samples, 4),
        }


def sample_f1(gold: set[str], predicted: set[str]) -> float:
    if not gold and not predicted:
        return 1.0
    return 2 * len(gold & predicted) / (len(gold) + len(predicted))


def evaluate(
    gold: Sequence[set[str]], predicted: Sequence[set[str]], labels: Iterable[str] = ()
) -> LevelFigures:
    """Figures for aligned per-article label sets. ``labels`` adds labels to report even if unseen."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold label sets but {len(predicted)} predictions")
    names = set(labels).union(*gold, *predicted) if gold else set(labels)
    # One pass over the articles (not one per label): sets with hundreds of seeds stay quick.
    support = Counter(label for row in gold for label in row)
    guessed = Counter(label for row in predicted for label in row)
    hits = Counter(label for g, p in zip(gold, predicted, strict=True) for label in g & p)
    per_label = {
        name: LabelFigures(support=support[name], predicted=guessed[name], true_positives=hits[name])
        for name in sorted(names)
    }
    tp = sum(figures.true_positives for figures in per_label.values())
    n_gold = sum(len(g) for g in gold)
    n_predicted = sum(len(p) for p in predicted)
    precision = tp / n_predicted if n_predicted else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1_micro = 2 * tp / (n_gold + n_predicted) if (n_gold + n_predicted) else 0.0
    defined = [figures.f1 for figures in per_label.values() if figures.support or figures.predicted]
    f1_macro = sum(defined) / len(defined) if defined else 0.0
    f1_samples = (
        sum(sample_f1(g, p) for g, p in zip(gold, predicted, strict=True)) / len(gold) if gold else 0.0
    )
    return LevelFigures(precision, recall, f1_micro, f1_macro, f1_samples, per_label)


def map_labels(labels: Sequence[set[str]], mapping: Callable[[str], str]) -> list[set[str]]:
    return [{mapping(label) for label in row} for row in labels]


def coarse_mapper(parents: Mapping[str, str | None]) -> Callable[[str], str]:
    """Maps an id to its top-level ancestor (unknown ids map to themselves)."""

    def to_top(label: str) -> str:
        seen = {label}
        current = label
        while (parent := parents.get(current)) is not None and parent not in seen:
            seen.add(parent)
            current = parent
        return current

    return to_top
