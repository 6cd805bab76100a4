"""Turn two third-party labelled sets into narrwatch seeds and `eval match` JSON Lines files.

Nothing is fetched here: point the script at local clones (see eval/thirdparty/README.md for the
download step). Their licences do not allow redistribution, so the output goes to
``eval/thirdparty/<source>/`` which git ignores; every run writes the same files from the same input.

    python eval/thirdparty/convert.py --fnc1 PATH/fnc-1 --clef2020 PATH/clef2020-factchecking-task2

Per source it writes ``seeds/*.yaml`` (made only from the source's own claim texts), ``tune.jsonl``
and ``eval.jsonl`` (articles split by a hash of their id, so the split never changes), and
``stance.jsonl`` where the source marks how an article stands towards its claim.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
#: Share of claims that get a seed; the articles of the other claims are unrelated negatives.
SEEDED_SHARE = 0.7
#: Share of articles in the tuning part (the rest is the evaluation part).
TUNE_SHARE = 0.5


def bucket(key: str) -> float:
    """A stable number in [0, 1) from a key: the same split on every machine and run."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) / 0x1_0000_0000


def clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def seed_document(
    seed_id: str, title: str, description: str, examples: Iterable[str], tags: list[str]
) -> dict:
    unique: list[str] = []
    seen: set[str] = set()
    for example in examples:
        key = clean(example).casefold()
        if key and key not in seen:
            seen.add(key)
            unique.append(clean(example))
    return {
        "id": seed_id,
        "title": clean(title)[:200],
        "description": clean(description),
        "examples": unique,
        "languages": ["en"],
        "tags": tags,
        "owner": "eval-thirdparty",
    }


def write_source(out: Path, seeds: list[dict], articles: list[dict], stance_rows: list[dict]) -> None:
    seeds_dir = out / "seeds"
    seeds_dir.mkdir(parents=True, exist_ok=True)
    for old in seeds_dir.glob("*.yaml"):
        old.unlink()
    for seed in seeds:
        text = yaml.safe_dump(seed, allow_unicode=True, sort_keys=False, width=1000)
        (seeds_dir / f"{seed['id']}.yaml").write_text(text, encoding="utf-8")
    parts: dict[str, list[dict]] = {"tune": [], "eval": []}
    for article in sorted(articles, key=lambda row: row["id"]):
        parts["tune" if bucket("part:" + article["id"]) < TUNE_SHARE else "eval"].append(article)
    for name, rows in parts.items():
        with (out / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    with (out / "stance.jsonl").open("w", encoding="utf-8") as handle:
        for row in sorted(stance_rows, key=lambda row: row["id"]):
            row = {**row, "part": "tune" if bucket("part:" + row["id"]) < TUNE_SHARE else "eval"}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts = {name: len(rows) for name, rows in parts.items()}
    labelled = sum(1 for row in articles if row["labels"])
    print(f"{out.name}: {len(seeds)} seeds, {len(articles)} articles ({labelled} labelled), {counts}")


# --- FNC-1 (competition test set: headline/body pairs with stances) ------------------------------


def convert_fnc1(root: Path, out: Path) -> None:
    """Claims are the connected groups of headlines and bodies linked by a related stance.

    A body that agrees with its claim carries it (label); a body that discusses it (reports it
    without taking a side) or disagrees (debunks it) is labelled with nothing. Bodies of claims
    without a seed are unrelated negatives.
    """
    csv.field_size_limit(sys.maxsize)
    with (root / "competition_test_bodies.csv").open(encoding="utf-8") as handle:
        bodies = {row["Body ID"]: row["articleBody"] for row in csv.DictReader(handle)}
    with (root / "competition_test_stances.csv").open(encoding="utf-8") as handle:
        pairs = [row for row in csv.DictReader(handle) if row["Stance"] != "unrelated"]
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        while parent.setdefault(node, node) != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for row in pairs:
        parent[find("h:" + row["Headline"])] = find("b:" + row["Body ID"])
    groups: dict[str, dict[str, list]] = defaultdict(lambda: {"headlines": [], "bodies": []})
    for node in list(parent):
        kind = "headlines" if node.startswith("h:") else "bodies"
        groups[find(node)][kind].append(node[2:])
    stances: dict[str, Counter[str]] = defaultdict(Counter)
    for row in pairs:
        stances[row["Body ID"]][row["Stance"]] += 1
    claims = sorted(
        (sorted(group["headlines"]), sorted(group["bodies"], key=int)) for group in groups.values()
    )
    seeds, articles, stance_rows = [], [], []
    for headlines, body_ids in claims:
        key = hashlib.sha256(headlines[0].encode("utf-8")).hexdigest()[:10]
        seed_id = f"fnc-{key}"
        seeded = bucket("seed:" + seed_id) < SEEDED_SHARE
        if seeded:
            ordered = sorted(headlines, key=lambda text: bucket("example:" + text))
            seeds.append(seed_document(seed_id, ordered[0], ordered[0], ordered[:6], ["fnc-1"]))
        for body_id in body_ids:
            counts = stances[body_id]
            top = max(counts.values())
            # Ties go to "discuss": only a clear stance counts as pushing or debunking.
            stance = next(s for s in ("agree", "disagree", "discuss") if counts[s] == top)
            if len([s for s in counts if counts[s] == top]) > 1:
                stance = "discuss"
            article_id = f"fnc1-body-{body_id}"
            labels = [seed_id] if seeded and stance == "agree" else []
            articles.append(
                {"id": article_id, "title": "", "text": bodies[body_id], "language": "en",
                 "outlet": "fnc-1", "labels": labels}
            )  # fmt: skip
            if seeded:
                stance_rows.append({"id": article_id, "seed": seed_id, "stance": stance})
    write_source(out, seeds, articles, stance_rows)


# --- CLEF CheckThat! 2020 task 2 (tweets paired with fact-checked claims) ------------------------


def _read_tsv(text: str) -> list[list[str]]:
    return [row for row in csv.reader(text.splitlines(), delimiter="\t") if row]


def convert_clef2020(root: Path, out: Path, max_seeds: int = 200) -> None:
    """Each verified claim is a seed (its claim sentence; the fact-check's headline is the title).

    Tweets whose claim has a seed carry that seed; tweets whose claim has none are unrelated
    negatives. At most ``max_seeds`` claims get a seed (chosen by hash) to keep scoring quick.
    """
    with zipfile.ZipFile(root / "data" / "v3.zip") as archive:

        def member(name: str) -> str:
            return archive.read(f"v3.0/{name}").decode("utf-8")

        claims = {row[0]: (row[1], row[2]) for row in _read_tsv(member("verified_claims.docs.tsv"))[1:]}
        tweets: dict[str, str] = {}
        pairs: dict[str, set[str]] = defaultdict(set)
        for part in ("train", "dev"):
            for row in _read_tsv(member(f"{part}/tweets.queries.tsv"))[1:]:
                tweets[f"{part}-{row[0]}"] = row[1]
            for row in _read_tsv(member(f"{part}/tweet-vclaim-pairs.qrels")):
                pairs[f"{part}-{row[0]}"].add(row[2])
    used = sorted({claim for found in pairs.values() for claim in found}, key=int)
    ranked = sorted(used, key=lambda claim: bucket("seed:clef-" + claim))
    seeded = set(ranked[: int(len(ranked) * SEEDED_SHARE)][:max_seeds])
    seeds = []
    for claim in sorted(seeded, key=int):
        sentence, headline = claims[claim]
        seeds.append(seed_document(f"clef-{claim}", headline or sentence, sentence, [sentence], ["clef2020"]))
    articles = []
    for tweet_id, text in sorted(tweets.items()):
        found = pairs.get(tweet_id, set())
        labels = sorted(f"clef-{claim}" for claim in found & seeded)
        # Keep every tweet of a seeded claim and about as many unrelated tweets.
        if labels or bucket("negative:" + tweet_id) < len(seeded) / max(1, len(used) - len(seeded)):
            articles.append(
                {"id": f"clef2020-{tweet_id}", "title": "", "text": clean(text), "language": "en",
                 "outlet": "clef2020", "labels": labels}
            )  # fmt: skip
    write_source(out, seeds, articles, [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fnc1", type=Path, help="clone of github.com/FakeNewsChallenge/fnc-1")
    parser.add_argument(
        "--clef2020", type=Path, help="clone of github.com/sshaar/clef2020-factchecking-task2"
    )
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    if not args.fnc1 and not args.clef2020:
        parser.error("give --fnc1 and/or --clef2020")
    if args.fnc1:
        convert_fnc1(args.fnc1, args.out / "fnc1")
    if args.clef2020:
        convert_clef2020(args.clef2020, args.out / "clef2020")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
