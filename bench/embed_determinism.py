"""A text's vector must not depend on its batch-mates: 1,000 demo passages embedded in batches of
1, 7, 32 and 128 with the configured model and backend; prints the lowest cosine of each batching
against batches of one (issue 16 asks for at least 0.99999).

The passages are the demo items' passages, then their titles and single sentences, until there are
1,000 (the demo has 297 items of one passage each).

    .venv/bin/python bench/embed_determinism.py [--models-dir var/models]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np

from narrwatch.config import Settings
from narrwatch.embeddings.encoder import load_encoder
from narrwatch.embeddings.passages import split_passages

ITEMS = Path(__file__).resolve().parent.parent / "narrwatch" / "demo_data" / "items.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models-dir", type=Path, default=None, help="where the model is built/exported")
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    settings = Settings(models_dir=args.models_dir, _env_file=None)  # type: ignore[call-arg]
    encoder = load_encoder(settings)
    items = [json.loads(line) for line in ITEMS.read_text(encoding="utf-8").splitlines() if line.strip()]
    passages = [p for item in items for p in split_passages(item["title"], item["summary"], encoder)]
    extra = [
        part
        for item in items
        for part in [item["title"], *re.split(r"(?<=[.!?])\s+", item["summary"])]
        if len(part) > 15
    ]
    index = 0
    while len(passages) < args.n:
        repeat = index // len(extra)
        passages.append(extra[index % len(extra)] + (f" ({repeat})" if repeat else ""))
        index += 1
    passages = passages[: args.n]
    print(f"{len(passages)} passages, model {encoder.model_name}, backend {encoder.backend}")
    vectors = {}
    for size in (1, 7, 32, 128):
        started = time.perf_counter()
        parts = [encoder.encode_passages(passages[i : i + size]) for i in range(0, len(passages), size)]
        vectors[size] = np.concatenate(parts)
        print(f"batches of {size:>3}: {time.perf_counter() - started:6.1f} s")
    for size in (7, 32, 128):
        cosine = (vectors[size] * vectors[1]).sum(axis=1)
        print(f"batches of {size:>3} vs batches of 1: min cosine {cosine.min():.7f}")


if __name__ == "__main__":
    main()
