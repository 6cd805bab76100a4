"""The exclusive file lock beside an embedded vector folder, and one shared handle per folder per process.

Embedded engines (Qdrant Edge, qdrant-client's local mode) keep their data in a folder that one
process may open at a time. The lock is a ``flock`` on ``<folder>.lock`` holding the owner's pid, so a
second process waits up to a timeout and then fails with an error that names the holder. Inside one
process every opener of the same folder shares one handle, counted, so two contexts do not lock each
other out.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from narrwatch.embeddings.store_errors import VectorStoreBusy

log = logging.getLogger(__name__)

Handle = TypeVar("Handle")


def lock_path(folder: Path) -> Path:
    """The lock file guarding a folder (beside it, so the folder stays the engine's own)."""
    return folder.with_name(folder.name + ".lock")


def acquire_folder_lock(folder: Path, timeout_s: float, *, hint: str) -> int:
    """Take the folder's lock, waiting up to ``timeout_s``; ``hint`` ends the error message."""
    import fcntl

    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout_s
    announced = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            holder = _read_holder(fd)
            if time.monotonic() >= deadline:
                os.close(fd)
                raise VectorStoreBusy(
                    f"vector folder {folder} is in use by another process ({holder}) and stayed busy for "
                    f"{timeout_s:.0f} s. {hint}"
                ) from None
            if not announced:
                log.warning("waiting for vector folder %s, held by %s", folder, holder)
                announced = True
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
    return fd


def release_folder_lock(fd: int) -> None:
    import fcntl

    try:
        os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 100, 0).decode(errors="replace").strip() or "pid unknown"
    except OSError:
        return "pid unknown"


class _Shared(Generic[Handle]):
    def __init__(self, handle: Handle, lock_fd: int, close: Callable[[Handle], None]) -> None:
        self.handle = handle
        self.lock_fd = lock_fd
        self.close = close
        self.users = 0


class SharedFolders(Generic[Handle]):
    """Per-process registry: one open handle per folder, released when its last user closes."""

    def __init__(self) -> None:
        self._open: dict[str, _Shared[Handle]] = {}
        self._guard = threading.Lock()

    def acquire(
        self,
        folder: Path,
        timeout_s: float,
        *,
        open_handle: Callable[[Path], Handle],
        close_handle: Callable[[Handle], None],
        hint: str,
    ) -> tuple[Handle, Callable[[], None]]:
        """The folder's handle (opened under the lock on first use) and the function releasing it."""
        key = str(folder)
        with self._guard:
            shared = self._open.get(key)
            if shared is None:
                lock_fd = acquire_folder_lock(folder, timeout_s, hint=hint)
                try:
                    handle = open_handle(folder)
                except BaseException:
                    release_folder_lock(lock_fd)
                    raise
                shared = _Shared(handle, lock_fd, close_handle)
                self._open[key] = shared
            shared.users += 1

        def release() -> None:
            with self._guard:
                shared.users -= 1
                if shared.users == 0:
                    del self._open[key]
                    try:
                        shared.close(shared.handle)
                    finally:
                        release_folder_lock(shared.lock_fd)

        return shared.handle, release
