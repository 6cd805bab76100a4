"""Vector collections: one per model and its files, so a model change never mixes vectors."""

from __future__ import annotations

from narrwatch.embeddings.model_source import model_slug
from narrwatch.ports import Encoder

#: Every passage collection narrwatch makes starts with this (reconcile lists them by it).
COLLECTION_PREFIX = "passages__"


def collection_for(encoder: Encoder) -> str:
    """``passages__<model>__<dimension>__<fingerprint>``: one collection per model and its files."""
    slug = model_slug(encoder.model_name)[:80].strip("-.")
    return f"{COLLECTION_PREFIX}{slug}__{encoder.dimension}__{encoder.fingerprint[:12]}"
