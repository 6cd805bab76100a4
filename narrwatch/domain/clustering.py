"""Online clustering of unmatched articles with stable ids, cluster labels and clustering scores.

Pure numpy. The clusterer sees articles one at a time in publication order (the caller sorts by
``(published_at, article_id)``) and its whole state is a list of :class:`ClusterState`, which the
caller persists exactly (centroids are float64 and round-trip through JSON unchanged). Clustering a
stream in one call or day by day, reloading the state between days, therefore gives the same
partition with the same ids.

Similarity to a cluster is the article's *average cosine to the cluster's members*, which is the dot
product with the running mean of the members' unit vectors (group-average linkage, online). The
cosine to the normalised centroid would be the obvious choice but it snowballs: the centre of a loose
cluster whose members agree at 0.3 sits at cosine ~0.55 from any article on the same broad subject,
so one cluster swallows a whole news beat (seen on the demo stream: 28 of 161 articles).

Rules:
- an article joins the most similar *live* cluster when its average cosine to the members reaches
  the join threshold (live = gained a member within the window before the article's own time);
  equal similarities go to the smaller (older) id; otherwise it founds a new cluster;
- after a join, the grown cluster is compared with the other live clusters: when the average cosine
  between their members (the dot product of the two means) reaches the merge threshold they have
  converged on one story and the younger is absorbed by the older (smaller id), which keeps its id.
  Checks repeat until nothing converges.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ClusterThresholds:
    join: float
    merge: float

    def __post_init__(self) -> None:
        if not -1.0 <= self.join <= 1.0:
            raise ValueError(f"cluster join threshold {self.join} is not a cosine in [-1, 1]")
        if not self.join <= self.merge <= 1.0:
            raise ValueError(
                f"cluster merge threshold {self.merge} must lie between the join threshold "
                f"{self.join} and 1: centroids are smoother than single articles"
            )


#: Per-model defaults, keyed by the model's base name in lower case, for ``claim_vector`` (the lead
#: passage). multilingual-e5-small (the default; its cosines are compressed towards 1): chosen on the
#: TUNING parts of the third-party claim gold (bench/cluster_thirdparty.py --sweep: CLEF CheckThat!
#: 2020 tweets grouped by their Snopes claim, FNC-1 bodies grouped by their Emergent claim), joins
#: 0.80-0.93 with merging at the join value or above: 0.87/0.87 has the best mean B-cubed F1 of the
#: two (CLEF 0.929, FNC-1 0.894; 0.86: 0.927/0.889; 0.88: 0.902/0.904); merging above the join
#: threshold never helped on both. all-MiniLM-L6-v2 (English only), same sweep: 0.52/0.52 (CLEF 0.930,
#: FNC-1 0.896; 0.50: 0.938/0.887; 0.55, the former value tuned on whole-article means of the
#: project-written stories: 0.906/0.889). Other models have no default on purpose (the English
#: MiniLM puts unrelated Serbian texts at 0.67-0.79, so a threshold means nothing across models):
#: they must set ``cluster_threshold``, chosen with ``narrwatch eval cluster``.
MODEL_THRESHOLDS: dict[str, ClusterThresholds] = {
    "all-minilm-l6-v2": ClusterThresholds(join=0.52, merge=0.52),
    "multilingual-e5-small": ClusterThresholds(join=0.87, merge=0.87),
}


def model_key(model_name: str) -> str:
    """``bundled:all-MiniLM-L6-v2``, ``sentence-transformers/all-MiniLM-L6-v2`` or a path -> base name."""
    name = model_name.split(":", 1)[1] if model_name.startswith("bundled:") else model_name
    return re.split(r"[\\/]", name.rstrip("/\\"))[-1].lower()


def thresholds_for(model_name: str, override: float | None) -> ClusterThresholds | None:
    """The model's tuned thresholds, or the override for both joining and merging.

    Merging at the join threshold reads: two clusters have converged when the centre of one is as
    close to the other as an article must be to join it.
    """
    if override is not None:
        return ClusterThresholds(join=override, merge=override)
    return MODEL_THRESHOLDS.get(model_key(model_name))


def claim_vector(passages: npt.ArrayLike) -> FloatArray | None:
    """An article's vector for clustering from its passage vectors (rows, in passage order): the
    first passage, which holds the title and the lead, normalised; None when it has no usable one.

    The lead states the article's claim; later passages add background, quotes and context that
    pull articles on one beat together. On the third-party claim gold of bench/cluster_thirdparty.py
    (tuning parts) the lead beat the mean of all passages on FNC-1 news bodies (best B-cubed F1 0.913
    against 0.897, and 0.894 against 0.824 at the shared threshold 0.87); CLEF 2020 tweets have one
    passage, so nothing changes there.
    """
    rows = np.asarray(passages, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[0] == 0:
        return None
    lead = rows[0]
    norm = float(np.linalg.norm(lead))
    return lead / norm if norm > 0 and math.isfinite(norm) else None


@dataclass
class ClusterState:
    """What the clusterer needs to resume: the exact running mean of member unit vectors."""

    id: int
    centroid: FloatArray  # mean of the members' unit vectors, not normalised
    size: int
    first_seen: dt.datetime
    last_seen: dt.datetime

    def direction(self) -> FloatArray:
        """The normalised centroid: what is nearest the cluster's centre (representatives, examples)."""
        norm = float(np.linalg.norm(self.centroid))
        return self.centroid / norm if norm > 0 else self.centroid


@dataclass(frozen=True)
class Assignment:
    article_id: int
    cluster_id: int
    similarity: float  # average cosine to the members before the article joined; 1.0 for a founder
    founded: bool


@dataclass(frozen=True)
class MergeEvent:
    absorbed: ClusterState  # the younger cluster as it was when absorbed
    into_id: int
    similarity: float
    at: dt.datetime  # publication time of the article whose arrival made the clusters converge

    @property
    def absorbed_id(self) -> int:
        return self.absorbed.id


class OnlineClusterer:
    """Incremental centroid clustering; see the module docstring for the rules.

    Member means and last-seen times of all clusters sit in row-aligned arrays (rows in id order,
    since new ids only grow) so that finding the nearest live cluster is one matrix-vector product
    however many clusters the window holds. ``add_many`` goes further: the similarities of a block of
    articles to the clusters that the block has not changed come from one matrix product, and only
    the clusters it changed or founded are scored article by article.

    Merge checks use a bound once a cluster has been checked in full. After every check, no live
    cluster is at ``merge`` or more from the checked one; each later change of either side checks
    the pair again, and a new cluster is founded below ``join`` <= ``merge`` from every live one. So
    when an article joins a checked cluster, the new mean is ``((n - 1) * old + article) / n`` and
    only a cluster at ``merge`` or more from the article itself can reach ``merge`` from the new mean:
    those few are scored, not the whole window. Clusters loaded from storage (and every cluster when
    articles arrive out of time order, which can revive one that had left the window) are checked
    in full first.
    """

    #: Articles whose similarities to the unchanged clusters ``add_many`` takes from one product.
    BLOCK = 256
    #: Slack of the merge bound against rounding (cosines are compared with thresholds two decimals wide).
    BOUND_SLACK = 1e-9

    def __init__(
        self,
        states: Iterable[ClusterState],
        *,
        thresholds: ClusterThresholds,
        window: dt.timedelta,
        next_id: int,
    ) -> None:
        self.thresholds = thresholds
        self.window = window
        self.clusters: dict[int, ClusterState] = {}
        self.merges: list[MergeEvent] = []
        self.touched: set[int] = set()  # clusters created, grown or absorbing in this run
        self._row: dict[int, int] = {}
        self._ids: list[int] = []
        self._means = np.zeros((0, 0))
        self._last_seen = np.zeros(0)
        self._alive = np.zeros(0, dtype=bool)
        self._checked: set[int] = set()  # clusters the merge bound holds for (see the class docstring)
        self._latest: dt.datetime | None = None
        self._block_rows = 0  # rows scored by the current block's product (0: no block)
        self._block_changed: list[int] = []  # rows among those whose mean changed since
        for state in sorted(states, key=lambda s: s.id):
            self._append(state)
        if self._ids and next_id <= self._ids[-1]:
            raise ValueError(f"next cluster id {next_id} collides with stored cluster {self._ids[-1]}")
        self.next_id = next_id

    def _append(self, state: ClusterState) -> None:
        mean = np.asarray(state.centroid, dtype=np.float64)
        n = len(self._ids)
        if n == self._means.shape[0]:
            capacity = max(64, 2 * n)
            grown = np.zeros((capacity, mean.shape[0]))
            if n:
                grown[:n] = self._means[:n]
            self._means = grown
            self._last_seen = np.resize(self._last_seen, capacity)
            self._alive = np.resize(self._alive, capacity)
        elif mean.shape[0] != self._means.shape[1]:
            raise ValueError(f"cluster {state.id}: dimension {mean.shape[0]} differs from the others")
        self._means[n] = mean
        self._last_seen[n] = state.last_seen.timestamp()
        self._alive[n] = True
        self._row[state.id] = n
        self._ids.append(state.id)
        self.clusters[state.id] = state

    def _refresh(self, state: ClusterState) -> None:
        row = self._row[state.id]
        self._means[row] = state.centroid
        self._last_seen[row] = state.last_seen.timestamp()
        if row < self._block_rows:
            self._block_changed.append(row)

    def _live(self, at: dt.datetime, exclude: int | None) -> npt.NDArray[np.bool_]:
        n = len(self._ids)
        live = self._alive[:n] & (self._last_seen[:n] >= (at - self.window).timestamp())
        if exclude is not None:
            live[self._row[exclude]] = False
        return live

    def _best(self, sims: FloatArray, live: npt.NDArray[np.bool_]) -> tuple[int, float] | None:
        if not live.any():
            return None
        masked = np.where(live, sims, -np.inf)
        best = int(np.argmax(masked))  # first maximum = smallest id, rows being in id order
        return self._ids[best], float(masked[best])

    def _nearest(
        self, vector: FloatArray, at: dt.datetime, exclude: int | None = None
    ) -> tuple[int, float] | None:
        n = len(self._ids)
        if n == 0:
            return None
        # all rows, then masked: gathering the live rows first copied the whole matrix every call
        return self._best(self._means[:n] @ vector, self._live(at, exclude))

    @staticmethod
    def _unit(article_id: int, vector: npt.ArrayLike) -> FloatArray:
        unit = np.asarray(vector, dtype=np.float64)
        norm = float(np.linalg.norm(unit)) if unit.ndim == 1 else 0.0
        if norm == 0 or not math.isfinite(norm):
            raise ValueError(f"article {article_id}: vector must be a finite non-zero 1-d array")
        return unit / norm

    def add(self, article_id: int, published_at: dt.datetime, vector: npt.ArrayLike) -> Assignment:
        unit = self._unit(article_id, vector)
        return self._add(article_id, published_at, unit, self._scores(unit[None, :], len(self._ids))[0])

    def add_many(self, items: Sequence[tuple[int, dt.datetime, npt.ArrayLike]]) -> list[Assignment]:
        """``add`` for each ``(article_id, published_at, vector)`` in order, with the same results."""
        assignments: list[Assignment] = []
        for first in range(0, len(items), self.BLOCK):
            block = items[first : first + self.BLOCK]
            units = np.stack([self._unit(article_id, vector) for article_id, _, vector in block])
            self._block_rows = len(self._ids)
            self._block_changed = []
            product = self._scores(units, self._block_rows)
            try:
                for (article_id, published_at, _), unit, unchanged in zip(block, units, product, strict=True):
                    n = len(self._ids)
                    sims = np.empty(n)
                    sims[: self._block_rows] = unchanged
                    changed = np.unique(np.asarray(self._block_changed, dtype=np.intp))
                    if changed.size:
                        sims[changed] = self._means[changed] @ unit
                    sims[self._block_rows :] = self._scores(unit[None, :], n, self._block_rows)[0]
                    assignments.append(self._add(article_id, published_at, unit, sims))
            finally:
                self._block_rows = 0
                self._block_changed = []
        return assignments

    def _scores(self, units: FloatArray, stop: int, start: int = 0) -> FloatArray:
        """Dot products of ``units`` (rows) with the means of rows ``start:stop``."""
        if stop <= start:
            return np.zeros((units.shape[0], 0))
        return units @ self._means[start:stop].T

    def _add(
        self, article_id: int, published_at: dt.datetime, unit: FloatArray, sims: FloatArray
    ) -> Assignment:
        """Place ``unit``; ``sims`` are its dot products with every row's current mean."""
        if self._latest is not None and published_at < self._latest:
            self._checked.clear()  # an earlier time can revive a cluster the checks saw outside the window
        self._latest = published_at if self._latest is None else max(self._latest, published_at)
        nearest = self._best(sims, self._live(published_at, None)) if self._ids else None
        if nearest is None or nearest[1] < self.thresholds.join:
            cid = self.next_id
            self.next_id += 1
            self._append(ClusterState(cid, unit.copy(), 1, published_at, published_at))
            self.touched.add(cid)
            self._checked.add(cid)  # below join <= merge from every live cluster
            return Assignment(article_id, cid, 1.0, True)
        cid, similarity = nearest
        cluster = self.clusters[cid]
        cluster.size += 1
        cluster.centroid = cluster.centroid + (unit - cluster.centroid) / cluster.size
        cluster.first_seen = min(cluster.first_seen, published_at)
        cluster.last_seen = max(cluster.last_seen, published_at)
        self._refresh(cluster)
        self.touched.add(cid)
        self._merge_converged(cid, published_at, sims)
        return Assignment(article_id, cid, similarity, False)

    def _bounded_nearest(self, cid: int, at: dt.datetime, unit_sims: FloatArray) -> tuple[int, float] | None:
        """``_nearest`` of a checked cluster's new mean, scoring only the clusters the bound allows."""
        live = self._live(at, cid)
        rows = np.flatnonzero(live & (unit_sims >= self.thresholds.merge - self.BOUND_SLACK))
        if rows.size == 0:
            return None
        sims = self._means[rows] @ self.clusters[cid].centroid
        best = int(np.argmax(sims))
        return self._ids[int(rows[best])], float(sims[best])

    def _merge_converged(self, cid: int, at: dt.datetime, unit_sims: FloatArray) -> None:
        bounded = cid in self._checked
        while True:
            if bounded:
                nearest = self._bounded_nearest(cid, at, unit_sims)
            else:
                nearest = self._nearest(self.clusters[cid].centroid, at, exclude=cid)
            if nearest is None or nearest[1] < self.thresholds.merge:
                self._checked.add(cid)
                return
            bounded = False  # a merged mean is not one article away from a checked one
            other, similarity = nearest
            keep, absorb = min(cid, other), max(cid, other)
            kept, gone = self.clusters[keep], self.clusters.pop(absorb)
            total = kept.size + gone.size
            kept.centroid = (kept.centroid * kept.size + gone.centroid * gone.size) / total
            kept.size = total
            kept.first_seen = min(kept.first_seen, gone.first_seen)
            kept.last_seen = max(kept.last_seen, gone.last_seen)
            self._alive[self._row[absorb]] = False
            self._refresh(kept)
            self._checked.discard(absorb)
            self.touched.discard(absorb)
            self.touched.add(keep)
            self.merges.append(MergeEvent(gone, keep, similarity, at))
            cid = keep


def resolve(cluster_id: int, merged_into: Mapping[int, int]) -> int:
    """Follow merges to the surviving cluster."""
    seen = {cluster_id}
    while cluster_id in merged_into:
        cluster_id = merged_into[cluster_id]
        if cluster_id in seen:
            raise ValueError(f"merge cycle through cluster {cluster_id}")
        seen.add(cluster_id)
    return cluster_id


#: Growth factor of the size ladder on which a cluster's label and representative are worked out again.
DESCRIBE_GROWTH = 1.25


def needs_description(size_before: int, size_after: int, growth: float = DESCRIBE_GROWTH) -> bool:
    """Whether a cluster that grew from ``size_before`` members (0: founded now) to ``size_after`` is
    labelled again: when its size passed a rung of the ladder 1, ``growth``, ``growth**2`` ...

    Describing reads every member, so describing a large cluster each day it gains a member would cost
    its whole history daily; on the ladder a cluster is described about once per quarter of growth,
    each member is read a bounded number of times on average, and small clusters still at nearly
    every change. The label lags the members by less than ``growth``."""
    if size_before <= 0:
        return True
    if size_after <= size_before:
        return False
    return _rung(size_after, growth) > _rung(size_before, growth)


def _rung(size: int, growth: float) -> int:
    return int(math.floor(math.log(size) / math.log(growth) + 1e-9))


# --- scores --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float

    def as_dict(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1}


def _f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def _check_lengths(predicted: Sequence[Hashable], gold: Sequence[Hashable]) -> None:
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predicted labels for {len(gold)} gold labels")


def bcubed(predicted: Sequence[Hashable], gold: Sequence[Hashable]) -> PRF:
    """B-cubed precision and recall (Bagga & Baldwin): per item, averaged over items."""
    _check_lengths(predicted, gold)
    if not gold:
        return PRF(1.0, 1.0, 1.0)
    both = Counter(zip(predicted, gold, strict=True))
    pred_sizes, gold_sizes = Counter(predicted), Counter(gold)
    precision = sum(n * n / pred_sizes[p] for (p, _), n in both.items()) / len(gold)
    recall = sum(n * n / gold_sizes[g] for (_, g), n in both.items()) / len(gold)
    return PRF(precision, recall, _f1(precision, recall))


def pairwise(predicted: Sequence[Hashable], gold: Sequence[Hashable]) -> PRF:
    """Precision and recall over pairs of items put together; no pairs on a side scores 1 there."""
    _check_lengths(predicted, gold)

    def pairs(sizes: Iterable[int]) -> int:
        return sum(n * (n - 1) // 2 for n in sizes)

    together_both = pairs(Counter(zip(predicted, gold, strict=True)).values())
    together_pred = pairs(Counter(predicted).values())
    together_gold = pairs(Counter(gold).values())
    precision = together_both / together_pred if together_pred else 1.0
    recall = together_both / together_gold if together_gold else 1.0
    return PRF(precision, recall, _f1(precision, recall))


# --- labels --------------------------------------------------------------------------------------

_CYRILLIC_TO_LATIN = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "ђ": "đ", "е": "e", "ж": "ž", "з": "z",
    "и": "i", "ј": "j", "к": "k", "л": "l", "љ": "lj", "м": "m", "н": "n", "њ": "nj", "о": "o",
    "п": "p", "р": "r", "с": "s", "т": "t", "ћ": "ć", "у": "u", "ф": "f", "х": "h", "ц": "c",
    "ч": "č", "џ": "dž", "ш": "š", "ѓ": "gj", "ќ": "kj", "ѕ": "dz",
}  # fmt: skip

_ENGLISH_STOPWORDS = """
a about above after again against all also although am an and another any are around as at be
because been before being below between both but by can could did do does doing down during each
either even ever every few for from further had has have having he her here hers herself him himself
his how however if in into is it its itself just last later least less like made make many may me
more most much must my myself near new news no nor not now of off often on once one only or other
others our ours ourselves out over own per said same say says she should since so some still such
than that the their theirs them themselves then there these they this those though three through
thus to today too two under until up upon very via was we week were what when where whether which
while who whom whose why will with within without would year years yesterday you your yours
""".split()

# Bosnian, Croatian, Montenegrin and Serbian share these (Latin script; Cyrillic is transliterated).
_BCMS_STOPWORDS = """
a ako ali bez bi bih bila bile bili bilo bio biti bismo biste bude budu će ćemo ćete ću da dana
danas do dok dva dvije dve gde gdje god i ih ili im ima imaju iz između iznad ja je jedan jedna jedno
jer jesu još juče jučer kad kada kako kao koja koje koji kojima kojeg kojem koju kroz li me među mene
mi mu na nad nakon nam nas ne nego neće nema nešto ni nije nisu niti njega njegov njegova njegovo
njemu njen njena njeno njih njihov njihova njihovo njoj njom nju o od odnosno oko on ona one oni ono
pa po pod pored posle poslije prema pri prije pre pred preko put radi rekao rekla s sa sam samo se
sebe sebi si smo ste su sve svi svoj svoja svoje svojih svoju ta tada tako takođe također taj te ti
tih tim to toga tog tom treba tu u uz već vi više za zbog zato što šta će ove ovaj ova ovo ovih ovim
ovog ovom kao godine godina godinu prošle sada jos vec sta sto
""".split()

STOPWORDS = frozenset(_ENGLISH_STOPWORDS) | frozenset(_BCMS_STOPWORDS)
#: ``str.translate``'s table for the mapping: one pass in C instead of a lookup per character.
_TRANSLITERATION = str.maketrans(_CYRILLIC_TO_LATIN)
_WORD = re.compile(r"[^\W\d_]{3,}")


def transliterate(text: str) -> str:
    """Serbian/Macedonian Cyrillic to Latin so both scripts of one word count as one term."""
    return text.translate(_TRANSLITERATION)


def tokenize(text: str) -> list[str]:
    """Lower-case words of three letters or more, transliterated, without stopwords."""
    words = _WORD.findall(transliterate(text.casefold()))
    return [w for w in words if w not in STOPWORDS]


def distinctive_terms(
    clusters: Mapping[int, Sequence[Sequence[str]]],
    background: Sequence[Sequence[str]],
    *,
    top: int = 5,
) -> dict[int, list[str]]:
    """Terms that set each cluster apart, c-TF-IDF style (BERTopic's class-based TF-IDF).

    Each cluster is one class and the background documents (the other articles around it) one more.
    A term's weight in a class is the share of the class's documents that contain it (so a long
    article repeating a word cannot dominate) times ``log(1 + A / f)``, where ``A`` is the mean number
    of documents per class and ``f`` the number of documents containing the term in all classes.
    Terms found in a single document of a multi-document cluster are skipped; ties go alphabetically
    so labels are deterministic.
    """
    doc_sets = {cid: [set(doc) for doc in docs] for cid, docs in clusters.items()}
    background_sets = [set(doc) for doc in background]
    total_freq: Counter[str] = Counter()
    for docs in [*doc_sets.values(), background_sets]:
        for terms in docs:
            total_freq.update(terms)
    n_classes = len(doc_sets) + (1 if background_sets else 0)
    n_docs = sum(len(d) for d in doc_sets.values()) + len(background_sets)
    mean_docs = n_docs / n_classes if n_classes else 1.0
    labels: dict[int, list[str]] = {}
    for cid, docs in doc_sets.items():
        in_class: Counter[str] = Counter()
        for terms in docs:
            in_class.update(terms)
        min_docs = 2 if len(docs) > 1 else 1
        scored = [
            (-(count / len(docs)) * math.log(1.0 + mean_docs / total_freq[term]), term)
            for term, count in in_class.items()
            if count >= min_docs
        ]
        labels[cid] = [term for _, term in sorted(scored)[:top]]
    return labels
