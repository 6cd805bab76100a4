"""One maker per derived model file: processes that need the same export wait for the first one.

A cold start runs several steps at once (Airflow tasks, test workers); each would otherwise rebuild
the same model, export it to ONNX and encode the same backgrounds side by side, every copy taking a
core and up to a gigabyte for half a minute. Results still appear by atomic rename, so a crash
mid-build leaves no half-written file and the lock (a ``flock``, released when its holder exits) is
never stale.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


@contextmanager
def exclusive_build(target: Path) -> Iterator[None]:
    """Hold the lock beside ``target`` (``<target>.building``); check for ``target`` again inside."""
    import fcntl

    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target.with_name(target.name + ".building"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process to finish %s", target)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
