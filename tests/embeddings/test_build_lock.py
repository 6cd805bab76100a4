"""The lock that makes a derived model file once: a second maker waits for the first."""

from __future__ import annotations

import threading
from pathlib import Path

from narrwatch.embeddings.build_lock import exclusive_build


def test_a_second_maker_enters_only_after_the_first_leaves(tmp_path: Path) -> None:
    target = tmp_path / "models" / "export"
    events: list[str] = []
    first_inside = threading.Event()
    release_first = threading.Event()

    def first() -> None:
        with exclusive_build(target):
            events.append("first in")
            first_inside.set()
            release_first.wait(10)
            events.append("first out")

    def second() -> None:
        with exclusive_build(target):
            events.append("second in")

    holder = threading.Thread(target=first)
    holder.start()
    assert first_inside.wait(10)
    waiter = threading.Thread(target=second)
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive(), "the second maker must wait while the first holds the lock"
    release_first.set()
    holder.join(10)
    waiter.join(10)
    assert events == ["first in", "first out", "second in"]


def test_the_lock_is_released_when_the_maker_fails(tmp_path: Path) -> None:
    target = tmp_path / "export"
    try:
        with exclusive_build(target):
            raise RuntimeError("export failed")
    except RuntimeError:
        pass
    done = threading.Event()

    def again() -> None:
        with exclusive_build(target):
            done.set()

    retry = threading.Thread(target=again)
    retry.start()
    retry.join(10)
    assert done.is_set()
