"""The dateparser fallback reads the formats feedparser leaves unread, in the region's languages."""

from __future__ import annotations

import datetime as dt

import pytest

from narrwatch.steps.poll.dates import read_date

UTC = dt.UTC


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2019-05-18 10:58:46 +0300", dt.datetime(2019, 5, 18, 7, 58, 46, tzinfo=UTC)),
        ("18 мая 2019 10:00", dt.datetime(2019, 5, 18, 8, 0, tzinfo=UTC)),  # Russian, region time
        ("Pon, 12 Maj 2025 10:30:00 +0200", dt.datetime(2025, 5, 12, 8, 30, tzinfo=UTC)),
        ("Mon, 12 May 2025 10:30:00 CEST", dt.datetime(2025, 5, 12, 8, 30, tzinfo=UTC)),
        ("Mon, 12 May 2025 10:30 MSK", dt.datetime(2025, 5, 12, 7, 30, tzinfo=UTC)),
        ("12.05.2025. u 10:30", dt.datetime(2025, 5, 12, 8, 30, tzinfo=UTC)),
        ("вторник, 21 мај 2024", dt.datetime(2024, 5, 20, 22, 0, tzinfo=UTC)),  # Macedonian/Serbian
        ("5 qershor 2024", dt.datetime(2024, 6, 4, 22, 0, tzinfo=UTC)),  # Albanian
    ],
)
def test_region_formats_are_read(raw: str, expected: dt.datetime) -> None:
    assert read_date(raw) == expected


@pytest.mark.parametrize(
    "raw", ["Wed, 32 Dec 2020 10:00:00 +0000", "yesterday", "", "Mon, 03 Mar 1800 10:00:00 GMT"]
)
def test_unreadable_or_implausible_is_none(raw: str) -> None:
    assert read_date(raw) is None
