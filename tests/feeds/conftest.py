"""Fixtures of the feed tests (helpers live in feeds_support.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from feeds_support import LoopbackServer


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    """A loopback HTTP server; register paths with ``server.serve`` / ``server.route``."""
    loopback = LoopbackServer()
    loopback.start()
    try:
        yield loopback
    finally:
        loopback.stop()
