"""Response times of the served app on the demo store: Today, Narrative, Review and Search.

    make demo && .venv/bin/python bench/serve.py [--store var/demo] [--requests 20] [--json]

Copies the demo store (SQLite file, feeds file) to a scratch folder, adds a bench account there, starts
`narrwatch serve` on a free loopback port as its own process, logs in, warms each page up twice, then
times ``--requests`` sequential GETs per page from a client on the same machine. Prints the median and
the 90th percentile per page and whether each median is under the 300 ms target (issue 15).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
TARGET_MS = 300.0
PASSWORD = "bench-password-123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(store: Path, scratch: Path) -> dict[str, str]:
    data = scratch / "var"
    data.mkdir(parents=True)
    shutil.copy2(store / "narrwatch.db", data / "narrwatch.db")
    shutil.copy2(store / "feeds.yaml", data / "feeds.yaml")
    env = dict(os.environ)
    env.update(
        {
            "NARRWATCH_DATA_DIR": str(data),
            "NARRWATCH_FEEDS_FILE": str(data / "feeds.yaml"),
            "NARRWATCH_NARRATIVES_DIR": str(REPO / "narratives"),
            "NARRWATCH_WEB_SECRET_KEY": "bench-secret-" + "k" * 32,
        }
    )
    subprocess.run(
        [
            str(Path(sys.executable).parent / "narrwatch"),
            "users",
            "add",
            "bench",
            "--role",
            "analyst",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        text=True,
        env=env,
        check=True,
        capture_output=True,
    )
    return env


def wait_for(url: str, deadline_s: float) -> None:
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"the app did not answer at {url} within {deadline_s:.0f} s")


def pages_of(client: httpx.Client) -> dict[str, str]:
    """The four pages, with a seed and a search word taken from the store itself."""
    # The seed with the most matches in the store: its narrative page has the most to show.
    listing = client.get("/seeds").text
    seeds = re.findall(r'href="/narratives/([a-z0-9-]+)"', listing)
    if not seeds:
        raise SystemExit("the store has no seeds: is it the demo's?")
    sizes = {sid: len(client.get(f"/narratives/{sid}").text) for sid in seeds}
    seed = max(sizes, key=lambda sid: sizes[sid])
    return {
        "today": "/",
        "narrative": f"/narratives/{seed}",
        "review": "/review",
        "search": "/search?q=sovereignty",
    }


def measure(client: httpx.Client, path: str, n: int) -> list[float]:
    for _ in range(2):
        client.get(path).raise_for_status()
    timings = []
    for _ in range(n):
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000.0)
        response.raise_for_status()
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", type=Path, default=REPO / "var" / "demo")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (args.store / "narrwatch.db").exists():
        raise SystemExit(f"{args.store}/narrwatch.db not found: run `make demo` first")
    with tempfile.TemporaryDirectory(prefix="narrwatch-bench-serve-") as scratch:
        env = prepare(args.store, Path(scratch))
        port = free_port()
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "narrwatch"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(base + "/login", 60)
            with httpx.Client(base_url=base, timeout=30.0) as client:
                form = client.get("/login").text
                token = re.search(r'name="csrf_token" value="([^"]+)"', form)
                assert token is not None
                client.post(
                    "/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token.group(1)}
                )
                results: dict[str, Any] = {}
                for name, path in pages_of(client).items():
                    timings = measure(client, path, args.requests)
                    ordered = sorted(timings)
                    results[name] = {
                        "path": path,
                        "median_ms": round(statistics.median(timings), 1),
                        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
                        "max_ms": round(ordered[-1], 1),
                        "under_target": statistics.median(timings) < TARGET_MS,
                    }
        finally:
            server.terminate()
            server.wait(timeout=30)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(
            f"narrwatch serve on {args.store} ({args.requests} sequential requests per page, "
            "after 2 warm-ups)"
        )
        for name, row in results.items():
            verdict = "ok" if row["under_target"] else "OVER"
            print(
                f"  {name:<10} median {row['median_ms']:7.1f} ms   p90 {row['p90_ms']:7.1f} ms   "
                f"max {row['max_ms']:7.1f} ms   target {TARGET_MS:.0f} ms: {verdict}   {row['path']}"
            )
    return 0 if all(row["under_target"] for row in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
