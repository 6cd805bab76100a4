"""How each daily step's cost grows with the stored history: 10k, 100k, 1M articles.

For each size it builds a store (SQL + the embedded vector engine, Qdrant Edge), then times every
daily step for one new day of ``--day`` articles (20,000 by default) and the analyst's tools, each
step in its own process so its peak RSS is its own (``VmHWM``: Linux keeps ``ru_maxrss`` across
exec, so a step started from the building process would report that process's peak):

    persist   the day's feed entries through the real dedup and insert path (decide_entries +
              persist_plan), 64 feeds of the bench's outlets
    embed     narrwatch embed: passages split by the real tokenizer, written to SQL and the store
    match     narrwatch match over the new day (the 9 seed narratives)
    cluster   narrwatch cluster over the new day's unmatched articles
    detect    narrwatch detect for the new day (baselines over the history's daily counts)
    report    narrwatch report for the new day
    backtest  narratives backtest of one seed over 30 days
    search    an analyst's query: encode a text, top 10 of the last 30 days in one language (median of 20)
    try       narratives try: score one text against every seed

History (what is being scaled): articles spread over max(30, size / 20,000) days, texts from the
bench's news generator (embeddings/newsgen.py, a pool of 2,000 reused with unique titles and URLs),
one passage each, marks, match states, a match for 4 % of them and clusters of ten for the
unmatched ones; it is written with bulk inserts (COPY on PostgreSQL), not through the steps, then
vacuumed and checkpointed. The clusters of ten are consecutive articles whatever their similarity,
so the first run's cluster step merges thousands of them (the online clusterer would have merged
them as they formed): that run measures the repair; ``--reuse`` (the same new day again) gives the
steady state.

Vectors: the encoder embeds 60-90 texts/s here, so 1M articles would take days. Every history point
and every passage of the new day therefore gets a vector made without the encoder: a normalised mix
of two vectors of a pool of really encoded texts (news sentences, the seeds' phrasings and their
near misses) picked by a hash of the text, plus noise; one article in 25 mixes in a seed phrasing,
so matching, clustering and rising detection have real work. Seeds and queries are encoded by the
real model (bundled MiniLM, ONNX int8). bench/embed.py measures the encoder itself.

    .venv/bin/python bench/scale.py --sizes 10000,100000 --backend sqlite
    .venv/bin/python bench/scale.py --sizes 10000,100000,1000000 --backend postgresql
    .venv/bin/python bench/scale.py --sizes 10000,100000 --json   # last line: one JSON object
    .venv/bin/python bench/scale.py --sizes 10000 --reuse --profile var/prof   # cProfile per step
    .venv/bin/python bench/scale.py --sizes 10000,1000000 --reuse --repeat 5   # medians, sizes alternating

PostgreSQL: a database per size (``narrwatch_scale_<size>``, or ``<prefix>_<size>`` with a prefix) on
``--pg`` (default 127.0.0.1:5432, user postgres), dropped and made again unless ``--reuse`` finds it built.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from scale_history import (  # beside this file; it puts the repository on the path
    DAY0,
    LANGUAGES,
    N_FEEDS,
    build,
    database_url,
    history_days,
    open_context,
    settle,
)

REPO = Path(__file__).resolve().parent.parent

DAILY_STEPS = ["persist", "embed", "match", "cluster", "detect", "report"]
TOOL_STEPS = ["backtest", "search", "try"]
STEPS = DAILY_STEPS + TOOL_STEPS
SEARCH_TEXT = "The government denied that the energy deal gives a foreign company control of the grid."


# --- the new day ----------------------------------------------------------------------------------


def day_of(size: int, per_day: int) -> dt.date:
    return DAY0 + dt.timedelta(days=history_days(size, per_day))


def persist_day(ctx: Any, day: dt.date, n: int) -> dict[str, Any]:
    """The day's entries through the real dedup and insert path, one document per feed."""
    from narrwatch.domain.types import ParsedEntry
    from narrwatch.embeddings.newsgen import generate_articles
    from narrwatch.steps.poll.decide import FeedSnapshot, decide_entries, entry_keys
    from narrwatch.steps.poll.lookups import _load_lookups
    from narrwatch.steps.poll.persist import persist_plan

    start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
    generated = generate_articles(n, seed=day.toordinal())
    per_feed: dict[int, list[ParsedEntry]] = {}
    for i, article in enumerate(generated):
        feed = i % N_FEEDS
        published = start + dt.timedelta(seconds=int(i * 86400 / n))
        link = f"https://outlet{feed:02d}.example/news/{day.isoformat()}/{i}"
        per_feed.setdefault(feed, []).append(
            ParsedEntry(
                title=f"{article.title} [{day.isoformat()} {i}]",
                link=link,
                guid=link,
                summary="",
                content=article.text,
                published=published,
                updated=None,
                author=None,
                language=LANGUAGES[feed % len(LANGUAGES)],
            )
        )
    now = start + dt.timedelta(days=1, hours=1)
    from narrwatch.db.models import Feed

    new_articles = 0
    started = time.perf_counter()
    for feed_number, entries in sorted(per_feed.items()):
        with ctx.transaction() as session:
            row = session.get(Feed, f"feed-{feed_number:02d}")
            snapshot = FeedSnapshot.of(row)
            keys = entry_keys(entries, use_links=False)
            lookups = _load_lookups(session, snapshot, entries, keys)
            plan = decide_entries(
                snapshot, entries, keys, lookups, now, dt.timedelta(days=ctx.settings.dedup_title_window_days)
            )
            added, _ = persist_plan(session, snapshot.id, plan, now)
            new_articles += added
    return {"seconds": time.perf_counter() - started, "new_articles": new_articles}


def run_step(step: str, ctx: Any, day: dt.date) -> dict[str, Any]:
    from narrwatch import pipeline
    from narrwatch.analyst.backtest import backtest
    from narrwatch.analyst.try_text import test_text

    start = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    now = end + dt.timedelta(hours=1)
    if step == "persist":
        return persist_day(ctx, day, ctx.bench_day_articles)
    started = time.perf_counter()
    summary: Any
    if step == "embed":
        summary = pipeline.embed(ctx, now)
    elif step == "match":
        summary = pipeline.match(ctx, start, end, now)
    elif step == "cluster":
        summary = pipeline.cluster(ctx, start, end, now)
    elif step == "detect":
        summary = pipeline.detect(ctx, day, now)
    elif step == "report":
        summary = pipeline.report(ctx, day, now, out_dir=ctx.settings.data_dir / "reports")
    elif step == "backtest":
        from narrwatch.steps.match.seeds import load_narratives

        seed = next(iter(load_narratives(ctx.settings.narratives_dir).active())).id
        result = backtest(ctx, seed, 30, now)
        summary = {"candidates": result.candidates, "total": result.total}
    elif step == "search":
        return timed_searches(ctx, now)
    elif step == "try":
        summary = {"seeds": len(test_text(ctx, SEARCH_TEXT).seeds)}
    else:
        raise ValueError(step)
    return {"seconds": time.perf_counter() - started, "summary": summary}


def timed_searches(ctx: Any, now: dt.datetime) -> dict[str, Any]:
    from sqlalchemy import select

    from narrwatch.db.models import Article
    from narrwatch.embeddings.collections import collection_for
    from narrwatch.ports import SearchFilter

    collection = collection_for(ctx.encoder)
    timings = []
    for n in range(20):
        started = time.perf_counter()
        vector = ctx.encoder.encode_queries([f"{SEARCH_TEXT} ({n})"])[0]
        hits = ctx.vector_store.search(
            collection,
            vector,
            10,
            SearchFilter(
                published_from=now - dt.timedelta(days=30),
                published_to=now,
                languages=[LANGUAGES[n % len(LANGUAGES)]],
            ),
        )
        with ctx.transaction() as session:
            session.execute(
                select(Article.id, Article.title).where(
                    Article.id.in_([h.payload["article_id"] for h in hits])
                )
            ).all()
        timings.append(time.perf_counter() - started)
    return {"seconds": statistics.median(timings), "summary": {"searches": 20}}


# --- driver ---------------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    """This process's own peak resident memory (the high-water mark of its address space)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the usage figure


def child(args: argparse.Namespace) -> None:
    """One step in this process; prints its seconds and peak RSS as JSON."""
    import logging

    logging.disable(logging.WARNING)
    ctx = open_context(args.url, Path(args.data_dir), Path(args.models_dir), Path(args.pool))
    ctx.bench_day_articles = args.day
    ctx.encoder.count_tokens("warm")  # load the tokenizer and model before the clock starts
    # The folder opens here; a collection's shard loads on first use, inside the step: that is its cost.
    ctx.vector_store  # noqa: B018
    on = dt.date.fromisoformat(args.on)
    if args.profile is None:
        result = run_step(args.step, ctx, on)
    else:
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(run_step, args.step, ctx, on)
        args.profile.mkdir(parents=True, exist_ok=True)
        profiler.dump_stats(args.profile / f"{args.step}-{args.size}.prof")
    ctx.close()
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result, default=str))


def data_dir_of(backend: str, size: int, work: Path) -> Path:
    """Where a size's history keeps its vectors, reports and build stamp."""
    return work / f"{backend}-{size}"


def prepare(
    backend: str, size: int, work: Path, pg: str, per_day: int, models_dir: Path, reuse: bool
) -> Path:
    data_dir = data_dir_of(backend, size, work)
    url = database_url(backend, size, work, pg)
    stamp = data_dir / "built.json"
    if reuse and stamp.exists():
        from narrwatch.db.migrate import upgrade

        upgrade(url)  # a history built by an older version gets the current schema, as an operator's would
        return data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    if backend == "postgresql":
        name = database_url(backend, size, work, pg).rsplit("/", 1)[1]
        host, _, port = pg.split("/")[0].partition(":")
        subprocess.run(
            ["dropdb", "-h", host, "-p", port or "5432", "-U", "postgres", "--if-exists", name], check=True
        )
        subprocess.run(["createdb", "-h", host, "-p", port or "5432", "-U", "postgres", name], check=True)
    ctx = open_context(url, data_dir, models_dir, work / "pool.npz")
    timings = build(ctx, backend, size, per_day)
    # Steady state: yesterday's detection has written the daily counts the baselines read.
    from narrwatch import pipeline

    yesterday = day_of(size, per_day) - dt.timedelta(days=1)
    started = time.perf_counter()
    pipeline.detect(ctx, yesterday, dt.datetime.combine(yesterday, dt.time(23), tzinfo=dt.UTC))
    timings["detect_history"] = time.perf_counter() - started
    settle(ctx, backend)
    ctx.close()
    stamp.write_text(json.dumps(timings))
    print(f"built {backend} {size:,}: {timings}", file=sys.stderr, flush=True)
    return data_dir


def disk_usage(backend: str, size: int, data_dir: Path, pg: str) -> dict[str, float]:
    vectors = sum(f.stat().st_size for f in (data_dir / "vectors").rglob("*") if f.is_file()) / 2**20
    if backend == "sqlite":
        sql = sum(f.stat().st_size for f in data_dir.glob("narrwatch.db*")) / 2**20
    else:
        host, _, port = pg.split("/")[0].partition(":")
        out = subprocess.run(
            [
                "psql",
                "-h",
                host,
                "-p",
                port or "5432",
                "-U",
                "postgres",
                "-d",
                database_url(backend, size, data_dir, pg).rsplit("/", 1)[1],
                "-tAc",
                "SELECT pg_database_size(current_database())",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        sql = int(out.stdout.strip()) / 2**20
    return {"sql_mb": round(sql, 1), "vectors_mb": round(vectors, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--day", type=int, default=20_000, help="articles of the new day")
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--work", type=Path, default=REPO / "var" / "bench-scale")
    parser.add_argument(
        "--pg", default="127.0.0.1:5432", help="host:port, or host:port/prefix: databases named prefix_<size>"
    )
    parser.add_argument("--reuse", action="store_true", help="reuse a built history (the new day is rebuilt)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the steps that change nothing they read again (detect, report, search, try) this "
        "many times in all, alternating sizes, and report each one's median: on a shared machine one "
        "run's ratio moves with its neighbours' load",
    )
    parser.add_argument(
        "--profile", type=Path, help="write each step's cProfile to PROFILE/<step>-<size>.prof (pstats)"
    )
    # internal: one step in a child process
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    parser.add_argument("--models-dir", help=argparse.SUPPRESS)
    parser.add_argument("--pool", help=argparse.SUPPRESS)
    parser.add_argument("--on", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    steps = [s for s in args.steps.split(",") if s]
    work = args.work.resolve()
    models_dir = work / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, dict[int, float]] = {step: {} for step in steps}
    peak: dict[str, dict[int, float]] = {step: {} for step in steps}
    disk: dict[int, dict[str, float]] = {}
    done: list[int] = []
    for size in sizes:
        try:
            run_size(args, size, steps, work, models_dir, seconds, peak, disk)
        except (SystemExit, Exception) as exc:  # report the sizes that completed
            print(f"size {size:,} did not complete: {exc}", file=sys.stderr, flush=True)
            break
        done.append(size)
    sizes = done
    if not sizes:
        raise SystemExit("no size completed")
    repeat_steps(args, sizes, [s for s in steps if s in REPEATABLE], work, models_dir, seconds, peak)
    print_table(args.backend, sizes, steps, seconds, peak, disk, args.day)
    if args.json:
        print(
            json.dumps(
                {
                    "backend": args.backend,
                    "day_articles": args.day,
                    "sizes": sizes,
                    "seconds": seconds,
                    "peak_rss_mb": peak,
                    "disk_mb": disk,
                }
            )
        )


def run_size(
    args: argparse.Namespace,
    size: int,
    steps: list[str],
    work: Path,
    models_dir: Path,
    seconds: dict[str, dict[int, float]],
    peak: dict[str, dict[int, float]],
    disk: dict[int, dict[str, float]],
) -> None:
    data_dir = prepare(args.backend, size, work, args.pg, 20_000, models_dir, args.reuse)
    if args.reuse:
        forget_new_day(args.backend, size, work, args.pg, data_dir, models_dir)
    for step in steps:
        result = run_child(args, size, step, work, models_dir)
        seconds[step][size] = round(result["seconds"], 4)
        peak[step][size] = round(result["peak_rss_mb"], 1)
    disk[size] = disk_usage(args.backend, size, data_dir, args.pg)


#: Steps that change nothing they read: run again, they do the same work (detect counts its day and
#: writes its flags again; the others only read).
REPEATABLE = ["detect", "report", "search", "try"]


def run_child(args: argparse.Namespace, size: int, step: str, work: Path, models_dir: Path) -> dict[str, Any]:
    """One step for one size in its own process; prints its line and returns its figures."""
    data_dir = data_dir_of(args.backend, size, work)
    command = [
        sys.executable,
        __file__,
        "--child",
        "--step",
        step,
        "--day",
        str(args.day),
        "--url",
        database_url(args.backend, size, work, args.pg),
        "--data-dir",
        str(data_dir),
        "--models-dir",
        str(models_dir),
        "--pool",
        str(work / "pool.npz"),
        "--on",
        day_of(size, 20_000).isoformat(),
        "--size",
        str(size),
        *(["--profile", str(args.profile)] if args.profile else []),
    ]
    out = subprocess.run(command, capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-3000:])
        raise SystemExit(f"step {step} at {size} failed")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"{args.backend} {size:>9,} {step:<9} {result['seconds']:9.3f} s  "
        f"peak {result['peak_rss_mb']:7.1f} MB  {json.dumps(result.get('summary', ''))[:140]}",
        file=sys.stderr,
        flush=True,
    )
    return result


def repeat_steps(
    args: argparse.Namespace,
    sizes: list[int],
    steps: list[str],
    work: Path,
    models_dir: Path,
    seconds: dict[str, dict[int, float]],
    peak: dict[str, dict[int, float]],
) -> None:
    """With ``--repeat N``: N - 1 more runs of each repeatable step, sizes alternating (so a slow minute
    on a shared machine falls on both), then each step's median time and highest peak."""
    times = {step: {size: [seconds[step][size]] for size in sizes} for step in steps}
    for _ in range(args.repeat - 1):
        for step in steps:
            for size in sizes:
                result = run_child(args, size, step, work, models_dir)
                times[step][size].append(result["seconds"])
                peak[step][size] = max(peak[step][size], round(result["peak_rss_mb"], 1))
    for step in steps:
        for size in sizes:
            seconds[step][size] = round(statistics.median(times[step][size]), 4)
            if args.repeat > 1:
                spread = ", ".join(f"{t:.2f}" for t in times[step][size])
                print(f"{step} at {size:,}: median of {spread}", file=sys.stderr, flush=True)


def forget_new_day(backend: str, size: int, work: Path, pg: str, data_dir: Path, models_dir: Path) -> None:
    """With --reuse: remove what a previous run's new day added, so every run starts from the history,
    then vacuum and analyse as after the build: PostgreSQL's autovacuum would have cleared the removed
    rows in production, but it may be off where the bench runs (it was off on the machine measured),
    and each run's 20,000 claims left as dead rows made every later claim scan them (0.14-0.4 s a
    batch after a few runs)."""
    from sqlalchemy import delete, select, text

    from narrwatch.db.models import Article, Passage
    from narrwatch.embeddings.collections import collection_for

    ctx = open_context(database_url(backend, size, work, pg), data_dir, models_dir, work / "pool.npz")
    collection = collection_for(ctx.encoder)
    with ctx.transaction() as session:
        points = list(session.scalars(select(Passage.point_id).where(Passage.article_id > size)))
        session.execute(delete(Article).where(Article.id > size))
        # the history's stored counts stay (the steady state detect reads); the new day's go
        for table in ["daily_counts", "daily_volumes", "rising_flags"]:
            session.execute(text(f"DELETE FROM {table} WHERE day >= :day"), {"day": day_of(size, 20_000)})
        for table in ["pipeline_runs", "work_claims"]:
            session.execute(text(f"DELETE FROM {table}"))
        session.execute(text("DELETE FROM cluster_members WHERE article_id > :n"), {"n": size})
        # clusters the new day founded go, and history clusters merged into them come back
        # (history clusters it joined keep their moved centroids: the history has no record of them)
        new = "SELECT id FROM clusters WHERE first_seen_at >= :start"
        start = dt.datetime.combine(day_of(size, 20_000), dt.time(0), tzinfo=dt.UTC)
        unmerge = "UPDATE clusters SET status = 'live', merged_into = NULL, merged_at = NULL"
        session.execute(text(f"{unmerge} WHERE merged_into IN ({new})"), {"start": start})
        session.execute(text(f"DELETE FROM clusters WHERE id IN ({new})"), {"start": start})
    ctx.vector_store.delete(collection, points)
    settle(ctx, backend)
    ctx.close()


def print_table(
    backend: str,
    sizes: list[int],
    steps: list[str],
    seconds: dict[str, dict[int, float]],
    peak: dict[str, dict[int, float]],
    disk: dict[int, dict[str, float]],
    day: int,
) -> None:
    head = (
        f"{'step':<10}"
        + "".join(f"{f'{s:,}':>14}" for s in sizes)
        + "".join(f"{f'RSS {s:,}':>15}" for s in sizes)
    )
    ratio = len(sizes) > 1
    if ratio:
        head += f"{f'{sizes[-1]:,}/{sizes[0]:,}':>16}"
    print(f"\n{backend} + Qdrant Edge, one new day of {day:,} articles: seconds, peak RSS (MB)")
    print(head)
    for step in steps:
        line = f"{step:<10}" + "".join(f"{seconds[step][s]:14.3f}" for s in sizes)
        line += "".join(f"{peak[step][s]:15.0f}" for s in sizes)
        if ratio:
            line += f"{seconds[step][sizes[-1]] / max(seconds[step][sizes[0]], 1e-9):16.2f}"
        print(line)
    for size in sizes:
        sql_mb, vectors_mb = disk[size]["sql_mb"], disk[size]["vectors_mb"]
        print(f"disk at {size:,} articles: SQL {sql_mb:,.0f} MB, vectors {vectors_mb:,.0f} MB")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
