"""One bad seed file never stops the others: it is skipped with a short error naming it; hostile
files (alias bombs, huge files, too many or too long examples) get a clear error quickly."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from narrwatch.steps.match.seed_schema import MAX_PHRASE_CHARS, MAX_PHRASES, MAX_PROBLEM_CHARS
from narrwatch.steps.match.seeds import check_narratives, load_usable_narratives

REPO = Path(__file__).resolve().parents[2]

#: 481 bytes of nested aliases: fully expanded, 9 levels of 9 copies of a 9-item list.
ALIAS_BOMB = """\
id: alias-bomb
title: t
description: d
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
examples: [*i]
"""


def copy_shipped_seeds(folder: Path) -> Path:
    shutil.copytree(REPO / "narratives", folder, ignore=shutil.ignore_patterns("*.md"))
    return folder


def test_a_bad_file_is_skipped_and_every_other_seed_kept(tmp_path: Path) -> None:
    folder = copy_shipped_seeds(tmp_path / "seeds")
    (folder / "broken.yaml").write_text("id: broken\n  title: x\n", encoding="utf-8")
    # A child of a seed that is left out cannot be gated by its parent: left out too, and said so.
    (folder / "orphan-child.yaml").write_text(
        yaml.safe_dump(
            {"id": "orphan-child", "title": "t", "description": "d", "examples": ["x y"], "parent": "broken"}
        ),
        encoding="utf-8",
    )
    shipped, _ = check_narratives(REPO / "narratives")
    assert shipped is not None
    usable, problems = load_usable_narratives(folder)
    assert set(usable.ids) == set(shipped.ids)
    assert {Path(problem.file).name for problem in problems} == {"broken.yaml", "orphan-child.yaml"}


def test_alias_bomb_is_refused_quickly_with_a_short_message(tmp_path: Path) -> None:
    path = tmp_path / "alias-bomb.yaml"
    path.write_text(ALIAS_BOMB, encoding="utf-8")
    assert len(ALIAS_BOMB.encode()) <= 481
    narratives, problems = check_narratives(tmp_path)
    assert narratives is None and len(problems) == 1
    assert "aliases (*name) are not allowed" in problems[0].message
    assert problems[0].line == 5
    assert len(str(problems[0])) < MAX_PROBLEM_CHARS + len(str(path)) + 40


def _validate_in_child(folder: Path) -> tuple[int, str, float, int]:
    """Run `narratives validate` in a child process: (exit code, stderr, seconds, peak RSS in MB).

    The seconds are those of the command (the interpreter's start and imports are left out: on a
    loaded machine they vary more than the check takes). The peak is the child's VmHWM: ru_maxrss
    would carry over the forked parent's high-water mark across exec."""
    code = (
        "import sys, time\n"
        "from narrwatch.cli.main import main\n"
        "sys.argv = ['narrwatch', 'narratives', 'validate', '--dir', sys.argv[1]]\n"
        "started = time.monotonic()\n"
        "try:\n    main()\nexcept SystemExit:\n"
        "    status = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
        "    print('PEAK', status, time.monotonic() - started, file=sys.stderr)\n"
        "    raise\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(folder)], capture_output=True, text=True, timeout=60, check=False
    )
    peak = next(line.split() for line in done.stderr.splitlines() if line.startswith("PEAK"))
    return done.returncode, done.stderr, float(peak[2]), int(peak[1]) // 1024


def test_alias_bomb_and_16_mb_seed_fail_validate_with_a_bounded_message_and_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb"
    bomb.mkdir()
    (bomb / "alias-bomb.yaml").write_text(ALIAS_BOMB, encoding="utf-8")
    huge = tmp_path / "huge"
    huge.mkdir()
    lines = ["id: huge", "title: t", "description: d", "examples:"]
    lines += [f"  - example number {n} of a seed nobody could review" for n in range(320_000)]
    (huge / "huge.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert (huge / "huge.yaml").stat().st_size > 16_000_000
    for folder, expected in (
        (bomb, "aliases (*name) are not allowed"),
        (huge, "at most 262,144 are allowed"),
    ):
        code, stderr, seconds, peak_mb = _validate_in_child(folder)
        assert code == 1, stderr
        assert expected in stderr
        # Memory is bounded by the limits, whatever the machine's load; the time is measured by
        # bench/seed_limits.py (timings belong in bench/, not in tests).
        assert peak_mb < 200, peak_mb
        assert max(len(line) for line in stderr.splitlines()) < 500


def test_limits_on_examples_name_the_field(tmp_path: Path) -> None:
    base = {"title": "t", "description": "d"}
    cases = {
        "too-many": {**base, "examples": [f"phrasing {n}" for n in range(MAX_PHRASES + 1)]},
        "too-long": {**base, "examples": ["word " * (MAX_PHRASE_CHARS // 4)]},
    }
    for seed_id, document in cases.items():
        (tmp_path / f"{seed_id}.yaml").write_text(
            yaml.safe_dump({"id": seed_id, **document}), encoding="utf-8"
        )
    _, problems = check_narratives(tmp_path)
    found = {(Path(p.file).stem, p.field): p.message for p in problems}
    assert f"at most {MAX_PHRASES} are allowed" in found[("too-many", "examples")]
    assert f"at most {MAX_PHRASE_CHARS} are allowed" in found[("too-long", "examples[0]")]
    assert all(len(message) <= MAX_PROBLEM_CHARS for message in found.values())
