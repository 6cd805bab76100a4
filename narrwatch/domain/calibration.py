"""Thresholds from analysts' verdicts: the pure decision behind `narrwatch narratives calibrate`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def choose_threshold(
    labelled: Sequence[tuple[float, bool]], target_precision: float
) -> tuple[float, float] | None:
    """Lowest score whose labelled matches at or above it reach the target precision.

    ``labelled`` holds (score, confirmed). Returns (threshold, precision there), or None when no
    threshold reaches the target.
    """
    ordered = sorted(labelled, key=lambda item: -item[0])
    best: tuple[float, float] | None = None
    confirmed = 0
    for position, (score, is_confirmed) in enumerate(ordered, start=1):
        confirmed += int(is_confirmed)
        # Only cut between distinct scores: ties go together.
        if position < len(ordered) and ordered[position][0] == score:
            continue
        precision = confirmed / position
        if precision >= target_precision:
            best = (score, precision)
    return best


@dataclass(frozen=True)
class ChosenThresholds:
    suggest: float
    confirm: float
    precision: float | None  # on the verdicts at or above confirm; None when no threshold reached it
    confirmed_kept: int  # confirmed verdicts at or above confirm
    message: str
    recall_kept: float | None = None  # confirmed_kept over the confirmed verdicts (None: none)


def thresholds_from_verdicts(
    labelled: Sequence[tuple[float, bool]], target_precision: float, base_suggest: float
) -> ChosenThresholds:
    """``confirm`` at the lowest score reaching ``target_precision`` on ``labelled`` (score,
    confirmed) pairs, or just above every labelled score when none does; ``suggest`` stays at
    ``base_suggest`` unless that is above the new ``confirm``."""
    chosen = choose_threshold(labelled, target_precision)
    if chosen is None:
        confirm = min(1.0, max(score for score, _ in labelled) + 1e-3)
        precision = None
        message = (
            f"no threshold reaches precision {target_precision:.2f} on the verdicts: confirm set just "
            "above every labelled match; rework the seed (negatives, examples)"
        )
    else:
        confirm, precision = chosen
        message = f"confirm threshold {confirm:.3f} keeps precision {precision:.2f} on the verdicts"
    kept = sum(1 for score, ok in labelled if ok and score >= confirm)
    confirmed = sum(1 for _, ok in labelled if ok)
    recall = kept / confirmed if confirmed else None
    # The recall given up is part of the choice: say how many confirmed matches stay confirmed.
    message += f"; it keeps {kept} of {confirmed} confirmed matches" + (
        "" if recall is None else f" (recall {recall:.2f})"
    )
    return ChosenThresholds(min(base_suggest, confirm), confirm, precision, kept, message, recall)
