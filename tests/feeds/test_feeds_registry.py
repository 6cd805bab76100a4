"""feeds.yaml: the shipped file, and errors that name file, entry and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from narrwatch.steps.poll.registry import FeedsFileError, load_feeds_file

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "feeds.yaml"


def test_shipped_feeds_file_covers_the_region() -> None:
    config = load_feeds_file(SHIPPED)
    assert len(config.outlets) >= 40
    countries = {feed.country for feed in config.feeds}
    assert {"RS", "XK", "BA", "ME", "MK", "AL", "HR"} <= countries
    russian_state = [feed for feed in config.feeds if feed.country == "RU" and feed.state_affiliated]
    assert {feed.outlet_id for feed in russian_state} >= {"sputnik-srbija", "rt-balkan"}
    kosovo_languages = {lang for feed in config.feeds if feed.country == "XK" for lang in feed.languages}
    assert {"sq", "sr"} <= kosovo_languages
    bih_tags = {tag for feed in config.feeds if feed.country == "BA" for tag in feed.tags}
    assert {"federation", "republika-srpska"} <= bih_tags
    schedules = {group.schedule for group in config.groups.values()}
    assert len(config.groups) >= 3 and len(schedules) >= 3
    assert all(feed.url.startswith("https://") for feed in config.feeds)


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def _shipped_document() -> dict:
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda feed: feed.update(country="Serbia"),
            "feeds[3] (id='kurir'): country: 'Serbia' is not an ISO",
        ),
        (
            lambda feed: feed.update(url="ftp://kurir.rs/rss"),
            "feeds[3] (id='kurir'): url: must be an absolute http",
        ),
        (lambda feed: feed.pop("name"), "feeds[3] (id='kurir'): name: Field required"),
        (lambda feed: feed.update(group="hourly"), "feeds[3] (id='kurir'): group: 'hourly' is not one of"),
        (
            lambda feed: feed.update(languages=["serbian"]),
            "feeds[3] (id='kurir'): languages: 'serbian' is not",
        ),
        (lambda feed: feed.update(id="Kurir RS"), "feeds[3] (id='Kurir RS'): id: must be 1-100 characters"),
        (
            lambda feed: feed.update(colour="red"),
            "feeds[3] (id='kurir'): colour: Extra inputs are not permitted",
        ),
        (
            lambda feed: feed.update(poll={"min_interval_s": 900, "max_interval_s": 60}),
            "feeds[3] (id='kurir'): poll: min_interval_s must not exceed max_interval_s",
        ),
        (lambda feed: feed.update(id="blic"), "feeds[3] (id='blic'): id: duplicate of feeds[2]"),
    ],
)
def test_broken_entries_are_named_with_file_index_id_and_field(
    tmp_path: Path, change: object, expected: str
) -> None:
    document = _shipped_document()
    assert document["feeds"][3]["id"] == "kurir"
    change(document["feeds"][3])  # type: ignore[operator]
    path = _write(tmp_path, document)
    with pytest.raises(FeedsFileError) as caught:
        load_feeds_file(path)
    message = str(caught.value)
    assert f"{path}: {expected}" in message, message


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("groups:\n  a: {schedule: '@hourly'}\nfeeds:\n  - id: [unclosed\n", encoding="utf-8")
    with pytest.raises(FeedsFileError, match=r"not valid YAML \(line \d+, column \d+\)"):
        load_feeds_file(path)


def test_missing_file_and_wrong_shapes(tmp_path: Path) -> None:
    with pytest.raises(FeedsFileError, match="cannot read the feeds file"):
        load_feeds_file(tmp_path / "absent.yaml")
    with pytest.raises(FeedsFileError, match="top level must be a mapping"):
        load_feeds_file(_write(tmp_path, ["a", "b"]))
    with pytest.raises(FeedsFileError, match="feeds: must be a non-empty list"):
        load_feeds_file(_write(tmp_path, {"groups": {"a": {}}, "feeds": []}))
    with pytest.raises(FeedsFileError, match="feeds\\[0\\]: must be a mapping"):
        load_feeds_file(_write(tmp_path, {"groups": {"a": {}}, "feeds": ["x"]}))


def test_defaults_and_normalisation(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "groups": {"g": {"schedule": "@hourly"}},
            "feeds": [
                {
                    "id": "vijesti",
                    "name": "Vijesti",
                    "country": "me",
                    "languages": ["me", "sr", "me"],
                    "url": "https://www.vijesti.me/rss",
                    "group": "g",
                    "tags": ["b", "a", "b", " "],
                },
            ],
        },
    )
    feed = load_feeds_file(path).feeds[0]
    assert feed.outlet_id == "vijesti"
    assert feed.country == "ME"
    assert feed.languages == ["cnr", "sr"]
    assert feed.tags == ["a", "b"]
    assert feed.state_affiliated is False and feed.full_text is None
    assert feed.poll.as_dict() == {}


def test_registry_import_stays_light() -> None:
    code = (
        "import sys, narrwatch.steps.poll.registry as r; r.load_feeds_file(sys.argv[1]);"
        "names = ('sqlalchemy', 'httpx', 'feedparser', 'urllib3', 'torch', 'numpy');"
        "heavy = [m for m in names if m in sys.modules];"
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(SHIPPED)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
