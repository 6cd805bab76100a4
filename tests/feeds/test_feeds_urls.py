"""Canonical URLs and point ids (pure)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.provisional import urls

from narrwatch.domain.urls import (
    MAX_URL_LENGTH,
    POINT_NAMESPACE,
    UrlError,
    canonicalize_url,
    is_http_url,
    point_uuid,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://WWW.Example.RS:80/Vesti/Clanak/", "https://example.rs/Vesti/Clanak"),
        ("https://example.rs/a?utm_source=rss&utm_medium=feed&id=5", "https://example.rs/a?id=5"),
        ("https://example.rs/a?fbclid=XYZ&gclid=1&b=2&a=1", "https://example.rs/a?a=1&b=2"),
        ("https://example.rs/a#comments", "https://example.rs/a"),
        ("https://m.n1info.rs/vesti/a/amp/", "https://n1info.rs/vesti/a"),
        ("https://amp.example.com/story.amp.html", "https://example.com/story.html"),
        ("https://example.com/story?amp=1", "https://example.com/story"),
        ("https://example.com/story?outputType=amp&x=1", "https://example.com/story?x=1"),
        ("https://example.rs/%d0%b2%d0%b5%d1%81%d1%82", "https://example.rs/%D0%B2%D0%B5%D1%81%D1%82"),
        ("https://example.rs/вест", "https://example.rs/%D0%B2%D0%B5%D1%81%D1%82"),
        ("https://example.rs:8443/a", "https://example.rs:8443/a"),
        ("https://user:pw@example.rs/a", "https://example.rs/a"),
        ("https://m.rs/a", "https://m.rs/a"),  # "m.rs" is a domain, not a mobile mirror
        ("https://primer.срб/вести", "https://primer.xn--90a3ac/%D0%B2%D0%B5%D1%81%D1%82%D0%B8"),
        ("https://example.rs", "https://example.rs/"),
    ],
)
def test_canonical_forms(url: str, expected: str) -> None:
    assert canonicalize_url(url) == expected


def test_http_and_https_mobile_and_tracking_variants_share_one_key() -> None:
    variants = [
        "http://www.kurir.rs/vesti/politika/123-naslov?utm_source=twitter",
        "https://kurir.rs/vesti/politika/123-naslov/",
        "https://m.kurir.rs/vesti/politika/123-naslov/amp#top",
        "https://KURIR.rs/vesti/politika/123-naslov?fbclid=abc",
    ]
    assert len({canonicalize_url(url) for url in variants}) == 1


@pytest.mark.parametrize(
    "url", ["", "ftp://example.rs/a", "javascript:alert(1)", "mailto:x@example.rs", "https://", "/relative"]
)
def test_non_http_urls_are_refused(url: str) -> None:
    with pytest.raises(UrlError):
        canonicalize_url(url)


def test_too_long_url_is_refused() -> None:
    with pytest.raises(UrlError):
        canonicalize_url("https://example.rs/" + "a" * MAX_URL_LENGTH)


@settings(max_examples=300, deadline=None)
@given(urls())
def test_canonicalize_is_idempotent(url: str) -> None:
    try:
        once = canonicalize_url(url)
    except UrlError:
        return
    assert canonicalize_url(once) == once
    assert is_http_url(once)


@settings(max_examples=200, deadline=None)
@given(
    urls(),
    st.text(alphabet="abcdefghij0123456789", max_size=20),
    st.sampled_from(["utm_source", "utm_campaign", "fbclid", "gclid", "mc_cid"]),
)
def test_fragments_and_tracking_parameters_never_change_the_key(url: str, fragment: str, param: str) -> None:
    try:
        base = canonicalize_url(url)
    except UrlError:
        return
    separator = "&" if "?" in url.split("#")[0] else "?"
    decorated = url.split("#")[0] + f"{separator}{param}=x1#{fragment}"
    assert canonicalize_url(decorated) == base


def test_point_uuid_is_pinned() -> None:
    # Golden values: if these change, every stored Qdrant point id is orphaned.
    assert POINT_NAMESPACE == uuid.UUID("6f1c2a52-3b0e-5d4f-9a57-2f3c8d1e7b40")
    assert point_uuid("https://example.rs/a", 0) == "c95734de-8bff-51d4-af10-f955402fcfc6"
    assert point_uuid("https://example.rs/a", 1) == "ceb82d8d-888b-5104-b20a-241fa01c6fc9"
    assert (
        point_uuid("https://sputnikportal.rs/20250512/vest.html", 3) == "701f6ab7-101d-5239-a111-0e6668dbe72d"
    )


@given(st.text(max_size=100), st.integers(min_value=0, max_value=10_000))
def test_point_uuid_is_stable_and_distinct_per_passage(url: str, index: int) -> None:
    first = point_uuid(url, index)
    assert first == point_uuid(url, index)
    assert first != point_uuid(url, index + 1)
    assert uuid.UUID(first).version == 5


def test_point_uuid_rejects_negative_index() -> None:
    with pytest.raises(ValueError):
        point_uuid("https://example.rs/a", -1)
