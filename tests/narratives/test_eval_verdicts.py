"""`eval match --verdicts`: labels of a first set become analysts' verdicts before the set is scored."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from sqlalchemy import select

from narrwatch.config import Settings
from narrwatch.db.models import Match, Verdict
from narrwatch.eval.match import (
    apply_labels_as_verdicts,
    eval_match,
    figures,
    read_eval_articles,
    store_eval_articles,
    temporary_context,
)
from narrwatch.ports import Encoder
from narrwatch.steps.embed import embed as vectorize
from narrwatch.steps.match import match as matching
from narrwatch.steps.match.seeds import load_narratives

FIXTURES = Path(__file__).parent / "fixtures"
TINY = FIXTURES / "eval_tiny.jsonl"
SEEDS = FIXTURES / "seeds"
KEYS = {"n_articles", "fine", "coarse", "per_narrative"}
FIGURES = {"precision", "recall", "f1_micro", "f1_macro", "f1_samples"}


def _relabelled(tmp_path: Path, prefix: str, labels: dict[str, list[str]]) -> Path:
    """The tiny set under new ids, with some labels changed (an analyst disagreeing with the gold)."""
    rows = [json.loads(line) for line in TINY.read_text().splitlines() if line.strip()]
    out = tmp_path / f"{prefix}.jsonl"
    out.write_text(
        "".join(
            json.dumps({**row, "id": prefix + row["id"], "labels": labels.get(row["id"], row["labels"])})
            + "\n"
            for row in rows
        )
    )
    return out


def test_labels_become_confirm_and_reject_verdicts(
    tmp_path: Path, settings: Settings, encoder: Encoder
) -> None:
    # a1 is really about NATO; here the "analyst" says it carries no seed, so its matches are rejected.
    path = _relabelled(tmp_path, "v", {"a1": []})
    narratives = load_narratives(SEEDS)
    articles = read_eval_articles(path, narratives)
    end = max(a.published for a in articles)
    with temporary_context(settings, SEEDS, encoder) as ctx:
        ids = store_eval_articles(ctx, articles, end)
        vectorize.embed_pending(ctx, end)
        matching.match_articles(ctx, min(a.published for a in articles), end + dt.timedelta(seconds=1), end)
        counts = apply_labels_as_verdicts(ctx, articles, ids, narratives, end)
        with ctx.transaction() as session:
            matched = {(row.article_id, row.narrative_id) for row in session.scalars(select(Match))}
            verdicts = {
                (row.article_id, row.narrative_id): row.verdict for row in session.scalars(select(Verdict))
            }
    assert matched and set(verdicts) == matched  # every suggested match got exactly one verdict
    parents = narratives.parents()
    for (article_id, seed_id), verdict in verdicts.items():
        labels = next(set(a.labels) for a in articles if ids[a.id] == article_id)
        labelled = labels | {p for label in labels if (p := parents.get(label))}
        assert verdict == ("confirm" if seed_id in labelled else "reject")
    assert counts["reject"] >= 1 and counts["confirm"] >= 1
    assert verdicts[(ids["va1"], "nato-aggressor")] == "reject"


def test_contract_with_verdicts_keeps_the_keys(tmp_path: Path, settings: Settings, encoder: Encoder) -> None:
    verdicts = _relabelled(tmp_path, "v", {})
    result = eval_match(TINY, SEEDS, "confirm", settings, encoder=encoder, verdicts_path=verdicts)
    assert set(result) == KEYS and result["n_articles"] == 6
    for level in ("fine", "coarse"):
        assert set(result[level]) == FIGURES
        assert all(0.0 <= value <= 1.0 for value in result[level].values())


def test_predicting_nothing_scores_zero_micro_f1() -> None:
    narratives = load_narratives(SEEDS)
    articles = read_eval_articles(TINY, narratives)
    result = figures(articles, {}, narratives)
    assert result["fine"]["f1_micro"] == 0.0 and result["coarse"]["f1_micro"] == 0.0


def test_enough_verdicts_over_all_seeds_train_the_stream_head_that_matching_uses(
    tmp_path: Path, settings: Settings, encoder: Encoder
) -> None:
    from narrwatch.domain.verdicts import MIN_STREAM_CONFIRMED, MIN_STREAM_REJECTED
    from narrwatch.embeddings.collections import collection_for
    from narrwatch.steps.match.learning import learn_from_store
    from narrwatch.steps.match.prepare import prepare_seeds, resolve_seed_thresholds, scoring_params

    settings = settings.model_copy(update={"match_learn_from_verdicts": True})  # off for this folder
    # The fixture seeds set their thresholds in their files, which a head does not override.
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for path in SEEDS.glob("*.yaml"):
        kept = [line for line in path.read_text().splitlines() if not line.startswith("thresholds:")]
        (seeds / path.name).write_text("\n".join(kept) + "\n")
    narratives = load_narratives(seeds)
    agreeing = [_relabelled(tmp_path, f"c{i}", {}) for i in range(6)]
    disagreeing = [_relabelled(tmp_path, f"r{i}", {f"a{j}": [] for j in range(10)}) for i in range(3)]
    articles = [a for path in agreeing + disagreeing for a in read_eval_articles(path, narratives)]
    end = max(a.published for a in articles) + dt.timedelta(seconds=1)
    with temporary_context(settings, seeds, encoder) as ctx:
        ids = store_eval_articles(ctx, articles, end)
        vectorize.embed_pending(ctx, end)
        matching.match_articles(ctx, min(a.published for a in articles), end, end)
        counts = apply_labels_as_verdicts(ctx, articles, ids, narratives, end)
        assert counts["confirm"] >= MIN_STREAM_CONFIRMED and counts["reject"] >= MIN_STREAM_REJECTED
        active = [seed.id for seed in narratives.active()]
        thresholds = resolve_seed_thresholds(ctx.settings, encoder.model_name, narratives, {})
        prepared = prepare_seeds(encoder, narratives, active, scoring_params(ctx.settings), thresholds)
        learn_from_store(ctx, prepared, collection_for(encoder), end)
        assert prepared.stream_head is not None and not prepared.heads

        later = _relabelled(tmp_path, "later", {})
        fresh = read_eval_articles(later, narratives)
        fresh_ids = store_eval_articles(ctx, fresh, end)
        vectorize.embed_pending(ctx, end)
        matching.match_articles(ctx, min(a.published for a in fresh), end, end)
        with ctx.transaction() as session:
            rows = list(session.scalars(select(Match).where(Match.article_id.in_(fresh_ids.values()))))
    assert rows and all(row.head_probability is not None for row in rows)  # the stream head had its say
    assert {row.head_kind for row in rows} == {"stream"} and all(0.0 < row.head_cut < 1.0 for row in rows)
