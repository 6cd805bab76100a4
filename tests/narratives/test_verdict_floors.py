"""A verdict passage's floor read off its own stream: pure, no I/O."""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from narrwatch.domain.scoring import ScoringParams, build_seed_vectors, passage_scores, stream_floor
from narrwatch.domain.verdicts import LabelledPassage
from narrwatch.steps.match.learning import apply_verdicts, stream_passages
from narrwatch.steps.match.prepare import PreparedSeeds

DIM = 32


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def test_the_stream_floor_is_a_quantile_that_a_few_close_passages_do_not_move() -> None:
    rng = np.random.default_rng(2)
    phrasing = _unit(rng.normal(size=DIM))
    unrelated = np.stack([_unit(phrasing * 1.5 + rng.normal(size=DIM)) for _ in range(200)])
    carrying = np.repeat(phrasing[np.newaxis, :], 5, axis=0)  # 5 passages that really say it
    floor = stream_floor(phrasing[np.newaxis, :], unrelated, background_size=30, top_n=3)[0]
    with_carriers = stream_floor(phrasing[np.newaxis, :], np.vstack([unrelated, carrying]), 30, 3)[0]
    assert floor == np.float32(np.clip(np.quantile(unrelated @ phrasing, 0.9), 0.0, 0.9))
    # a top-few mean would be pinned at the carriers' 1.0 (clipped to 0.9); the quantile hardly moves
    assert with_carriers - floor < 0.06 < 0.9 - with_carriers
    assert len(stream_floor(np.zeros((0, DIM), np.float32), unrelated, 30, 3)) == 0
    assert stream_floor(phrasing[np.newaxis, :], np.zeros((0, DIM), np.float32), 30, 3)[0] == 0.0


class _Narratives:
    def parents(self) -> dict[str, str | None]:
        return {"s": None}


def test_a_verdict_written_like_its_whole_stream_does_not_lift_the_whole_stream() -> None:
    rng = np.random.default_rng(7)
    style = _unit(rng.normal(size=DIM))  # what every item of this stream shares (a tweet's form)
    stream = np.stack([_unit(style * 6.0 + rng.normal(size=DIM)) for _ in range(600)])
    bundled = np.stack([_unit(rng.normal(size=DIM)) for _ in range(30)])  # news, another form
    params = ScoringParams()
    own = rng.normal(size=DIM)
    own = _unit(own - (own @ style) * style)  # the seed's own phrasing is about something else
    seed = build_seed_vectors("s", ["own"], own[np.newaxis, :], [], np.zeros((0, DIM)), bundled, [], params)
    verdict = LabelledPassage(
        "s", "a typical item", _unit(style * 6.0 + rng.normal(size=DIM)), 0.4, True, stream_key="en"
    )

    def share_above_floor(streams: dict[str, np.ndarray] | None) -> float:
        prepared = PreparedSeeds(cast(Any, _Narratives()), {"s": seed}, {}, params, "test", bundled)
        apply_verdicts(prepared, [verdict], streams)
        net, _nearest, _negative = passage_scores(stream[:200], prepared.vectors["s"], params)
        return float((net > 0).mean())

    assert share_above_floor(None) > 0.9  # against news sentences alone, every item looks related
    loaded = stream_passages(lambda _key: [cast(Any, _Stored(stream[200:]))], ["en", None])
    assert list(loaded) == ["en"]
    assert share_above_floor(loaded) < 0.2  # its own stream puts the floor where unrelated items sit


class _Stored:
    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors
