"""The analyst's commands: `narrwatch narratives ...`, `review`, `label` and `eval match`.

new -> validate -> test -> backtest -> activate -> review/label -> calibrate (narratives/README.md).
User mistakes (a bad seed file, an unknown id, a bad option) print one clear message to stderr and
exit non-zero, without a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from narrwatch.cli.common import UsageError, parse_now
from narrwatch.cli.eval import eval_app
from narrwatch.domain.text import shorten

if TYPE_CHECKING:
    from narrwatch.context import AppContext

narratives_app = typer.Typer(
    help="Seed narratives: write, check, test and backtest them; calibrate their thresholds.",
    no_args_is_help=True,
)

NowOption = Annotated[str | None, typer.Option("--now", help="Logical time, ISO 8601 (default: now, UTC).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
DirOption = Annotated[
    Path | None,
    typer.Option("--dir", help="Folder of seed files (default: NARRWATCH_NARRATIVES_DIR)."),
]


def register(app: typer.Typer) -> None:
    app.add_typer(narratives_app, name="narratives")
    app.command("review")(review)
    app.command("label")(label)


def _fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _now(value: str | None) -> dt.datetime:
    try:
        return parse_now(value)
    except UsageError as exc:
        _fail(str(exc))


def _context() -> AppContext:
    from narrwatch import config
    from narrwatch.context import AppContext

    return AppContext.from_settings(config.get_settings())


def _narratives_dir(directory: Path | None) -> Path:
    from narrwatch import config

    return directory if directory is not None else config.get_settings().narratives_dir


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _run_use_case(call: Any) -> Any:
    """Turn the use cases' user errors into one-line messages."""
    from sqlalchemy.exc import DBAPIError

    from narrwatch.steps.match.seeds import NarrativeError

    try:
        return call()
    except NarrativeError as exc:
        typer.echo("error: the seed narratives have problems:", err=True)
        for problem in exc.problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(2) from None
    except (KeyError, LookupError, ValueError) as exc:
        message = exc.args[0] if exc.args else str(exc)
        _fail(str(message))
    except DBAPIError as exc:  # no schema yet, server down: not a bug in the command
        first_line = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        _fail(
            f"the SQL store is not usable ({first_line}); "
            "run `narrwatch db upgrade` or check NARRWATCH_DATABASE_URL"
        )


# --- narratives ---------------------------------------------------------------------------------


@narratives_app.command("validate")
def validate(directory: DirOption = None) -> None:
    """Check every seed file: schema, unique ids, known parents, examples, thresholds."""
    from narrwatch.steps.match.seeds import check_narratives

    folder = _narratives_dir(directory)
    narratives, problems = check_narratives(folder)
    if narratives is None:
        typer.echo(f"{len(problems)} problem(s) in {folder}:", err=True)
        for problem in problems:
            typer.echo(f"  {problem}", err=True)
        raise typer.Exit(1)
    by_status: dict[str, int] = {}
    for seed in narratives:
        by_status[seed.status] = by_status.get(seed.status, 0) + 1
    counts = ", ".join(f"{count} {status}" for status, count in sorted(by_status.items()))
    typer.echo(f"ok: {len(narratives)} seed narratives in {folder} ({counts})")


@narratives_app.command("list")
def list_seeds(directory: DirOption = None, as_json: JsonOption = False) -> None:
    """The seeds on disk: id, status, parent, title."""
    from narrwatch.steps.match.seeds import load_narratives

    narratives = _run_use_case(lambda: load_narratives(_narratives_dir(directory)))
    rows = [
        {
            "id": seed.id,
            "status": seed.status,
            "parent": seed.parent,
            "title": seed.title,
            "examples": len(seed.examples),
            "negatives": len(seed.negatives),
        }
        for seed in narratives
    ]
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        parent = f" (under {row['parent']})" if row["parent"] else ""
        typer.echo(f"{row['id']:<36} {row['status']:<8} {row['title']}{parent}")


@narratives_app.command("new")
def new(
    seed_id: Annotated[str, typer.Argument(help="Id of the new seed, e.g. energy-blackmail.")],
    parent: Annotated[str | None, typer.Option(help="Id of the seed this one refines.")] = None,
    owner: Annotated[str | None, typer.Option(help="Team or person who looks after it.")] = None,
    directory: DirOption = None,
) -> None:
    """Write a commented scaffold <dir>/<ID>.yaml (status draft) to fill in."""
    from narrwatch.steps.match.seeds import scaffold

    folder = _narratives_dir(directory)
    target = folder / f"{seed_id}.yaml"
    if target.exists():
        _fail(f"{target} already exists")
    text = _run_use_case(lambda: scaffold(seed_id, parent=parent, owner=owner))
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {target}: fill in title, description, examples and negatives, then run")
    typer.echo("  narrwatch narratives validate && narrwatch narratives test --file ARTICLE.txt")
    typer.echo(f"  narrwatch narratives backtest {seed_id}")


def _read_input(text: str | None, file: Path | None, url: str | None, ctx: AppContext) -> tuple[str, str]:
    """(title, text) from exactly one of the three sources."""
    given = [name for name, value in (("TEXT", text), ("--file", file), ("--url", url)) if value]
    if len(given) != 1:
        _fail('give exactly one of "TEXT", --file F or --url U')
    if text:
        return "", text
    if file is not None:
        try:
            return "", file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"--file {file}: cannot read it as UTF-8 text ({exc})")
    return _fetch_article(str(url), ctx)


def _fetch_article(url: str, ctx: AppContext) -> tuple[str, str]:
    """Main text of a web page through the feeds area's guarded fetcher (SSRF checks, size and time
    limits) and its isolated trafilatura extractor."""
    from narrwatch.steps.poll.extract import ArticleExtractor
    from narrwatch.steps.poll.fetch import GuardedFetcher
    from narrwatch.steps.poll.isolate import IsolatedRunner

    settings = ctx.settings
    with GuardedFetcher(settings) as fetcher, IsolatedRunner() as runner:
        extraction = ArticleExtractor(fetcher, runner, timeout_s=settings.parse_timeout_s).extract(url)
    if extraction.text is None:
        _fail(f"--url {url}: {extraction.error or 'no article text found'}")
    return "", extraction.text


@narratives_app.command("test")
def test(
    text: Annotated[str | None, typer.Argument(help="The text to score.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Score a UTF-8 text file.")] = None,
    url: Annotated[str | None, typer.Option("--url", help="Fetch a page and score its text.")] = None,
    top: Annotated[int, typer.Option(help="Show this many seeds, best first.")] = 5,
    as_json: JsonOption = False,
) -> None:
    """Score one text against every seed (drafts included), with the evidence passage."""
    from narrwatch.analyst.try_text import test_text

    ctx = _context()
    try:
        title, body = _read_input(text, file, url, ctx)
        result = _run_use_case(lambda: test_text(ctx, body, title=title))
    finally:
        ctx.close()
    if as_json:
        _print_json(result.as_dict())
        return
    typer.echo(f"model {result.model_name}, {result.passages} passage(s)")
    for note in result.notes:
        typer.echo(f"note: {note}")
    for seed in result.seeds[:top]:
        level = seed.level or "-"
        draft = " (draft)" if seed.status == "draft" else ""
        typer.echo(
            f"{seed.score:6.3f}  {level:<8} {seed.narrative_id}{draft}  "
            f"[suggest {seed.thresholds['suggest']:.2f} / confirm {seed.thresholds['confirm']:.2f}, "
            f"{seed.thresholds['source']}]"
        )
        typer.echo(f"        evidence [{seed.evidence_idx}]: {shorten(seed.evidence_text)}")
        typer.echo(f"        closest phrasing: {shorten(seed.evidence_example, 120)}")
        if seed.keyword_hits:
            typer.echo(f"        keywords: {', '.join(seed.keyword_hits)}")


@narratives_app.command("backtest")
def backtest(
    seed_id: Annotated[str, typer.Argument(help="Seed id (as it is on disk, draft or active).")],
    days: Annotated[int, typer.Option(min=1, help="Days of stored history to search.")] = 30,
    top: Annotated[int, typer.Option(min=0, help="Best matches to show.")] = 10,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """What the seed on disk would match in stored history, and how that differs from stored matches."""
    from narrwatch.analyst.backtest import backtest as run_backtest

    at = _now(now)
    ctx = _context()
    try:
        result = _run_use_case(lambda: run_backtest(ctx, seed_id, days, at, top_n=top))
    finally:
        ctx.close()
    if as_json:
        _print_json(result.as_dict())
        return
    thresholds = result.thresholds
    typer.echo(
        f"{seed_id}: {result.total} match(es) among {result.articles_in_window} embedded articles "
        f"from {result.window_start:%Y-%m-%d} to {result.window_end:%Y-%m-%d} "
        f"({result.candidates} candidates from the vector store, {result.seconds:.1f} s)"
    )
    typer.echo(
        f"thresholds: suggest {thresholds['suggest']:.3f}, confirm {thresholds['confirm']:.3f} "
        f"({thresholds['source']})"
    )
    if result.per_day:
        typer.echo("per day (confirm + suggest):")
        for day, counts in result.per_day.items():
            bar = "#" * min(60, counts["confirm"] + counts["suggest"])
            typer.echo(f"  {day}  {counts['confirm']:4d} + {counts['suggest']:<4d} {bar}")
    if result.top:
        typer.echo("best matches:")
        for item in result.top:
            typer.echo(
                f"  {item.score:6.3f} {item.level:<8} {item.day} {item.outlet}: {shorten(item.title, 90)}"
            )
            typer.echo(f"         evidence [{item.evidence_idx}]: {shorten(item.evidence_text, 140)}")
    for note in result.notes:
        typer.echo(f"note: {note}")
    versions = ", ".join(f"v{v}" for v in result.stored_versions) or "none"
    typer.echo(
        f"against stored matches ({versions}): {len(result.added)} new, {len(result.removed)} gone, "
        f"{len(result.level_changed)} changed level"
    )


@narratives_app.command("calibrate")
def calibrate(
    seed_id: Annotated[str, typer.Argument(help="Seed id.")],
    target_precision: Annotated[
        float, typer.Option("--target-precision", min=0.01, max=1.0, help="Precision the report should keep.")
    ] = 0.9,
    min_verdicts: Annotated[int, typer.Option(min=1, help="Verdicts needed before calibrating.")] = 10,
    reset: Annotated[bool, typer.Option("--reset", help="Drop the seed's calibration instead.")] = False,
    now: NowOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set the seed's thresholds from the analysts' verdicts for a target precision."""
    from narrwatch.analyst.calibrate import calibrate as run_calibrate
    from narrwatch.analyst.calibrate import reset_calibration

    at = _now(now)
    ctx = _context()
    try:
        if reset:
            from narrwatch.embeddings.collections import collection_for

            collection = collection_for(ctx.encoder)
            dropped = reset_calibration(ctx, seed_id, collection)
            typer.echo(f"{seed_id}: calibration {'dropped' if dropped else 'was not set'} for {collection}")
            return
        result = _run_use_case(
            lambda: run_calibrate(ctx, seed_id, target_precision, at, min_verdicts=min_verdicts)
        )
    finally:
        ctx.close()
    if as_json:
        _print_json(result.as_dict())
    else:
        typer.echo(
            f"{seed_id}: {result.n_verdicts} verdicts ({result.n_confirmed} confirmed, "
            f"{result.n_rejected} rejected) in {result.collection}"
        )
        typer.echo(result.message)
        if result.stored:
            previous = result.previous or {}
            typer.echo(
                f"thresholds now: suggest {result.suggest:.3f}, confirm {result.confirm:.3f} "
                f"(were {previous.get('suggest', 0):.3f} / {previous.get('confirm', 0):.3f}, "
                f"{previous.get('source')}); takes effect at the next `narrwatch match`"
            )
        if result.head:
            typer.echo(result.head)
    if not result.stored:
        raise typer.Exit(1)


# --- review and label ---------------------------------------------------------------------------


def review(
    narrative: Annotated[str | None, typer.Option(help="Only this seed.")] = None,
    level: Annotated[str | None, typer.Option(help="Only suggest or confirm matches.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List matches waiting for an analyst's verdict, newest first."""
    from narrwatch.analyst.review import match_reason, pending_reviews

    if level not in (None, "suggest", "confirm"):
        _fail("--level must be suggest or confirm")
    ctx = _context()
    try:
        items = _run_use_case(lambda: pending_reviews(ctx, narrative_id=narrative, level=level, limit=limit))  # type: ignore[arg-type]
    finally:
        ctx.close()
    if as_json:
        _print_json([asdict(item) for item in items])
        return
    if not items:
        typer.echo("nothing to review")
        return
    for item in items:
        typer.echo(
            f"#{item.match_id}  {item.score:6.3f} {item.level:<8} {item.narrative_id}  "
            f"{item.published_at:%Y-%m-%d} {item.outlet}: {shorten(item.title, 90)}"
        )
        typer.echo(f"      evidence: {shorten(item.evidence_text, 150)}")
        typer.echo(f"      why: {match_reason(item)}")
        typer.echo(f"      {item.url}")
    typer.echo("label with: narrwatch label MATCH_ID confirm|reject [--note TEXT]")


def label(
    match_id: Annotated[int, typer.Argument(help="Match id, as `narrwatch review` shows it.")],
    verdict: Annotated[str, typer.Argument(help="confirm or reject.")],
    note: Annotated[str | None, typer.Option(help="Why (kept with the verdict).")] = None,
    now: NowOption = None,
) -> None:
    """Store a verdict: a rejected match leaves the report and feeds `narratives calibrate`."""
    from narrwatch.analyst.label import label_match

    if verdict not in ("confirm", "reject"):
        _fail(f"verdict must be confirm or reject, not {verdict!r}")
    at = _now(now)
    ctx = _context()
    try:
        result = _run_use_case(lambda: label_match(ctx, match_id, verdict, at, note))  # type: ignore[arg-type]
    finally:
        ctx.close()
    replaced = f" (was {result.replaced})" if result.replaced else ""
    typer.echo(
        f"match #{result.match_id} ({result.narrative_id}, article {result.article_id}): {verdict}{replaced}"
    )


# --- eval match ---------------------------------------------------------------------------------


def _print_figures(result: dict[str, Any]) -> None:
    typer.echo(f"articles: {result['n_articles']}")
    typer.echo(f"{'':8}{'precision':>10}{'recall':>8}{'f1_micro':>10}{'f1_macro':>10}{'f1_samples':>12}")
    for level in ("fine", "coarse"):
        row = result[level]
        typer.echo(
            f"{level:<8}{row['precision']:>10.3f}{row['recall']:>8.3f}{row['f1_micro']:>10.3f}"
            f"{row['f1_macro']:>10.3f}{row['f1_samples']:>12.3f}"
        )
    typer.echo("per narrative (fine):")
    for seed_id, row in result["per_narrative"].items():
        typer.echo(
            f"  {seed_id:<36} support {row['support']:>3}  predicted {row['predicted']:>3}  "
            f"P {row['precision']:.2f}  R {row['recall']:.2f}  F1 {row['f1']:.2f}"
        )


@eval_app.command("match")
def eval_match_command(
    articles: Annotated[Path, typer.Option("--articles", help="JSON Lines file of labelled articles.")],
    narratives: Annotated[Path, typer.Option("--narratives", help="Folder of seed files.")],
    level: Annotated[str, typer.Option(help="suggest (review queue) or confirm (report).")] = "confirm",
    verdicts: Annotated[
        Path | None,
        typer.Option(
            "--verdicts",
            help="Labelled articles (same format) stored first; their labels become analysts' verdicts.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Matching figures on a labelled set (fine and coarse micro/macro/samples F1), on temporary stores."""
    from narrwatch import config
    from narrwatch.eval.match import eval_match

    if level not in ("suggest", "confirm"):
        _fail("--level must be suggest or confirm")
    # EvalDataError is a ValueError: _run_use_case prints it (file:line: what is wrong).
    result = _run_use_case(
        lambda: eval_match(articles, narratives, level, config.get_settings(), verdicts_path=verdicts)  # type: ignore[arg-type]
    )
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True))
        return
    typer.echo(f"level: {level}")
    _print_figures(result)


@eval_app.command("tune-match")
def tune_match_command(
    articles: Annotated[Path, typer.Option("--articles", help="The TUNING set (never the dev set).")],
    narratives: Annotated[Path, typer.Option("--narratives", help="Folder of seed files.")],
    top: Annotated[int, typer.Option(help="Candidates to show.")] = 5,
) -> None:
    """Search the scoring knobs and default thresholds on a tuning set (how MODEL_DEFAULTS were set)."""
    from narrwatch import config
    from narrwatch.eval.match import tune_match

    candidates = _run_use_case(lambda: tune_match(articles, narratives, config.get_settings()))
    for candidate in candidates[:top]:
        p = candidate.params
        typer.echo(
            f"top_k={p.top_k} negative_weight={p.negative_weight} lexical_weight={p.lexical_weight} "
            f"rebuttal_weight={p.rebuttal_weight} use_description={p.use_description}: "
            f"suggest {candidate.suggest:.2f} (fine F1 {candidate.figures_suggest['fine']['f1_micro']:.3f}), "
            f"confirm {candidate.confirm:.2f} (fine F1 {candidate.figures_confirm['fine']['f1_micro']:.3f})"
        )
