"""The clustering vector of an article is its lead passage, normalised."""

from __future__ import annotations

import numpy as np

from narrwatch.domain.clustering import claim_vector


def test_the_lead_passage_is_the_claim_vector_whatever_follows() -> None:
    lead = np.array([3.0, 4.0, 0.0])
    tails = [np.array([[0.0, 0.0, 5.0]]), np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])]
    for tail in tails:
        vector = claim_vector(np.vstack([lead, tail]))
        assert vector is not None
        assert np.allclose(vector, [0.6, 0.8, 0.0])


def test_no_usable_passage_gives_no_vector() -> None:
    assert claim_vector(np.zeros((0, 3))) is None
    assert claim_vector(np.zeros((2, 3))) is None
    assert claim_vector(np.array([1.0, 2.0])) is None
