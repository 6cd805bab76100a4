"""Turn two third-party claim-labelled sets into `narrwatch eval cluster` streams (JSON Lines).

Nothing is fetched: point the script at local clones (eval/thirdparty/README.md, "Clustering gold").
The output goes to ``eval/thirdparty/<source>/cluster-{tune,eval}.jsonl``, which git ignores (the
licences do not allow redistribution); the same input always gives the same files.

    python eval/thirdparty/convert_cluster.py --fnc1 PATH/fnc-1 --clef2020 PATH/clef2020-factchecking-task2 \
        --ct2022 PATH/CLEFCheckThat2aSimBa

Gold cluster = the claim an item makes:
- CLEF CheckThat! 2020 task 2: a tweet's cluster is the Snopes-verified claim it is paired with.
  Claims with a single tweet are left out (a clustering gold of singletons rewards doing nothing).
- CLEF CheckThat! 2022 task 2A English, its two test sets (2021 tweets, then 2022 tweets; newer
  than and separate from the 2020 set), as a participant's repository keeps them: same rule as
  CLEF 2020. Evaluation only (``cluster-eval.jsonl``): the thresholds come from the other sets'
  tuning parts.
- FNC-1 (competition test set): a body's cluster is its claim, the connected group of headlines and
  bodies linked by a related stance (agree, discuss or disagree: all of them are about the claim).

Neither source gives outlets or (usable) dates, so both are synthesised from a hash of the item id,
deterministically: one of ``OUTLETS`` outlets and a time within ``SPAN_DAYS`` days from
``START``. The span is shorter than the clusterer's live window (7 days by default), so the window
never separates two items of one claim; the outlet and day then only matter for the emerging rule.
Whole claims go to the tuning or the evaluation part by a hash of the claim id (50/50).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

from convert import _read_tsv, bucket, clean  # type: ignore[import-not-found]

HERE = Path(__file__).resolve().parent
TUNE_SHARE = 0.5
OUTLETS = 12
START = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
SPAN_DAYS = 6


def split_lead(text: str) -> tuple[str, str]:
    """Neither source has titles (the stream needs title and text): the first sentence, at most 200
    characters, becomes the title and the rest the text; a one-sentence item is both."""
    match = re.match(r"(.{20,200}?[.!?])\s+(.+)", text)
    if match is None:
        return text[:200], text
    return match.group(1), match.group(2)


def synthetic_row(item_id: str, text: str, cluster: str) -> dict[str, str]:
    """A stream row with an outlet and a publication time drawn from hashes of the id."""
    title, rest = split_lead(text)
    seconds = int(bucket("published:" + item_id) * SPAN_DAYS * 86400)
    outlet = int(bucket("outlet:" + item_id) * OUTLETS)
    return {
        "id": item_id,
        "title": title,
        "text": rest,
        "language": "en",
        "published": (START + dt.timedelta(seconds=seconds)).isoformat(),
        "outlet": f"outlet-{outlet:02d}",
        "cluster": cluster,
    }


def write_parts(out: Path, rows: list[dict[str, str]]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    parts: dict[str, list[dict[str, str]]] = {"tune": [], "eval": []}
    for row in sorted(rows, key=lambda r: r["id"]):
        parts["tune" if bucket("cluster-part:" + row["cluster"]) < TUNE_SHARE else "eval"].append(row)
    for name, part in parts.items():
        write_rows(out / f"cluster-{name}.jsonl", part)


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    sizes = Counter(row["cluster"] for row in rows)
    print(f"{path.parent.name}/{path.name}: {len(rows)} items, {len(sizes)} claims")


def convert_clef2020(root: Path, out: Path) -> None:
    import zipfile

    with zipfile.ZipFile(root / "data" / "v3.zip") as archive:
        tweets: dict[str, str] = {}
        claims: dict[str, set[str]] = defaultdict(set)
        for part in ("train", "dev"):
            for row in _read_tsv(archive.read(f"v3.0/{part}/tweets.queries.tsv").decode("utf-8"))[1:]:
                tweets[f"{part}-{row[0]}"] = row[1]
            for row in _read_tsv(archive.read(f"v3.0/{part}/tweet-vclaim-pairs.qrels").decode("utf-8")):
                claims[f"{part}-{row[0]}"].add(row[2])
    # a tweet paired with several claims goes with the smallest claim id
    claim_of = {tweet: min(found, key=int) for tweet, found in claims.items() if tweet in tweets}
    sizes = Counter(claim_of.values())
    rows = [
        synthetic_row(f"clef2020-{tweet}", clean(tweets[tweet]), f"clef-{claim}")
        for tweet, claim in claim_of.items()
        if sizes[claim] >= 2
    ]
    write_parts(out, rows)


def convert_ct2022(root: Path, out: Path) -> None:
    sets = {
        "devtest": ("original_twitter_data/test_data/CT2022-Task2A-EN-Dev-Test_Queries.tsv",
                    "original_twitter_data/test_data/CT2022-Task2A-EN-Dev-Test_QRELs.tsv"),
        "test": ("TEST/test_TEST.tsv", "TEST/CT2022-Task2A-EN-Test_Qrels_gold.tsv"),
    }  # fmt: skip
    tweets: dict[str, str] = {}
    claim_of: dict[str, str] = {}
    for name, (queries, qrels) in sets.items():
        # tweet ids restart in each set, so the set's name is part of the id
        for row in _read_tsv((root / "data" / queries).read_text(encoding="utf-8")):
            tweets[f"{name}-{row[0]}"] = row[1]
        for row in _read_tsv((root / "data" / qrels).read_text(encoding="utf-8")):
            claim_of.setdefault(f"{name}-{row[0]}", row[2])
    sizes = Counter(claim for tweet, claim in claim_of.items() if tweet in tweets)
    rows = [
        synthetic_row(f"ct2022-{tweet}", clean(tweets[tweet]), f"ct-{claim}")
        for tweet, claim in claim_of.items()
        if tweet in tweets and sizes[claim] >= 2
    ]
    out.mkdir(parents=True, exist_ok=True)
    write_rows(out / "cluster-eval.jsonl", sorted(rows, key=lambda r: r["id"]))


def convert_fnc1(root: Path, out: Path) -> None:
    import csv
    import sys

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
    headlines: dict[str, list[str]] = defaultdict(list)
    for node in list(parent):
        if node.startswith("h:"):
            headlines[find(node)].append(node[2:])
    # the claim id is a hash of its first headline, as in convert.py
    import hashlib

    claim_id = {
        root_node: "fnc-" + hashlib.sha256(sorted(heads)[0].encode("utf-8")).hexdigest()[:10]
        for root_node, heads in headlines.items()
    }
    rows = [
        synthetic_row(f"fnc1-body-{body}", clean(text), claim_id[find("b:" + body)])
        for body, text in bodies.items()
        if "b:" + body in parent
    ]
    write_parts(out, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fnc1", type=Path, help="clone of github.com/FakeNewsChallenge/fnc-1")
    parser.add_argument(
        "--clef2020", type=Path, help="clone of github.com/sshaar/clef2020-factchecking-task2"
    )
    parser.add_argument(
        "--ct2022", type=Path, help="clone of github.com/Alihoe/CLEFCheckThat2aSimBa (CheckThat! 2022 2A)"
    )
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    if not (args.fnc1 or args.clef2020 or args.ct2022):
        parser.error("give --fnc1, --clef2020 and/or --ct2022")
    if args.clef2020:
        convert_clef2020(args.clef2020, args.out / "clef2020")
    if args.ct2022:
        convert_ct2022(args.ct2022, args.out / "ct2022")
    if args.fnc1:
        convert_fnc1(args.fnc1, args.out / "fnc1")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
