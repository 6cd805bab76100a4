"""How long `narrwatch narratives validate` takes, and how much memory, to refuse hostile seed files.

Two files an attacker or a slip could produce: a 481-byte YAML alias bomb (a billion-laughs
expansion) and a 16 MB seed of 320,000 examples. Each is validated in a child process; the command's
own time (imports left out) and the child's peak resident memory are printed. The bar the operators
asked for: a clear error in under 2 s and under 200 MB each.

    .venv/bin/python bench/seed_limits.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

LAUGH = '["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
ALIAS_BOMB = (
    "id: alias-bomb\ntitle: t\ndescription: d\na: &a "
    + LAUGH
    + "\n"
    + "".join(
        f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]\n"
        for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
    )
)

CHILD = """
import sys, time
from narrwatch.cli.main import main
sys.argv = ['narrwatch', 'narratives', 'validate', '--dir', sys.argv[1]]
started = time.monotonic()
try:
    main()
except SystemExit:
    peak_kb = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]
    print('PEAK', peak_kb, time.monotonic() - started, file=sys.stderr)
    raise
"""


def validate(folder: Path) -> tuple[int, float, int, str]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, check=False
    )
    peak = next(line.split() for line in done.stderr.splitlines() if line.startswith("PEAK"))
    first_error = next((line for line in done.stderr.splitlines() if ".yaml" in line), "")
    return done.returncode, float(peak[2]), int(peak[1]) // 1024, first_error


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        bomb, huge = Path(scratch) / "bomb", Path(scratch) / "huge"
        bomb.mkdir()
        huge.mkdir()
        (bomb / "alias-bomb.yaml").write_text(ALIAS_BOMB, encoding="utf-8")
        lines = ["id: huge", "title: t", "description: d", "examples:"]
        lines += [f"  - example number {n} of a seed nobody could review" for n in range(320_000)]
        (huge / "huge.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{'file':<12} {'bytes':>10} {'exit':>4} {'seconds':>8} {'peak MB':>8}  first error line")
        for folder in (bomb, huge):
            size = sum(path.stat().st_size for path in folder.iterdir())
            code, seconds, peak_mb, error = validate(folder)
            print(f"{folder.name:<12} {size:>10,} {code:>4} {seconds:>8.2f} {peak_mb:>8}  {error[:90]}")


if __name__ == "__main__":
    main()
