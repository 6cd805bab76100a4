"""`eval match`: the JSON contract, known answers on a tiny set, a degenerate predictor, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from narrwatch import config
from narrwatch.cli.eval import eval_app
from narrwatch.cli.narratives import register
from narrwatch.config import Settings
from narrwatch.eval.match import EvalDataError, eval_match, figures, read_eval_articles
from narrwatch.ports import Encoder
from narrwatch.steps.match.seeds import load_narratives

FIXTURES = Path(__file__).parent / "fixtures"
TINY = FIXTURES / "eval_tiny.jsonl"
SEEDS = FIXTURES / "seeds"
FIGURES = {"precision", "recall", "f1_micro", "f1_macro", "f1_samples"}
GOLD = {
    "a1": {"nato-aggressor"},
    "a2": {"kosovo-illegitimate"},
    "a3": {"kosovo-mafia"},
    "a4": {"russia-true-friend"},
}


def check_contract(result: dict[str, object]) -> None:
    assert set(result) == {"n_articles", "fine", "coarse", "per_narrative"}
    for level in ("fine", "coarse"):
        block = result[level]
        assert isinstance(block, dict) and set(block) == FIGURES
        assert all(0.0 <= value <= 1.0 for value in block.values())


def test_known_answers_on_a_tiny_set(settings: Settings, encoder: Encoder) -> None:
    result = eval_match(TINY, SEEDS, "confirm", settings, encoder=encoder)
    check_contract(result)
    assert result["n_articles"] == 6
    # Every labelled article is a seed's own phrasing, the others are weather and football.
    assert result["fine"] == {
        "precision": 1.0,
        "recall": 1.0,
        "f1_micro": 1.0,
        "f1_macro": 1.0,
        "f1_samples": 1.0,
    }
    assert result["coarse"]["f1_micro"] == 1.0
    per = result["per_narrative"]
    assert per["kosovo-mafia"]["support"] == 1 and "coarse" not in per["kosovo-mafia"]
    assert per["kosovo-illegitimate"]["support"] == 1  # fine: the parent alone
    assert per["kosovo-illegitimate"]["coarse"]["support"] == 2  # coarse: parent and sub-narrative
    # The configured stores were never touched.
    assert not Path(settings.resolved_database_url.removeprefix("sqlite:///")).exists()


def test_figures_follow_the_leaf_convention_and_the_levels() -> None:
    narratives = load_narratives(SEEDS)
    articles = read_eval_articles(TINY, narratives)
    # The parent predicted with its sub-narrative counts as the sub-narrative (leaf convention).
    predicted = {**GOLD, "a3": {"kosovo-illegitimate", "kosovo-mafia"}}
    assert figures(articles, predicted, narratives)["fine"]["f1_micro"] == 1.0
    # The parent alone where the sub-narrative is gold: wrong at fine, right at coarse.
    predicted = {**GOLD, "a3": {"kosovo-illegitimate"}}
    result = figures(articles, predicted, narratives)
    assert result["fine"]["precision"] == pytest.approx(3 / 4, abs=1e-4) and result["fine"][
        "recall"
    ] == pytest.approx(3 / 4, abs=1e-4)
    assert result["coarse"]["f1_micro"] == 1.0
    assert result["fine"]["f1_samples"] == pytest.approx(5 / 6, abs=1e-4)


def test_a_matcher_that_predicts_nothing_scores_zero() -> None:
    narratives = load_narratives(SEEDS)
    articles = read_eval_articles(TINY, narratives)
    result = figures(articles, {}, narratives)
    check_contract(result)
    for level in ("fine", "coarse"):
        assert result[level]["f1_micro"] == 0.0 and result[level]["f1_macro"] == 0.0
        assert result[level]["f1_samples"] == pytest.approx(2 / 6, abs=1e-4)  # the two unlabelled articles


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ('{"id": "x", "title": "t", "text": "b", "labels": ["no-such-seed"]}', ":1: labels ['no-such-seed']"),
        ('{"id": "x", "title": "t", "labels": []}', ":1: field 'text' is missing"),
        ('{"id": "x", "title": "t", "text": "b", "labels": [], "published": "yesterday"}', ":1: published"),
        ("not json", ":1: not JSON"),
    ],
)
def test_bad_lines_are_named(tmp_path: Path, line: str, fragment: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(EvalDataError, match=".*") as raised:
        read_eval_articles(path, load_narratives(SEEDS))
    assert str(raised.value).startswith(str(path)) and fragment in str(raised.value)


def test_cli_prints_the_contract(
    settings: Settings, encoder: Encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "get_settings", lambda: settings)
    app = typer.Typer()
    register(app)
    app.add_typer(eval_app, name="eval")
    runner = CliRunner()
    args = ["eval", "match", "--articles", str(TINY), "--narratives", str(SEEDS)]
    as_json = runner.invoke(app, [*args, "--level", "suggest", "--json"])
    assert as_json.exit_code == 0, as_json.output
    check_contract(json.loads(as_json.stdout))
    text = runner.invoke(app, args)
    assert text.exit_code == 0 and "fine" in text.output and "coarse" in text.output
    bad = runner.invoke(
        app, ["eval", "match", "--articles", str(SEEDS / "nato-aggressor.yaml"), "--narratives", str(SEEDS)]
    )
    assert bad.exit_code == 2 and "nato-aggressor.yaml:1: not JSON" in bad.output
