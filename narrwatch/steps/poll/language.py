"""Language of an article, and its script: lingua (lingua-language-detector) plus rules for the region.

Measured on the Tatoeba sample in bench/data/tatoeba (bench/multilingual.py prints it): lingua told
Bulgarian from Macedonian and Russian where py3langid did not (py3langid put 27 % of Bulgarian
sentences elsewhere), and it separates Croatian from Bosnian better than chance; neither library
has a model of Serbian in Latin script, so the rules below decide that.

The rules, applied in order:

1. Script. Text whose letters are mostly Cyrillic is ``Cyrl`` and is decided among the Cyrillic
   languages only; otherwise ``Latn``. The script is returned with the language.
2. Cyrillic. Letters that exist in one alphabet settle it: ``ђ ћ`` are Serbian, ``ѓ ќ ѕ``
   Macedonian. Cyrillic text written entirely with letters of the Serbian alphabet (no ``ы э ё й ъ
   ь я ю щ`` ...) is never Russian, Ukrainian, Belarusian or Bulgarian: those languages cannot write
   a sentence without such letters, so lingua chooses between Serbian and Macedonian (and Bulgarian,
   whose short sentences can lack them, unless the text has ``ј љ њ џ``).
3. Latin. Bosnian, Croatian, Serbian and Montenegrin (BCMS) are one language with four standards.
   The family wins when lingua's summed confidence for Bosnian, Croatian and Serbian beats every
   other language. Within it: the feed's declared code when the feed declares exactly one of
   bs/hr/sr/cnr (Montenegrin is told only this way: no detector has a model of it); else Serbian
   when the text has more ekavian word forms (``vreme``, ``deca``, ``reč``: only the Serbian
   standard is ekavian) than ijekavian ones (``vrijeme``, ``djeca``, ``riječ``); else, by words
   Croatian has and the others replace (``tko``/``ko``, ``tjedan``/``sedmica``, ``točno``/``tačno``,
   ``je li``/``da li``), Croatian, or Bosnian when the text has a jat word and Serbian when it has
   none; else lingua's choice between Croatian and Bosnian.
4. Too little text to judge (fewer than :data:`MIN_LETTERS` letters): the feed's declared language
   when it declares exactly one, else the detector's best guess, else None.

The detector name stored with each article is :data:`DETECTOR`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from narrwatch.domain.text import text_script
from narrwatch.steps.poll.tool_version import tool_name

BCMS_CODES = frozenset({"bs", "hr", "sr", "cnr", "hbs"})
#: ISO 639-3 Serbo-Croatian: still accepted from feeds that declare it.
GENERIC_BCMS = "hbs"
MIN_LETTERS = 12
_SAMPLE_CHARS = 2_000

_SERBIAN_ONLY = frozenset("ђћЂЋ")
_MACEDONIAN_ONLY = frozenset("ѓќѕЃЌЅ")
#: Letters of the Serbian and Macedonian alphabets that Bulgarian and the East Slavic ones lack.
_SERBIAN_MACEDONIAN_ONLY = frozenset("јљњџЈЉЊЏ")
_SERBIAN_ALPHABET = frozenset("абвгдђежзијклљмнњопрстћуфхцчџш")
_CYRILLIC_LANGUAGES = ("sr", "mk", "bg", "ru", "uk", "be")
#: Latin-script languages lingua weighs against BCMS: the region's, its neighbours' and the big ones.
_LATIN_LANGUAGES = (
    "hr", "bs", "sr", "sq", "en", "sl", "de", "fr", "it", "es", "pt", "pl", "cs", "sk", "hu", "ro", "tr",
    "nl",
)  # fmt: skip
_LATIN_BCMS = ("hr", "bs", "sr")

# Reflexes of old jat: e in the Serbian (ekavian) standard, je/ije in the ijekavian ones
# (Croatian, Bosnian, Montenegrin, and Serbian as written in Bosnia). Common words only.
_EKAVIAN = frozenset(
    """vreme vremena vremenu deca dece deci dete deteta reč reči rečenica rečenice reka reke reci
    lep lepa lepo lepi lepe lepu mleko mleka mesto mesta mestu svet sveta svetu svetski cena cene
    cenu dve deo delo dela delu verujem veruje veruješ verovati verovatno leto leta letu pre posle
    gde ovde onde svuda uvek nedelja nedelje nedelju pesma pesmu pesme čovek čoveka čoveku devojka
    devojke devojku devojci video videla videli videti vest vesti beo bela belo bele sedi sedim
    sedeo seo hteo htela hleb hleba mesec meseca meseci predsednik predsednika predsedniku
    vreba sreda pored primer primera zvezda zvezde vera veru dobrodošli ponedeljak neprijatelj
    uspeh uspeha uspela uspeo telo tela telu pesnik cveće cvet svetlo svetlost sneg snega lekar
    lekara lek leka leva levo reši rešio rešiti rešenje poverovao prelepo prestrog voleo volela
    voleli želeo želela želeli živeo živela živeli razumeo razumela doneo donela doneli odneo preneo
    poneo sećaš sećam seća sećanje ceo cela celo celu napred seći vetar bežati smeješ smej""".split()
)
_IJEKAVIAN = (
    frozenset(
        """vrijeme vremena djeca djece djeci dijete djeteta riječ riječi rečenica rijeka rijeke lijep
    lijepa lijepo lijepi lijepe lijepu mlijeko mlijeka mjesto mjesta mjestu svijet svijeta svijetu
    cijena cijene cijenu dvije dio djelo djela djelu vjerujem vjeruje vjeruješ vjerovati vjerojatno
    vjerovatno ljeto ljeta ljetu prije poslije gdje ovdje ondje uvijek nedjelja nedjelje nedjelju
    pjesma pjesmu pjesme čovjek čovjeka čovjeku djevojka djevojke djevojku djevojci vidio vidjela
    vidjeli vidjeti vijest vijesti volio voljela voljeli želio željela željeli živio živjela živjeli
    razumio razumjela donio donijela donijeli odnio prenio ponio sjećaš sjećam sjeća sjećanje cijeli
    cijela cijelo cijelu naprijed sjeći vjetar bježati bijel bijela bijelo bijele sjedi sjedim
    sjedio sjeo htio htjela
    hljeb hljeba mjesec mjeseca mjeseci predsjednik predsjednika predsjedniku srijeda primjer
    primjera zvijezda zvijezde vjera vjeru ponedjeljak uspjeh uspjeha uspjela uspio tijelo tijela
    tijelu pjesnik cvijeće cvijet svjetlo svjetlost snijeg snijega liječnik lijek lijeka lijevo
    riješi riješio riješiti rješenje mlijeko vijeće pobjediti pobijediti sjedni""".split()
    )
    - _EKAVIAN
)
#: Words of the Croatian standard that the others replace (tko/ko, tjedan/sedmica, kruh/hljeb ...).
_CROATIAN_WORDS = frozenset(
    """tko tjedan tjedna tjednu kruh kruha glazba glazbu glazbe tisuća tisuću zrakoplov vlak vlaka
    sveučilište kazalište povijest povijesti tvrtka tvrtke tvrtci znanost znanosti znanstvenik
    znanstvenika znanstvenici siječanj veljača ožujak travanj svibanj lipanj srpanj kolovoz rujan
    listopad studeni prosinac inozemstvo inozemstva nogomet zemljopis europa europe europi europske
    europska europskoj kava kavu otok otoka točno točka tijekom uvjet uvjeti uvjetima izvješće
    priopćenje tajnik veleposlanstvo promet kat stoljeće stoljeća glasovati glasovali ravnatelj
    liječnik liječnika obitelj obitelji""".split()
)
#: Words of the Bosnian, Serbian and Montenegrin standards that Croatian replaces, and "da li".
_NOT_CROATIAN_WORDS = frozenset(
    """ko šta tačno tačka tokom uslov uslovi uslovima ostrvo ostrva izvještaj izveštaj sekretar
    avion aviona ambasada ambasade saobraćaj sprat hiljada hiljadu hiljade porodica porodice
    porodicu kafa kafu kahva kahvu voz voza sedmica sedmice sedmicu historija historije istorija
    istorije nauka nauke naučnik naučnika naučnici univerzitet univerziteta pozorište opština
    opštine evropa evrope evropi evropske evropska hljeb hleb lahko mahala džamija""".split()
)
_WORD = re.compile(r"[^\W\d_]+")


DETECTOR = tool_name("lingua", "lingua-language-detector", "+rules")


@dataclass(frozen=True)
class Detection:
    language: str | None
    confidence: float
    detector: str = DETECTOR
    script: str | None = None  # ISO 15924: "Cyrl" or "Latn"; None when there are no letters


_detector_lock = threading.Lock()
_detector: Any = None


def _get_detector() -> Any:
    """The lingua detector over the languages above (about 1 s to load): once per process."""
    global _detector
    with _detector_lock:
        if _detector is None:
            from lingua import IsoCode639_1, LanguageDetectorBuilder

            codes = {*_CYRILLIC_LANGUAGES, *_LATIN_LANGUAGES}
            _detector = LanguageDetectorBuilder.from_iso_codes_639_1(
                *(getattr(IsoCode639_1, code.upper()) for code in sorted(codes))
            ).build()
        return _detector


def release_models() -> None:
    """Free the detector's language models (about 0.5 GB resident once a text was detected), for a
    process that detects one text and goes on to other work; the next detection loads them again."""
    with _detector_lock:
        if _detector is not None:
            _detector.unload_language_models()


def _rank(text: str, candidates: Sequence[str]) -> list[tuple[str, float]]:
    """(code, confidence) of ``candidates``, best first, confidences summing to 1 over them."""
    detector = _get_detector()
    values = detector.compute_language_confidence_values(text)
    scores = {str(value.language.iso_code_639_1.name).lower(): float(value.value) for value in values}
    ranked = sorted(((code, scores.get(code, 0.0)) for code in candidates), key=lambda item: -item[1])
    total = sum(score for _code, score in ranked)
    if total <= 0:
        return [(code, 0.0) for code, _score in ranked]
    return [(code, score / total) for code, score in ranked]


def _declared_bcms(declared: Sequence[str]) -> str | None:
    bcms = [code for code in declared if code in BCMS_CODES and code != GENERIC_BCMS]
    return bcms[0] if len(set(bcms)) == 1 else None


def detect_language(text: str, declared: Sequence[str] = ()) -> Detection:
    """Detect the language and script of ``text`` by the rules in this module's docstring."""
    sample = text[:_SAMPLE_CHARS]
    letters = [char for char in sample if char.isalpha()]
    fallback = declared[0] if len(declared) == 1 else None
    cyrillic_letters = [char for char in letters if "\u0400" <= char <= "\u04ff"]
    script = text_script(sample)
    if len(letters) < MIN_LETTERS:
        if fallback is not None:
            return Detection(fallback, 0.0, script=script)
        if not letters:
            return Detection(None, 0.0)
    if script == "Cyrl":
        return _detect_cyrillic(sample, cyrillic_letters, declared)
    return _detect_latin(sample, declared)


def _detect_cyrillic(sample: str, letters: list[str], declared: Sequence[str]) -> Detection:
    letter_set = set(letters)
    serbian = _declared_bcms(declared) or "sr"
    if letter_set & _SERBIAN_ONLY:
        return Detection(serbian, 1.0, script="Cyrl")
    if letter_set & _MACEDONIAN_ONLY:
        return Detection("mk", 1.0, script="Cyrl")
    serbian_writable = all(char.lower() in _SERBIAN_ALPHABET for char in letters)
    if serbian_writable and letter_set & _SERBIAN_MACEDONIAN_ONLY:
        candidates: tuple[str, ...] = ("sr", "mk")
    elif serbian_writable:
        candidates = ("sr", "mk", "bg")  # a short Bulgarian sentence may lack ъ, щ, я, ю, й and ь
    else:
        candidates = _CYRILLIC_LANGUAGES
    code, score = _rank(sample, candidates)[0]
    return Detection(serbian if code == "sr" else code, score, script="Cyrl")


def _detect_latin(sample: str, declared: Sequence[str]) -> Detection:
    ranked = _rank(sample, _LATIN_LANGUAGES)
    bcms_score = sum(score for code, score in ranked if code in _LATIN_BCMS)
    best_other = next((item for item in ranked if item[0] not in _LATIN_BCMS), ("", 0.0))
    if bcms_score < best_other[1]:
        return Detection(best_other[0] or None, best_other[1], script="Latn")
    return Detection(_bcms_standard(sample, ranked, declared), bcms_score, script="Latn")


def _bcms_standard(sample: str, ranked: list[tuple[str, float]], declared: Sequence[str]) -> str:
    """Which BCMS standard Latin ``sample`` is written in (rule 3 of the module docstring)."""
    from_feed = _declared_bcms(declared)
    if from_feed is not None:
        return from_feed
    words = [word.lower() for word in _WORD.findall(sample)]
    ekavian = sum(word in _EKAVIAN for word in words)
    ijekavian = sum(word in _IJEKAVIAN for word in words)
    if ekavian > ijekavian:
        return "sr"
    croatian = sum(word in _CROATIAN_WORDS for word in words)
    not_croatian = sum(word in _NOT_CROATIAN_WORDS for word in words)
    not_croatian += sum(
        1 for first, second in zip(words, words[1:], strict=False) if (first, second) == ("da", "li")
    )
    if not_croatian > croatian:
        # Bosnia's and Montenegro's standards are ijekavian; Serbia's without a jat word says neither.
        return "bs" if ijekavian else "sr"
    if croatian > not_croatian:
        return "hr"
    return next(code for code, _score in ranked if code in ("hr", "bs"))


def is_bcms(code: str | None) -> bool:
    return code in BCMS_CODES
