"""Seed files: the shipped seeds load, and every kind of mistake is named by file and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from narrwatch.cli.narratives import register
from narrwatch.steps.match.seeds import NarrativeError, check_narratives, load_narratives, scaffold

REPO = Path(__file__).resolve().parents[2]
FIXTURE_SEEDS = Path(__file__).parent / "fixtures" / "seeds"

SEED_IDS = {
    "west-ignores-serbian-sovereignty",
    "nato-aggressor-balkans",
    "kosovo-illegitimate-state",
    "kosovo-mafia-state",
    "eu-exploits-balkans",
    "russia-only-true-friend",
    "western-ngos-colour-revolution",
    "republika-srpska-under-threat",
    "forced-into-nato",
}

VALID = {
    "id": "sample-seed",
    "title": "A sample seed",
    "description": "A narrative used by the tests.",
    "examples": ["First phrasing of the sample narrative.", "Second phrasing, with other words."],
}


def write(folder: Path, name: str, content: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content), encoding="utf-8")
    return path


def problems_for(folder: Path) -> list[tuple[str, str, str]]:
    narratives, problems = check_narratives(folder)
    assert narratives is None, "expected the folder to be rejected"
    return [(Path(p.file).name, p.field, p.message) for p in problems]


def test_shipped_seeds_load_with_the_fixed_ids() -> None:
    narratives = load_narratives(REPO / "narratives")
    assert set(narratives.ids) == SEED_IDS
    assert narratives.get("kosovo-mafia-state").parent == "kosovo-illegitimate-state"
    assert all(seed.parent is None for seed in narratives if seed.id != "kosovo-mafia-state")
    for seed in narratives:
        assert seed.status == "active"
        assert len(seed.examples) >= 5 and len(seed.negatives) >= 3 and seed.keywords
        assert narratives.path_of(seed.id).name == f"{seed.id}.yaml"


def test_duplicate_id_names_both_files(tmp_path: Path) -> None:
    write(tmp_path / "a", "sample-seed.yaml", VALID)
    write(tmp_path / "b", "sample-seed.yaml", VALID)
    [(name, field, message)] = problems_for(tmp_path)
    assert (name, field) == ("sample-seed.yaml", "id")
    assert "duplicate id 'sample-seed'" in message and str(tmp_path / "a") in message


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"examples": None}, "examples", "required field is missing"),
        ({"examples": []}, "examples", "at least 1"),
        ({"examples": ["fine", "  "]}, "examples[1]", "is empty"),
        ({"examples": ["Same words here.", "same   WORDS here."]}, "examples[1]", "duplicates examples[0]"),
        ({"negatives": ["First phrasing of the sample narrative."]}, "negatives[0]", "also an example"),
        ({"thresholds": {"suggest": 1.5}}, "thresholds.suggest", "less than or equal to 1"),
        ({"thresholds": {"confirm": -2}}, "thresholds.confirm", "greater than or equal to -1"),
        ({"thresholds": {"suggest": 0.7, "confirm": 0.5}}, "thresholds", "must not be greater than confirm"),
        ({"thresholds": {"sugest": 0.4}}, "thresholds.sugest", "unknown field"),
        ({"status": "live"}, "status", "'active', 'draft' or 'retired'"),
        ({"exemples": ["x"]}, "exemples", "unknown field"),
        ({"title": ""}, "title", "at least 1 character"),
        ({"tags": [1999]}, "tags[0]", "put the value in quotes"),
        ({"languages": ["Serbian"]}, "languages[0]", "not a language code"),
        ({"parent": "sample-seed"}, "parent", "its own parent"),
        ({"id": "Bad Id"}, "id", "should match pattern"),
    ],
)
def test_field_errors_name_file_and_field(
    tmp_path: Path, change: dict[str, object], field: str, fragment: str
) -> None:
    seed = {**VALID, **change}
    seed = {key: value for key, value in seed.items() if value is not None}
    write(tmp_path, "sample-seed.yaml", seed)
    found = problems_for(tmp_path)
    assert ("sample-seed.yaml", field) in [(name, f) for name, f, _ in found], found
    message = next(m for name, f, m in found if f == field)
    assert fragment in message


def test_unknown_parent(tmp_path: Path) -> None:
    write(tmp_path, "sample-seed.yaml", {**VALID, "parent": "no-such-seed"})
    assert problems_for(tmp_path) == [
        ("sample-seed.yaml", "parent", "unknown parent 'no-such-seed': no seed has that id")
    ]


def test_parent_cycle_and_inactive_parent(tmp_path: Path) -> None:
    write(tmp_path, "one.yaml", {**VALID, "id": "one", "parent": "two"})
    write(tmp_path, "two.yaml", {**VALID, "id": "two", "parent": "one"})
    write(tmp_path, "top.yaml", {**VALID, "id": "top", "status": "draft"})
    write(tmp_path, "child.yaml", {**VALID, "id": "child", "parent": "top"})
    found = problems_for(tmp_path)
    assert ("one.yaml", "parent") in [(n, f) for n, f, _ in found]
    assert any(n == "child.yaml" and f == "status" and "'top' is draft" in m for n, f, m in found)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("id: sample-seed\ntitle: x\nexamples:\n  - a\n - b\n", 5, "YAML syntax error"),
        ("id: sample-seed\ntitle: [unclosed\ndescription: d\n", 3, "YAML syntax error"),
        (
            "id: sample-seed\ntitle: x\ntitle: y\ndescription: d\nexamples: [a]\n",
            3,
            "found the key 'title' twice",
        ),
        (
            "id: sample-seed\ntitle: x\ndescription: d\nexamples: [a]\nbad: !!python/object:os.system {}\n",
            5,
            "YAML",
        ),
    ],
)
def test_yaml_errors_give_the_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    write(tmp_path, "sample-seed.yaml", text)
    _, problems = check_narratives(tmp_path)
    [problem] = problems
    assert problem.field == "(yaml)" and problem.line == line and fragment in problem.message
    assert str(problem).startswith(f"{tmp_path / 'sample-seed.yaml'}:{line}: (yaml): ")


def test_file_level_problems(tmp_path: Path) -> None:
    write(tmp_path, "empty.yaml", "")
    write(tmp_path, "listed.yaml", "- a\n- b\n")
    write(tmp_path, "renamed.yaml", VALID)
    found = problems_for(tmp_path)
    assert ("empty.yaml", "(file)", "the file is empty") in found
    assert any(n == "listed.yaml" and "mapping" in m for n, _, m in found)
    assert any(n == "renamed.yaml" and f == "id" and "file name" in m for n, f, m in found)


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "sample-seed.yaml", {**VALID, "status": "live", "thresholds": {"suggest": 3}})
    write(tmp_path, "other.yaml", "id: other\ntitle: [\n")
    with pytest.raises(NarrativeError) as raised:
        load_narratives(tmp_path)
    fields = {(Path(p.file).name, p.field) for p in raised.value.problems}
    assert fields == {
        ("sample-seed.yaml", "status"),
        ("sample-seed.yaml", "thresholds.suggest"),
        ("other.yaml", "(yaml)"),
    }


def test_content_hash_tracks_edits_including_inherited_examples(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE_SEEDS, tmp_path / "seeds")
    folder = tmp_path / "seeds"
    before = load_narratives(folder)
    # Re-flowing the YAML does not change the content.
    path = folder / "nato-aggressor.yaml"
    data = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump(data, default_flow_style=False, width=40))
    assert load_narratives(folder).content_hash("nato-aggressor") == before.content_hash("nato-aggressor")
    # A child's new example changes its parent's matching definition, so both get new versions.
    child = folder / "kosovo-mafia.yaml"
    data = yaml.safe_load(child.read_text())
    data["examples"].append("The clans that run Pristina live from smuggling.")
    child.write_text(yaml.safe_dump(data))
    after = load_narratives(folder)
    assert after.content_hash("kosovo-mafia") != before.content_hash("kosovo-mafia")
    assert after.content_hash("kosovo-illegitimate") != before.content_hash("kosovo-illegitimate")
    assert after.content_hash("russia-true-friend") == before.content_hash("russia-true-friend")
    assert "The clans that run Pristina live from smuggling." in after.inherited_examples(
        "kosovo-illegitimate"
    )


def test_untouched_scaffold_is_rejected_and_an_edited_one_is_a_draft(tmp_path: Path) -> None:
    text = scaffold("energy-blackmail", owner="desk")
    write(tmp_path, "energy-blackmail.yaml", text)
    assert (
        "energy-blackmail.yaml",
        "title",
        "still the placeholder of `narratives new`: write the claim's headline",
    ) in problems_for(tmp_path)
    document = yaml.safe_load(text)
    document["title"] = "Energy supplies are used as blackmail"
    document["examples"] = ["They cut the gas to make us obey.", "Brussels uses energy prices to punish us."]
    document["negatives"] = ["Gas prices rose by four percent in October."]
    write(tmp_path, "energy-blackmail.yaml", document)
    narratives = load_narratives(tmp_path)
    assert narratives.get("energy-blackmail").status == "draft"
    with pytest.raises(ValueError, match="not a valid id"):
        scaffold("Energy Blackmail")


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_cli_validate_exit_codes_and_messages(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli(), ["narratives", "validate", "--dir", str(FIXTURE_SEEDS)])
    assert ok.exit_code == 0 and "ok: 4 seed narratives" in ok.output
    write(tmp_path, "sample-seed.yaml", {**VALID, "parent": "ghost"})
    write(tmp_path, "broken.yaml", "id: broken\n  title: x\n")
    bad = runner.invoke(cli(), ["narratives", "validate", "--dir", str(tmp_path)])
    assert bad.exit_code == 1
    assert f"{tmp_path / 'sample-seed.yaml'}: parent: unknown parent 'ghost'" in bad.output
    assert f"{tmp_path / 'broken.yaml'}:2: (yaml): YAML syntax error" in bad.output


def test_cli_new_writes_a_scaffold_once(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli(), ["narratives", "new", "energy-blackmail", "--dir", str(tmp_path)])
    assert first.exit_code == 0, first.output
    assert (tmp_path / "energy-blackmail.yaml").exists()
    again = runner.invoke(cli(), ["narratives", "new", "energy-blackmail", "--dir", str(tmp_path)])
    assert again.exit_code == 2 and "already exists" in again.output
