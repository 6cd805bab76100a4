"""Parallel unrelated news for bench/match_languages.py: documents, the units a seed scores, intervals.

Two third-party parallel sets, each a list of documents whose sentences exist in all nine languages:
NTREX-128 (bench/data/ntrex/, WMT 2019 news, 123 documents; those that chose narrwatch's bundled
background are left out) and FLORES-200 dev and devtest (bench/data/flores/, Wikinews, Wikivoyage
and Wikibooks, 562 documents of 1-10 consecutive sentences; Serbian Latin transliterated from the
Cyrillic). A document belongs wholly to one of two halves (by a hash of its id), so a measured
unit never shares a document with the background it is scored against.

Units: a ``sentence`` is a one-passage article; an ``article`` is a document's sentences joined and
cut into passages by narrwatch's own splitter (``narrwatch.embeddings.passages.split_passages``),
scored as the match step scores a stored article: by its best passage.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from narrwatch.domain.text import transliterate_serbian  # noqa: E402
from narrwatch.ports import Encoder  # noqa: E402

NTREX = ROOT / "bench" / "data" / "ntrex" / "ntrex128.tsv.gz"
FLORES = ROOT / "bench" / "data" / "flores" / "flores200.tsv.gz"
LANGUAGES = ["en", "sr-Cyrl", "sr-Latn", "hr", "bs", "sq", "mk", "ru", "bg"]
UnitKind = Literal["sentence", "article"]
#: The factor of the acceptance line: a language's rate within [1/1.5, 1.5] times the English rate.
FACTOR = 1.5
#: Passes per language that make a 95 % interval of a rate ratio as narrow as [1/1.5, 1.5] when the
#: two rates are equal and counted independently (log-ratio standard error sqrt(2/n)): 2 (1.96 /
#: ln 1.5)^2. Parallel units are positively correlated, so paired data needs somewhat fewer.
PASSES_FOR_FACTOR = math.ceil(2 * (1.96 / math.log(FACTOR)) ** 2)


def _hash(key: str) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)


def in_bundle(document: str) -> bool:
    """The rule that chose the bundled background's NTREX documents (see its README)."""
    return _hash(f"bundle:{document}") % 10 == 0


@dataclass(frozen=True)
class Document:
    source: str
    key: str
    sentences: Mapping[str, tuple[str, ...]]  # language -> the document's sentences, aligned

    @property
    def half(self) -> int:
        return _hash(f"{self.source}:{self.key}") % 2


def _grouped(source: str, rows: Iterable[Mapping[str, str]]) -> list[Document]:
    """Rows (one sentence each, a document's rows in order) grouped into documents."""
    by_key: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        sentences = by_key.setdefault(row["document"], {lang: [] for lang in LANGUAGES})
        for lang in LANGUAGES:
            sentences[lang].append(row[lang])
    return [
        Document(source, key, {lang: tuple(texts) for lang, texts in sentences.items()})
        for key, sentences in by_key.items()
    ]


def _rows(path: Path) -> list[dict[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def load_documents(sources: Iterable[str] = ("ntrex", "flores")) -> list[Document]:
    documents: list[Document] = []
    if "ntrex" in sources:
        documents += _grouped("ntrex", (row for row in _rows(NTREX) if not in_bundle(row["document"])))
    if "flores" in sources:
        rows = _rows(FLORES)
        for row in rows:
            row["sr-Latn"] = transliterate_serbian(row["sr-Cyrl"])
        documents += _grouped("flores", rows)
    return documents


@dataclass(frozen=True)
class Unit:
    document: int  # index into the document list: its half, and the bootstrap's cluster
    passages: Mapping[str, tuple[str, ...]]  # language -> the unit's passage texts


def make_units(
    documents: list[Document], kind: UnitKind, split: Callable[[str], list[str]] | None = None
) -> list[Unit]:
    """Sentences, or articles cut into passages by ``split`` (a document's joined text -> passages)."""
    if kind == "sentence":
        return [
            Unit(index, {lang: (doc.sentences[lang][line],) for lang in LANGUAGES})
            for index, doc in enumerate(documents)
            for line in range(len(doc.sentences["en"]))
        ]
    if split is None:
        raise ValueError("articles need a passage splitter")
    return [
        Unit(index, {lang: tuple(split(" ".join(doc.sentences[lang]))) for lang in LANGUAGES})
        for index, doc in enumerate(documents)
    ]


def encoded(encoder: Encoder, key: str, units: list[Unit], cache_dir: Path) -> dict[str, list[np.ndarray]]:
    """Every unit's passage vectors per language; kept in ``cache_dir`` per model, backend and text.

    ``key`` identifies the encoder (model and backend). Encoding all of it takes tens of minutes on
    two cores, so the vectors are kept; a change of text or encoder makes a new file.
    """
    texts = {lang: [text for unit in units for text in unit.passages[lang]] for lang in LANGUAGES}
    digest = hashlib.sha256(repr((key, sorted(texts.items()))).encode()).hexdigest()[:16]
    path = cache_dir / f"language-news-{digest}.npz"
    if path.exists():
        with np.load(path) as stored:
            flat = {lang: stored[lang] for lang in LANGUAGES}
    else:
        flat = {}
        for lang in LANGUAGES:
            print(f"encoding {len(texts[lang])} {lang} passages", file=sys.stderr, flush=True)
            flat[lang] = np.asarray(encoder.encode_passages(texts[lang]), dtype=np.float32)
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.savez(path, **flat)  # type: ignore[arg-type]
    vectors: dict[str, list[np.ndarray]] = {}
    for lang in LANGUAGES:
        ends = np.cumsum([len(unit.passages[lang]) for unit in units])
        vectors[lang] = np.split(flat[lang], ends[:-1])
    return vectors


def document_counts(passes: np.ndarray, unit_documents: np.ndarray, n_documents: int) -> np.ndarray:
    """Passing units per document and seed: ``passes`` (units x seeds, bool) summed by document."""
    counts = np.zeros((n_documents, passes.shape[1]))
    np.add.at(counts, unit_documents, passes.astype(float))
    return counts


def bootstrap_weights(n_documents: int, draws: int = 4000, seed: int = 12) -> np.ndarray:
    """How often each document is drawn, per bootstrap draw (draws x documents): documents, not
    units, are resampled, because a document's sentences are about one topic and pass together."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_documents, np.full(n_documents, 1.0 / n_documents), size=draws).astype(float)


def exact_ratio_interval(passes: int, english: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of a rate ratio from two counts over the same number of units: given
    their sum, the language's count is binomial with p = ratio / (1 + ratio). Right for small counts,
    where the bootstrap collapses (one pass against none resamples to [inf, inf])."""
    from scipy.stats import beta

    total = passes + english
    if total == 0:
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2
    low = float(beta.ppf(tail, passes, english + 1)) if passes else 0.0
    high = float(beta.ppf(1.0 - tail, passes + 1, english)) if english else 1.0
    return low / (1.0 - low), (high / (1.0 - high) if high < 1.0 else float("inf"))


#: Fewer passes than this in a language or in English: the bootstrap's percentile interval of a ratio
#: is unreliable (one pass against none resamples to [inf, inf]) and the exact one is used instead.
BOOTSTRAP_MIN_PASSES = 10


def ratio_interval(
    counts: np.ndarray, english: np.ndarray, weights: np.ndarray, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """95 % interval, per seed, of (passes in a language) / (passes in English): the percentile
    interval over the document bootstrap, which keeps both the pairing of parallel units and the
    clustering of a document's sentences; with fewer than :data:`BOOTSTRAP_MIN_PASSES` on either
    side, :func:`exact_ratio_interval` (counts taken as independent, so it is wider)."""
    numerator = weights @ counts
    denominator = weights @ english
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(denominator > 0, numerator / denominator, np.where(numerator > 0, np.inf, np.nan))
    tail = (1.0 - level) / 2
    low = np.full(counts.shape[1], np.nan)
    high = np.full(counts.shape[1], np.nan)
    for seed in range(counts.shape[1]):
        passes, reference = int(counts[:, seed].sum()), int(english[:, seed].sum())
        if min(passes, reference) < BOOTSTRAP_MIN_PASSES:
            low[seed], high[seed] = exact_ratio_interval(passes, reference, level)
            continue
        column = ratios[:, seed]
        low[seed] = np.quantile(column, tail, method="lower")
        high[seed] = np.quantile(column, 1.0 - tail, method="higher")
    return low, high


def units_needed(rate: float) -> int | None:
    """Units per language for :data:`PASSES_FOR_FACTOR` expected passes at ``rate``; None at rate 0."""
    return math.ceil(PASSES_FOR_FACTOR / rate) if rate > 0 else None


def verdict(low: float, high: float) -> str:
    """Whether the interval shows the ratio within the factor, outside it, or cannot tell."""
    if np.isnan(low):
        return "no passes"
    if low >= 1 / FACTOR and high <= FACTOR:
        return "within"
    if low > FACTOR or high < 1 / FACTOR:
        return "OUTSIDE"
    return "unsure"
