"""Does an article push a narrative, or report, question or debunk it? Pure text rules.

An article that debunks a claim repeats the claim's words, so its embedding sits next to the claim;
what tells the two apart is the language around the claim: "hoax", "no evidence", "fake",
"denied" on one side; "reportedly", "allegedly", "unconfirmed", "according to" on the other.
Each cue list is matched on folded text (case, accents and Serbian/Macedonian Cyrillic folded to
Latin, Russian cues written in their folded form) with the keyword rules of
:mod:`narrwatch.domain.scoring`.

The stance is ``debunking`` when at least ``debunk_min`` distinct debunking cues occur,
``reporting`` when at least ``reporting_min`` distinct reporting cues occur, else ``promoting``.
The thresholds were chosen on the tuning part of the FNC-1 benchmark (eval/thirdparty/README.md);
a debunking or reporting article is never confirmed on its score alone (it stays a suggestion).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from narrwatch.domain.lexical import fold_text, keyword_hits

StanceLabel = Literal["promoting", "reporting", "debunking"]

#: Words that reject a claim, in English and the region's languages (folded forms).
DEBUNK_CUES: tuple[str, ...] = (
    "hoax*", "fake", "fakes", "debunk*", "false", "falsely", "not true", "untrue", "no evidence",
    "fabricat*", "satire", "satirical", "baseless", "unfounded", "bogus", "doctored", "photoshop*",
    "never happened", "fact-check*", "factcheck*", "misleading", "myth", "turned out to be",
    "lazn*", "netacn*", "neistin*", "demant*", "nema dokaza", "bez dokaza", "fejk*", "izmisljen*",
    "fejk", "lozhn*", "lozn*", "oproverg*", "net dokazatel*", "ne sootvetstvuet deistvitel*",
    "e rreme", "rreme", "lajm i rreme", "nevistin*",
)  # fmt: skip

#: Words of reporting at a distance, attributing or questioning.
REPORTING_CUES: tuple[str, ...] = (
    "reportedly", "allegedly", "alleged", "unconfirmed", "unverified", "purported*", "rumor*",
    "rumour*", "according to", "it is claimed", "claims that", "claimed that", "is said to",
    "could not be verified", "not been confirmed", "navodno", "navodn*", "nepotvrđen*",
    "nepotvrdjen*", "prema navodima", "po navodima", "jakoby", "yakoby", "po slukham",
    "soobshchaetsya", "dyshet se", "gjoja",
)  # fmt: skip


@dataclass(frozen=True)
class StanceRules:
    debunk_min: int = 2
    reporting_min: int = 0  # 0: reporting cues alone never decide (measured: they cost recall)

    def classify(self, debunk: int, reporting: int) -> StanceLabel:
        if self.debunk_min and debunk >= self.debunk_min:
            return "debunking"
        if self.reporting_min and reporting >= self.reporting_min:
            return "reporting"
        return "promoting"


@dataclass(frozen=True)
class Stance:
    label: StanceLabel
    debunk_hits: tuple[str, ...]
    reporting_hits: tuple[str, ...]

    @property
    def blocks_confirm(self) -> bool:
        return self.label != "promoting"

    def as_dict(self) -> dict[str, object]:
        return {"label": self.label, "debunk": list(self.debunk_hits), "reporting": list(self.reporting_hits)}


def article_stance(text: str, rules: StanceRules | None = None) -> Stance:
    rules = rules or StanceRules()
    folded = fold_text(text)
    debunk = tuple(keyword_hits(DEBUNK_CUES, folded, folded=True))
    reporting = tuple(keyword_hits(REPORTING_CUES, folded, folded=True))
    return Stance(rules.classify(len(debunk), len(reporting)), debunk, reporting)
