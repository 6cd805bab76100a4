"""Promote an emerging cluster to a draft seed: its most central passages become the examples."""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from pathlib import Path

from sqlalchemy import func, select

from narrwatch.context import AppContext
from narrwatch.db.models import Article, Cluster, ClusterMember
from narrwatch.steps.cluster.cluster import PROMOTE_EXAMPLES, ClusteringError, central_passages


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.casefold()).strip("-")


def promote_cluster(ctx: AppContext, cluster_id: int, narratives_dir: Path, now: dt.datetime) -> Path:
    """Write ``narratives_dir/<id>.yaml``, a draft seed built from the cluster, and mark it promoted.

    The draft's examples are the cluster's most central passages; an analyst rewrites the title and
    description, adds negatives and sets ``status: active`` to make it a seed. An existing file is
    never overwritten.
    """
    import yaml

    from narrwatch.steps.match.seed_yaml import parse_seed_file

    with ctx.transaction() as session:
        cluster = session.get(Cluster, cluster_id)
        if cluster is None:
            raise ClusteringError(f"no cluster with id {cluster_id} (see `narrwatch clusters list`)")
        if cluster.status == "merged" and cluster.merged_into is not None:
            raise ClusteringError(
                f"cluster {cluster_id} was merged into cluster {cluster.merged_into}: promote that one"
            )
        examples = central_passages(session, ctx.vector_store, cluster.collection, cluster, PROMOTE_EXAMPLES)
        if not examples:
            raise ClusteringError(
                f"cluster {cluster_id} has no passage vectors in {cluster.collection}: run "
                "`narrwatch vectors reconcile` and `narrwatch embed`, then try again"
            )
        # which outlets carried it, busiest first: the analyst judges spread, not only text
        carried = (
            session.execute(
                select(Article.outlet, func.count(func.distinct(Article.id)))
                .join(ClusterMember, ClusterMember.article_id == Article.id)
                .where(ClusterMember.cluster_id == cluster_id)
                .group_by(Article.outlet)
                .order_by(func.count(func.distinct(Article.id)).desc(), Article.outlet)
            )
            .tuples()
            .all()
        )
        outlets = [f"{outlet} ({n})" for outlet, n in carried]
        terms = [t for t in cluster.label.split(", ") if t][:3]
        seed_id = _slug("-".join(["cluster", str(cluster_id), *terms]))[:100].strip("-")
        target = Path(narratives_dir) / f"{seed_id}.yaml"
        if target.exists():
            raise ClusteringError(f"{target} already exists: edit it, or delete it to promote again")
        title = cluster.representative_title or f"Emerging cluster {cluster_id}"
        document = {
            "id": seed_id,
            "title": title,
            "description": (
                f"DRAFT from emerging cluster {cluster_id} ({cluster.size} articles, "
                f"{cluster.first_seen_at:%Y-%m-%d} to {cluster.last_seen_at:%Y-%m-%d}; distinctive "
                f"terms: {cluster.label or 'none'}; carried by {len(outlets)} outlets: "
                f"{', '.join(outlets[:20]) or 'none'}). Rewrite this as the narrative's claim or framing."
            ),
            "status": "draft",
            "tags": ["from-cluster"],
            "examples": examples,
        }
        header = (
            f"# Draft seed promoted from cluster {cluster_id} on {now:%Y-%m-%d %H:%M} UTC.\n"
            "# Examples are the cluster's most central passages: keep those that carry the narrative,\n"
            "# add negatives (near-misses that must not match), then set status: active.\n"
            f"# Outlets (articles): {', '.join(outlets) or 'none'}\n"
        )
        text = header + yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=100)
        with tempfile.TemporaryDirectory(prefix="narrwatch-promote-") as scratch:
            # the loader's own check (schema, id equal to the file name) before anything is written
            candidate = Path(scratch) / target.name
            candidate.write_text(text, encoding="utf-8")
            seed, problems = parse_seed_file(candidate, str(target))
        if seed is None or problems:
            raise ClusteringError("the draft seed does not validate: " + "; ".join(map(str, problems)))
        Path(narratives_dir).mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(target)
        cluster.status = "promoted"
    return target
