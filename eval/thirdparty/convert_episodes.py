"""Turn the Emergent rumour-tracking set into an `eval rising` stream with one seed per claim.

Nothing is fetched here: point the script at a local copy of ``url-versions-2015-06-14-clean.csv``
(Ferreira & Vlachos 2016, "Emergent"; see eval/thirdparty/README.md for where it is kept). Its
licence is not stated, so the output goes to ``eval/thirdparty/emergent/`` which git ignores.

    python eval/thirdparty/convert_episodes.py --emergent PATH/url-versions-2015-06-14-clean.csv

Writes ``seeds/*.yaml`` (one per claim, made only from the claim's own headline), and
``stream.jsonl`` (one row per tracked article) for ``narrwatch eval rising`` and
``bench/rising_episodes.py``.

What the source gives and what it does not:

- Each row is a news article's headline, the claim it was tracked under and the headline's stance
  towards the claim (for / against / observing), labelled by Emergent's journalists.
- No publication date is given. The article id is a version-1 UUID, which encodes the moment the
  article was entered into Emergent's database; that moment is used as ``published``. Emergent
  tracked rumours as they spread, but many articles of a claim were entered in one sitting, so a
  claim's items bunch on few days.
- No outlet is given (this copy lacks the article URLs), so each article counts as its own outlet:
  distinct outlets equal articles here.
- Labels: an article carries its claim's seed when its headline is *for* the claim or *observing*
  (reports it); *against* (debunking) articles stay in the stream with no label.
- ``--seed-share``: the replay's cost grows with seeds x stored articles x days, so a share of the
  claims (chosen by a hash of the claim id, never by what the detector does) can get a seed; the
  articles of the other claims stay in the stream, unlabelled, as unrelated negatives.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
import uuid
from collections import defaultdict
from pathlib import Path

import yaml
from convert import bucket, clean, seed_document  # type: ignore[import-not-found]

HERE = Path(__file__).resolve().parent
CARRYING_STANCES = frozenset({"for", "observing"})
UUID_EPOCH = dt.datetime(1582, 10, 15, tzinfo=dt.UTC)


def uuid1_time(value: str) -> dt.datetime:
    """The creation time encoded in a version-1 UUID (100 ns steps since the Gregorian reform)."""
    parsed = uuid.UUID(value)
    if parsed.version != 1:
        raise ValueError(f"{value} is not a version-1 UUID")
    return UUID_EPOCH + dt.timedelta(microseconds=parsed.time // 10)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    needed = {"claimHeadline", "articleHeadline", "articleHeadlineStance", "articleId", "claimId"}
    if not rows or not needed <= set(rows[0]):
        raise SystemExit(f"{path}: expected the columns {sorted(needed)}")
    return rows


def convert_emergent(path: Path, out: Path, seed_share: float = 1.0) -> None:
    rows = read_rows(path)
    claims: dict[str, str] = {}
    articles: list[dict] = []
    stances: dict[str, int] = defaultdict(int)
    for row in rows:
        seed_id = f"emergent-{row['claimId'][:8]}"
        seeded = bucket("episode-seed:" + seed_id) < seed_share
        if seeded:
            claims.setdefault(seed_id, clean(row["claimHeadline"]))
        headline = clean(row["articleHeadline"])
        stance = row["articleHeadlineStance"]
        stances[stance] += 1
        articles.append(
            {
                "id": f"emergent-{row['articleId']}",
                "title": headline,
                "text": headline,  # the source holds headlines only; the stream needs a text
                "language": "en",
                "published": uuid1_time(row["articleId"]).isoformat(),
                "outlet": f"emergent-article-{row['articleId']}",
                "labels": [seed_id] if seeded and stance in CARRYING_STANCES else [],
            }
        )
    seeds_dir = out / "seeds"
    seeds_dir.mkdir(parents=True, exist_ok=True)
    for old in seeds_dir.glob("*.yaml"):
        old.unlink()
    for seed_id, claim in sorted(claims.items()):
        seed = seed_document(seed_id, claim, claim, [claim], ["emergent"])
        text = yaml.safe_dump(seed, allow_unicode=True, sort_keys=False, width=1000)
        (seeds_dir / f"{seed_id}.yaml").write_text(text, encoding="utf-8")
    with (out / "stream.jsonl").open("w", encoding="utf-8") as handle:
        for article in sorted(articles, key=lambda a: (a["published"], a["id"])):
            handle.write(json.dumps(article, ensure_ascii=False) + "\n")
    labelled = sum(1 for a in articles if a["labels"])
    first = min(a["published"] for a in articles)[:10]
    last = max(a["published"] for a in articles)[:10]
    print(
        f"{out.name}: {len(claims)} seeds, {len(articles)} articles ({labelled} labelled), "
        f"stances {dict(sorted(stances.items()))}, {first} .. {last}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emergent", type=Path, required=True, help="url-versions-2015-06-14-clean.csv")
    parser.add_argument("--out", type=Path, default=HERE / "emergent")
    parser.add_argument("--seed-share", type=float, default=1.0, help="share of claims that get a seed")
    args = parser.parse_args(argv)
    convert_emergent(args.emergent, args.out, args.seed_share)
    return 0


if __name__ == "__main__":
    sys.exit(main())
