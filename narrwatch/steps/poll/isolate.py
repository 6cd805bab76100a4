"""Run CPU-bound work on untrusted input (feedparser, trafilatura) in child processes with a budget.

feedparser has a quadratic author regex (kurtmckee/feedparser#562: 21.5 s for a 96 KB feed) and no way
to stop it from inside the process. So each task runs in a long-lived worker process; the parent
waits at most ``timeout_s`` for the answer and otherwise kills the worker (SIGKILL) and starts a
fresh one for the next task. Reusing workers keeps the cost per feed at one pickled round trip.

Workers are plain ``python -c`` subprocesses talking over two pipes, not ``multiprocessing``
processes: forking the threaded poller is unsafe, and the spawn/forkserver methods re-import the
caller's ``__main__`` in every child (a CLI, a DAG task or a bench script would run twice). Each worker
caps its own address space (``RLIMIT_AS``) so a document that explodes in memory fails with
MemoryError in the child instead of taking the machine down, and reports its peak resident size with
every answer.
"""

from __future__ import annotations

import importlib
import os
import queue
import resource
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

#: Imported by every worker at start, before it takes its first task.
PRELOAD_MODULES = ("narrwatch.steps.poll.parse",)

_BOOT = "import sys; from narrwatch.steps.poll.isolate import worker_entry; worker_entry(sys.argv[1:])"


class TaskFailed(Exception):
    """The task timed out, ran out of memory, crashed its worker or raised."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason  # timeout | memory | crashed | error
        super().__init__(message)


@dataclass(frozen=True)
class TaskResult:
    value: Any
    peak_rss_bytes: int  # peak resident size of the worker process so far


def _resolve(target: str) -> Callable[..., Any]:
    module_name, _, function_name = target.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module_name), function_name)
    if not callable(function):
        raise TypeError(f"{target} is not callable")
    return function


def _peak_rss_bytes() -> int:
    """Peak resident size of this process image. On Linux VmHWM, because ru_maxrss also counts the
    parent's pages that the fork before exec briefly shared."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # KiB on Linux


def worker_entry(argv: list[str]) -> None:
    """Main loop of a worker process: ``argv`` = [read fd, write fd, memory limit in bytes]."""
    reader = Connection(int(argv[0]), writable=False)
    writer = Connection(int(argv[1]), readable=False)
    memory_limit = int(argv[2])
    if memory_limit > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    for module in PRELOAD_MODULES:
        importlib.import_module(module)
    while True:
        try:
            message = reader.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        target, args = message
        try:
            value = _resolve(target)(*args)
            reply: tuple[str, Any, int] = ("ok", value, _peak_rss_bytes())
        except MemoryError:
            reply = ("memory", "ran out of memory", _peak_rss_bytes())
        except Exception as exc:  # the parent decides; the worker stays usable
            reply = ("error", f"{type(exc).__name__}: {exc}"[:2000], _peak_rss_bytes())
        try:
            writer.send(reply)
        except MemoryError:
            writer.send(("memory", "result too large for the memory limit", _peak_rss_bytes()))


class _Worker:
    def __init__(self, memory_limit_bytes: int | None) -> None:
        from_child, child_writes = os.pipe()
        child_reads, to_child = os.pipe()
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _BOOT,
                    str(child_reads),
                    str(child_writes),
                    str(memory_limit_bytes or 0),
                ],
                pass_fds=(child_reads, child_writes),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        finally:
            os.close(child_reads)
            os.close(child_writes)
        self.reader = Connection(from_child, writable=False)
        self.writer = Connection(to_child, readable=False)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.reader.close()
        self.writer.close()

    def stop(self) -> None:
        try:
            self.writer.send(None)
            self.process.wait(timeout=2)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self.kill()


class IsolatedRunner:
    """A small pool of worker processes; ``run`` is thread-safe and blocks for a free worker."""

    def __init__(self, workers: int = 1, memory_limit_mb: int | None = 1024) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self._max_workers = workers
        self._memory_limit = memory_limit_mb * 1024 * 1024 if memory_limit_mb else None
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._started = 0
        self._lock = threading.Lock()
        self._all: set[_Worker] = set()
        self._closed = False

    def __enter__(self) -> IsolatedRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _acquire(self) -> _Worker:
        while True:
            with self._lock:
                if self._closed:
                    raise RuntimeError("runner is closed")
                try:
                    return self._idle.get_nowait()
                except queue.Empty:
                    pass
                if self._started < self._max_workers:
                    self._started += 1
                    worker = _Worker(self._memory_limit)
                    self._all.add(worker)
                    return worker
            # Short waits, so a slot freed by a killed worker is noticed as well as a returned one.
            try:
                return self._idle.get(timeout=0.05)
            except queue.Empty:
                continue

    def _release(self, worker: _Worker) -> None:
        self._idle.put(worker)

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)
            self._started -= 1

    def run(self, target: str, args: tuple[Any, ...], timeout_s: float) -> TaskResult:
        """Call ``module:function`` with ``args`` in a worker; raise :class:`TaskFailed` on failure."""
        worker = self._acquire()
        try:
            worker.writer.send((target, args))
            if not worker.reader.poll(timeout_s):
                self._discard(worker)
                raise TaskFailed("timeout", f"took longer than {timeout_s:g} s and was stopped")
            status, value, peak = worker.reader.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            self._discard(worker)
            raise TaskFailed("crashed", f"worker process died ({type(exc).__name__})") from exc
        except TaskFailed:
            raise
        except BaseException:
            self._discard(worker)
            raise
        if status == "ok":
            self._release(worker)
            return TaskResult(value=value, peak_rss_bytes=peak)
        if status == "memory":
            # A worker that hit its memory cap may hold fragmented memory: start a fresh one.
            self._discard(worker)
            raise TaskFailed("memory", str(value))
        self._release(worker)
        raise TaskFailed("error", str(value))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = list(self._all)
            self._all.clear()
        for worker in workers:
            worker.stop()


def default_worker_count(concurrency: int) -> int:
    """Parsing is CPU-bound: more workers than cores only adds memory."""
    return max(1, min(concurrency, os.cpu_count() or 1))
