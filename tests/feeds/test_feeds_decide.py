"""The dedup decision without a store: entry keys, GUID degradation and the layers (pure)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from narrwatch.domain.text import title_key
from narrwatch.domain.types import ParsedEntry
from narrwatch.steps.poll.decide import FeedSnapshot, Lookups, decide_entries, entry_keys, guids_unusable

NOW = dt.datetime(2026, 3, 3, 12, tzinfo=dt.UTC)
WEEK = dt.timedelta(days=7)
FEED = FeedSnapshot(
    id="f",
    outlet="o",
    url="https://o.example/rss",
    country="RS",
    languages=("sr",),
    full_text=False,
    etag=None,
    last_modified=None,
    body_hash=None,
    guid_unreliable=False,
)
EMPTY = Lookups(frozenset(), {}, frozenset(), {})


def entry(title: str, link: str | None, guid: str | None = None, hours_ago: float | None = 1) -> ParsedEntry:
    published = NOW - dt.timedelta(hours=hours_ago) if hours_ago is not None else None
    return ParsedEntry(
        title=title,
        link=link,
        guid=guid,
        summary="",
        content="",
        published=published,
        updated=None,
        author=None,
        language=None,
    )


def decide(entries: list[ParsedEntry], lookups: Lookups = EMPTY, use_links: bool = False):  # type: ignore[no-untyped-def]
    return decide_entries(FEED, entries, entry_keys(entries, use_links), lookups, NOW, WEEK)


def test_guid_degradation_threshold_is_five_percent() -> None:
    good = [entry(f"t{n}", f"https://o.example/{n}", f"g{n}") for n in range(40)]
    assert not guids_unusable(good)
    two_blank = [*good[:38], entry("a", "https://o.example/a", None), entry("b", "https://o.example/b", None)]
    assert not guids_unusable(two_blank)  # 2/40 = 5%: not more than 5%
    three_blank = [*two_blank, entry("c", "https://o.example/c", None)]
    assert guids_unusable(three_blank)  # 3/41 > 5%
    same_link_repeat = [
        *good,
        entry("t0", "https://o.example/0", "g0"),
        entry("t1", "https://o.example/1", "g1"),
        entry("t2", "https://o.example/2", "g2"),
    ]
    assert not guids_unusable(same_link_repeat)  # a repeated item is not a bad GUID
    assert not guids_unusable([])


def test_entry_keys() -> None:
    entries = [
        entry("a", "https://o.example/1", "same"),
        entry("b", "https://o.example/2", "same"),
        entry("c", "https://o.example/3?utm_source=x", None),
        entry("d", None, None),
    ]
    keys = entry_keys(entries, use_links=False)
    assert keys[0] != keys[1] and keys[0].startswith("guid:") and keys[1].startswith("guid:")
    assert keys[2] == entry_keys([entry("z", "https://o.example/3", None)], False)[0]  # canonical link
    assert keys[3].startswith("hash:")
    by_link = entry_keys(entries, use_links=True)
    assert by_link[0].startswith("link:") and by_link[0] != by_link[1]
    assert all(len(key) <= 128 for key in keys + by_link)


def test_layers_inside_one_document() -> None:
    plan = decide(
        [
            entry("Vlada usvojila budžet za narednu godinu", "https://o.example/a?utm_source=rss", "1"),
            entry("Skupština raspravlja o budžetu danas", "https://o.example/a", "2"),
            entry("Влада усвојила буџет за наредну годину", "https://o.example/a-cyr", "3"),
            entry("Bez veze", None, "4"),
            entry("Vlada usvojila budžet za narednu godinu", "https://o.example/a?utm_source=rss", "1"),
        ]
    )
    assert len(plan.new_articles) == 1
    assert [s.matched_by for s in plan.sightings] == ["new", "canonical_url", "title"]
    assert plan.skipped == 1 and plan.duplicates == {"canonical_url": 1, "title": 1, "entry_key": 1}
    assert {s.new_index for s in plan.sightings} == {0}


def test_layers_against_the_store() -> None:
    stored_title = "Predsednik se sastao sa ambasadorima Evropske unije"
    lookups = Lookups(
        known_entry_keys=frozenset(entry_keys([entry("x", "https://o.example/known", "known")], False)),
        articles_by_url={"https://o.example/stored": 7},
        tombstoned_urls=frozenset({"https://o.example/deleted"}),
        articles_by_title={title_key(stored_title): [(9, NOW - dt.timedelta(days=2))]},
    )
    plan = decide(
        [
            entry("whatever", "https://o.example/known", "known"),
            entry("Druga vest sa istog linka", "https://m.o.example/stored/", "s"),
            entry("Obrisana vest se ne vraća", "https://o.example/deleted#x", "d"),
            entry(stored_title, "https://o.example/other-url", "t"),
            entry(stored_title, "https://o.example/much-later", "late", hours_ago=-1),
        ],
        lookups,
    )
    assert plan.duplicates["entry_key"] == 1 and plan.tombstoned == 1
    assert [(s.matched_by, s.article_id) for s in plan.sightings[:2]] == [("canonical_url", 7), ("title", 9)]
    # A future date is replaced by the fetch time (estimated), still within the window of article 9.
    assert plan.sightings[2].article_id == 9 and plan.new_articles == []


def test_title_window_and_undated_entries() -> None:
    title = "Sednica vlade o budžetu zakazana za četvrtak"
    plan = decide(
        [
            entry(title, "https://o.example/1", "1", hours_ago=24 * 20),
            entry(title, "https://o.example/2", "2", hours_ago=24 * 10),
            entry("Vest bez datuma objave i bez izvora", "https://o.example/3", "3", hours_ago=None),
        ]
    )
    assert len(plan.new_articles) == 3  # ten days apart: outside the 7-day window
    assert plan.undated_new == 1
    undated = plan.new_articles[2]
    assert undated["published_at"] == NOW and undated["published_estimated"] is True


@settings(max_examples=60, deadline=None)
@given(st.permutations(list(range(8))))
def test_counts_do_not_depend_on_entry_order(order: list[int]) -> None:
    base = [
        entry("Vlada usvojila budžet za narednu godinu", "https://o.example/a", "1"),
        entry("Влада усвојила буџет за наредну годину", "https://o.example/b", "2"),
        entry("Skupština raspravlja o zakonu o medijima", "https://o.example/c?fbclid=1", "3"),
        entry("Medijski zakon u skupštini danas", "https://o.example/c", "4"),
        entry("Kratko", "https://o.example/d", "5"),
        entry("Kratko", "https://o.example/e", "6"),
        entry("Bez linka", None, "7"),
        entry("Vlada usvojila budžet za narednu godinu", "https://o.example/a", "1"),
    ]
    plan = decide([base[index] for index in order])
    assert len(plan.new_articles) == 4 and len(plan.sightings) == 6
    assert plan.skipped == 1 and plan.duplicates["entry_key"] == 1
