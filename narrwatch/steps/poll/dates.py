"""Dates that feedparser cannot read, read with dateparser.

feedparser knows RFC 822, ISO 8601 and a few more; outlets also write "2019-05-18 10:58:46 +0300",
"18 мая 2019", "Pon, 12 Maj 2025 10:30:00 +0200" or RFC 822 with zones such as "CEST". dateparser is
maintained and knows month and day names in the region's languages. It is the fallback only (slower),
and a string it cannot read either is kept raw, so nothing is guessed silently.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from typing import Any

#: Languages of the watched outlets, most frequent first (dateparser tries them in this order).
LANGUAGES = ("en", "sr", "sr-Latn", "hr", "bs", "mk", "sq", "ru", "uk", "bg", "sl", "de", "fr", "es", "it")
#: Wall-clock times without a zone are the region's (CET/CEST), as the region's sites write them.
REGION_TIME_ZONE = "Europe/Belgrade"
PLAUSIBLE_YEARS = (1990, 2100)
MAX_DATE_CHARS = 200

# Zone abbreviations dateparser does not map, with their UTC offsets.
_EXTRA_ZONES = {
    "MSK": "+0300",
    "MSD": "+0400",
    "CEST": "+0200",
    "CET": "+0100",
    "EEST": "+0300",
    "EET": "+0200",
}
_ZONE_WORD = re.compile(r"\b(" + "|".join(_EXTRA_ZONES) + r")\b")


@lru_cache(maxsize=1)
def _parser() -> Any:
    from dateparser.date import DateDataParser

    return DateDataParser(
        languages=list(LANGUAGES),
        settings={
            "TIMEZONE": REGION_TIME_ZONE,
            "TO_TIMEZONE": "UTC",
            "RETURN_AS_TIMEZONE_AWARE": True,
            "PREFER_DAY_OF_MONTH": "first",
            "DATE_ORDER": "DMY",
            # a date without a year is not this year's by guess: leave it unread
            "REQUIRE_PARTS": ["day", "month", "year"],
            "PARSERS": ["timestamp", "custom-formats", "absolute-time"],
        },
    )


def read_date(raw: object) -> dt.datetime | None:
    """An aware UTC datetime for a date string feedparser could not read, or None."""
    if not isinstance(raw, str):
        return None
    text = " ".join(raw.split())[:MAX_DATE_CHARS]
    if not text or not any(ch.isdigit() for ch in text):
        return None
    text = _ZONE_WORD.sub(lambda match: _EXTRA_ZONES[match.group(1)], text)
    try:
        found = _parser().get_date_data(text)
    except (ValueError, OverflowError, TypeError, KeyError):
        return None
    when = found.date_obj if found is not None else None
    if when is None:
        return None
    if when.tzinfo is None:  # not expected with RETURN_AS_TIMEZONE_AWARE, but never naive out
        return None
    when = when.astimezone(dt.UTC)
    if not PLAUSIBLE_YEARS[0] <= when.year <= PLAUSIBLE_YEARS[1]:
        return None
    return when
