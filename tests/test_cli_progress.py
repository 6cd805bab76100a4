"""Progress bars on a terminal only; never in CI, under Airflow or into a pipe. Tables via rich."""

from __future__ import annotations

import io
import sys

import pytest

from narrwatch.cli.tables import progress, progress_wanted, render_table


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert progress_wanted()
    with progress("demo days", total=3) as bar:
        for _ in range(3):
            bar.advance()
    assert "demo days" in terminal.getvalue()


@pytest.mark.parametrize("variable", ["CI", "AIRFLOW_CTX_DAG_ID"])
def test_progress_stays_quiet_in_ci_and_airflow(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "1")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress("demo days", total=3) as bar:
        bar.advance()
    assert terminal.getvalue() == ""


def test_progress_stays_quiet_in_a_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("AIRFLOW_CTX_DAG_ID", raising=False)
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    with progress("embedding", total=None) as bar:
        bar.advance(5)
    assert pipe.getvalue() == ""


def test_tables_are_plain_text_with_every_cell() -> None:
    text = render_table(
        ["id", "url"], [["rts-lat", "https://www.rts.rs/rss.xml"], ["n1", "https://n1.rs/feed"]]
    )
    lines = text.splitlines()
    assert lines[0].split() == ["id", "url"]
    assert "rts-lat" in lines[2] and "https://www.rts.rs/rss.xml" in lines[2]
    assert "\x1b[" not in text  # no colour codes off a terminal
