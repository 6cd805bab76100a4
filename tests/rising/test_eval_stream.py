"""The `eval cluster` and `eval rising` contracts, through the CLI, with a stand-in encoder."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rising_support import STORIES, HashingEncoder
from typer.testing import CliRunner

from narrwatch.cli.main import app
from narrwatch.config import get_settings

SEED_FILE = """\
id: bridge-sabotage
title: The West sabotages the Balkan bridge
description: Western governments secretly sabotage the new Danube bridge to keep the region weak.
examples:
  - Western agents sabotaged the new Danube bridge to keep the Balkans weak and divided.
  - The Danube bridge collapse was Western sabotage meant to keep the region dependent.
"""
NARRATIVE = (
    "Western agents sabotaged the new Danube bridge to keep the Balkans weak and divided, {outlet} reports."
)
OTHER = [
    "Farmers expect a good plum harvest after a mild spring in the hills, {outlet} reports.",
    "The city library extends its opening hours during the exam season, {outlet} reports.",
    "A new bus line connects the airport with the central station from Monday, {outlet} reports.",
]


@pytest.fixture
def offline_eval(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Configured stores in tmp_path (which eval must leave untouched) and the hashing encoder."""
    import narrwatch.embeddings.encoder

    monkeypatch.setattr(narrwatch.embeddings.encoder, "load_encoder", lambda settings: HashingEncoder())
    monkeypatch.setenv("NARRWATCH_DATA_DIR", str(tmp_path / "configured"))
    monkeypatch.setenv("NARRWATCH_CLUSTER_THRESHOLD", "0.2")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    assert not (tmp_path / "configured" / "narrwatch.db").exists()
    assert not (tmp_path / "configured" / "qdrant").exists()


def test_eval_cluster_contract(offline_eval: None) -> None:
    result = CliRunner().invoke(app, ["eval", "cluster", "--articles", str(STORIES), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert set(figures) == {"n_articles", "n_clusters", "bcubed", "pairwise"}
    assert figures["n_articles"] == 77
    assert 1 <= figures["n_clusters"] <= 77
    for name in ("bcubed", "pairwise"):
        assert set(figures[name]) == {"precision", "recall", "f1"}
        assert all(0.0 <= value <= 1.0 for value in figures[name].values())
    assert figures["bcubed"]["f1"] > 0.6  # the stories are not clustered at random

    text = CliRunner().invoke(app, ["eval", "cluster", "--articles", str(STORIES)])
    assert text.exit_code == 0 and "bcubed" in text.output and "pairwise" in text.output


def test_eval_cluster_names_the_line_of_a_bad_row(offline_eval: None, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "title": "t", "text": "b", "published": "2025-01-01T00:00:00Z"}\n')
    result = CliRunner().invoke(app, ["eval", "cluster", "--articles", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:1: field 'cluster' is missing" in result.output


def write_stream(path: Path) -> None:
    """24 days: two or three outlets carry the narrative each day, ten on the last three days."""
    start = dt.datetime(2025, 2, 3, 8, 0, tzinfo=dt.UTC)
    rows = []
    for day in range(24):
        carriers = 10 if day >= 21 else 2 + day % 2
        for i in range(carriers):
            outlet = f"outlet-{(i + day) % 12:02d}"
            rows.append(
                {
                    "id": f"n-{day}-{i}",
                    "title": "Bridge sabotage claim",
                    "text": NARRATIVE.format(outlet=outlet),
                    "language": "en",
                    "published": (start + dt.timedelta(days=day, minutes=10 * i)).isoformat(),
                    "outlet": outlet,
                    "labels": ["bridge-sabotage"],
                }
            )
        for i, template in enumerate(OTHER):
            outlet = f"outlet-{(i + 5 * day) % 12:02d}"
            rows.append(
                {
                    "id": f"o-{day}-{i}",
                    "title": "Local news",
                    "text": template.format(outlet=outlet),
                    "language": "en",
                    "published": (start + dt.timedelta(days=day, hours=3, minutes=i)).isoformat(),
                    "outlet": outlet,
                }
            )
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")


def test_eval_rising_contract(offline_eval: None, tmp_path: Path) -> None:
    narratives = tmp_path / "seeds"
    narratives.mkdir()
    (narratives / "bridge-sabotage.yaml").write_text(SEED_FILE, encoding="utf-8")
    stream = tmp_path / "stream.jsonl"
    write_stream(stream)

    result = CliRunner().invoke(
        app, ["eval", "rising", "--articles", str(stream), "--narratives", str(narratives), "--json"]
    )
    assert result.exit_code == 0, result.output
    flags = json.loads(result.output)
    assert isinstance(flags, list) and flags
    for flag in flags:
        assert set(flag) == {
            *("date", "narrative", "statistic", "p_value", "count", "baseline", "outlets"),
            *("new", "window"),
        }
        assert flag["narrative"] == "bridge-sabotage"
        assert flag["p_value"] <= 0.002 and flag["statistic"] >= 1.5 and flag["outlets"] >= 3
        assert flag["window"] in (1, 3, 7) and isinstance(flag["new"], bool)
    ordered = sorted(flags, key=lambda f: f["date"])
    assert ordered[0]["new"] and not any(f["new"] for f in ordered[1:] if f["date"] <= "2025-03-01")
    first = min(flag["date"] for flag in flags)
    assert first in ("2025-02-24", "2025-02-25")  # the rise starts on 2025-02-24: flagged by its second day

    text = CliRunner().invoke(
        app, ["eval", "rising", "--articles", str(stream), "--narratives", str(narratives)]
    )
    assert text.exit_code == 0 and "bridge-sabotage" in text.output


def test_eval_rising_requires_outlets(offline_eval: None, tmp_path: Path) -> None:
    stream = tmp_path / "stream.jsonl"
    stream.write_text('{"id": "x", "title": "t", "text": "b", "published": "2025-01-01T00:00:00Z"}\n')
    narratives = tmp_path / "seeds"
    narratives.mkdir()
    (narratives / "bridge-sabotage.yaml").write_text(SEED_FILE, encoding="utf-8")
    result = CliRunner().invoke(
        app, ["eval", "rising", "--articles", str(stream), "--narratives", str(narratives)]
    )
    assert result.exit_code == 1 and "field 'outlet' is missing" in result.output
