"""Deterministic news-like articles for benchmarks and tests (written for narrwatch, no corpus).

Sentences are composed from templates about regional politics, economy, energy, transport, health,
sport and culture, with slots for actors, places, numbers and days, so texts have the length,
vocabulary and token profile of wire copy without copying anybody's articles.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

_PLACES = [
    "Belgrade",
    "Novi Sad",
    "Nis",
    "Podgorica",
    "Skopje",
    "Sarajevo",
    "Banja Luka",
    "Pristina",
    "Tirana",
    "Zagreb",
    "Mostar",
    "Bitola",
    "Kragujevac",
    "Tuzla",
    "Ohrid",
    "Budva",
    "Subotica",
]
_ACTORS = [
    "the finance minister",
    "the prime minister",
    "the opposition leader",
    "the central bank governor",
    "the mayor",
    "the energy regulator",
    "the health ministry",
    "the chamber of commerce",
    "the national railway company",
    "the defence minister",
    "the foreign minister",
    "the electoral commission",
    "a coalition of trade unions",
    "the agriculture ministry",
    "the state statistics office",
    "the parliamentary speaker",
    "the regional development agency",
]
_ORGS = [
    "the European Commission",
    "the World Bank",
    "the IMF",
    "a German utility",
    "an Italian bank",
    "a Chinese construction firm",
    "a local brewery",
    "the football federation",
    "the tourism board",
    "a Turkish airline",
    "the Council of Europe",
    "a Slovenian retailer",
    "the university hospital",
]
_DAYS = [
    "on Monday",
    "on Tuesday",
    "on Wednesday",
    "on Thursday",
    "on Friday",
    "over the weekend",
    "last week",
]
_TOPICS = {
    "economy": [
        "{Actor} said {day} that inflation had slowed to {pct} percent in {month}.",
        "Industrial output in {place} rose by {pct} percent compared with the same period last year.",
        "{Org} approved a loan of {money} million euros to modernise the water network in {place}.",
        "Economists warned that the budget deficit could exceed {pct} percent of GDP next year.",
        "Retail sales fell for the {nth} consecutive month, according to {actor}.",
        "The government plans to raise the minimum wage by {pct} percent from January.",
        "Exporters in {place} complained that the strong currency was hurting their margins.",
    ],
    "energy": [
        "{Actor} announced {day} a tender for a {mw} megawatt solar plant near {place}.",
        "Electricity prices for households will stay frozen until the end of the heating season.",
        "{Org} signed a memorandum on a gas interconnector linking {place} with {place2}.",
        "The coal-fired plant outside {place} was shut down for {n} days for repairs.",
        "Critics said the new hydropower project would damage rivers in the mountains above {place}.",
        "Grid operators reported record consumption during the cold snap {day}.",
    ],
    "politics": [
        "{Actor} told reporters in {place} that early elections were not on the agenda.",
        "The parliament adopted the amendments with {n} votes in favour and {n2} against.",
        "Talks between the ruling parties in {place} broke down {day} over ministerial posts.",
        "{Actor} met a delegation of {org} to discuss reforms of the judiciary.",
        "Protesters gathered outside the government building in {place} for the {nth} day.",
        "The opposition accused the government of pressure on independent media.",
        "A new electoral law is expected to be sent to parliament before the summer recess.",
    ],
    "transport": [
        "Work on the motorway section between {place} and {place2} is {pct} percent complete.",
        "{Org} will finance new trains for the line connecting {place} and {place2}.",
        "Passenger traffic at the airport in {place} grew by {pct} percent in {month}.",
        "Drivers faced long queues at the border crossing near {place} {day}.",
        "The city of {place} introduced free public transport for pupils and pensioners.",
        "A landslide blocked the regional road to {place} and crews worked through the night.",
    ],
    "health": [
        "Hospitals in {place} reported a rise in flu cases {day}.",
        "{Actor} said {n} new doctors would be hired in rural health centres this year.",
        "The clinic in {place} received new diagnostic equipment donated by {org}.",
        "Waiting lists for surgery have shortened by {pct} percent since the spring.",
        "Pharmacists warned of shortages of some antibiotics ahead of the winter.",
    ],
    "sport": [
        "The national team beat its rivals {score} in a qualifier played in {place}.",
        "{Org} confirmed that {place} will host the regional basketball finals.",
        "The club from {place} signed a young striker on a {n}-year contract.",
        "Fans in {place} celebrated late into the night after the title win {day}.",
        "The coach said injuries had left the squad short ahead of the away match.",
    ],
    "culture": [
        "The film festival in {place} opened {day} with a record number of entries.",
        "{Org} funded the restoration of a medieval monastery near {place}.",
        "The national theatre in {place} staged a new production of a classic comedy.",
        "Tourist arrivals on the coast near {place} rose by {pct} percent this season.",
        "A new museum of modern history will open in {place} next spring.",
    ],
}
_TITLES = {
    "economy": [
        "Inflation eases in {place}",
        "{Org} backs {place} water project",
        "Budget gap worries economists",
    ],
    "energy": ["Solar tender launched near {place}", "Gas link to {place2} agreed", "Power use hits record"],
    "politics": [
        "Coalition talks stall in {place}",
        "Parliament passes amendments",
        "Protest enters {nth} day",
    ],
    "transport": [
        "Motorway to {place2} nears completion",
        "New trains for {place} line",
        "Border queues near {place}",
    ],
    "health": ["Flu cases rise in {place}", "Rural clinics to hire doctors", "Antibiotic shortages feared"],
    "sport": [
        "National team wins {score} in {place}",
        "{place} to host basketball finals",
        "Club signs striker",
    ],
    "culture": [
        "Film festival opens in {place}",
        "Monastery near {place} restored",
        "Tourism rises on the coast",
    ],
}
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October"]
_NTH = ["second", "third", "fourth", "fifth", "sixth"]


@dataclass(frozen=True)
class SyntheticArticle:
    topic: str
    title: str
    text: str

    @property
    def words(self) -> int:
        return len(self.text.split())


def _fill(template: str, rng: random.Random) -> str:
    place, place2 = rng.sample(_PLACES, 2)
    actor = rng.choice(_ACTORS)
    org = rng.choice(_ORGS)
    values = {
        "place": place,
        "place2": place2,
        "actor": actor,
        "Actor": actor[0].upper() + actor[1:],
        "org": org,
        "Org": org[0].upper() + org[1:],
        "day": rng.choice(_DAYS),
        "month": rng.choice(_MONTHS),
        "pct": f"{rng.uniform(0.5, 14):.1f}",
        "money": str(rng.randint(5, 400)),
        "mw": str(rng.choice([20, 50, 80, 120, 300])),
        "n": str(rng.randint(2, 140)),
        "n2": str(rng.randint(2, 80)),
        "nth": rng.choice(_NTH),
        "score": f"{rng.randint(1, 4)}-{rng.randint(0, 2)}",
    }
    return template.format(**values)


def generate_articles(
    count: int, *, seed: int = 20250301, min_words: int = 150, max_words: int = 200
) -> list[SyntheticArticle]:
    """``count`` articles of ``min_words``..``max_words`` words; the same seed gives the same texts."""
    rng = random.Random(seed)
    topics = sorted(_TOPICS)
    articles = []
    for _ in range(count):
        topic = rng.choice(topics)
        # Mostly one topic, with the occasional sentence from another, as real reports wander.
        target = rng.randint(min_words, max_words)
        sentences: list[str] = []
        words = 0
        while True:
            pool = _TOPICS[topic] if rng.random() < 0.8 else _TOPICS[rng.choice(topics)]
            sentence = _fill(rng.choice(pool), rng)
            length = len(sentence.split())
            if words + length > target:
                if words >= min_words:
                    break
                # Trim the last sentence so the article lands inside the range.
                sentence = " ".join(sentence.split()[: target - words]).rstrip(",") + "."
                length = len(sentence.split())
            sentences.append(sentence)
            words += length
            if words >= target:
                break
        title = _fill(rng.choice(_TITLES[topic]), rng)
        articles.append(SyntheticArticle(topic=topic, title=title, text=" ".join(sentences)))
    return articles
