"""The feedparser boundary: bytes and response headers in, a typed :class:`ParsedFeed` out.

feedparser only ever sees ``io.BytesIO`` (a ``str`` or ``bytes`` argument is taken as a path or a
URL to open: a hostile body could make it read a local file or fetch a loopback URL). It runs in a
child process under ``parse_timeout_s`` (see :mod:`narrwatch.steps.poll.isolate`).

Before feedparser, the body is decoded here, because the region's feeds get encodings wrong in ways
feedparser cannot see:

* a body that is valid UTF-8 is UTF-8, whatever it declares (UTF-8 labelled windows-1250 is common);
* otherwise the declared charset (HTTP header, then XML declaration, then HTML meta) is used, except
  the Western defaults (ISO-8859-1, windows-1252, US-ASCII) that servers send without knowing;
* with no usable declaration the region's code pages (windows-1251/1250, ISO-8859-2/-5, KOI8-R,
  windows-1252) are scored on the decoded text (letters, case pattern, one script per word) and the
  best one wins.

The decoded text is cleaned (the DOCTYPE and its entity declarations are removed; characters XML
forbids, NUL included, are removed; over-long author fields are cut, which defuses feedparser's
quadratic author regex) and handed to feedparser as UTF-8.
Entries become plain text, capped in number and length; dates become aware UTC or None.
"""

from __future__ import annotations

import calendar
import codecs
import datetime as dt
import io
import re
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import feedparser

from narrwatch.domain.text import html_to_text, single_line
from narrwatch.domain.types import ParsedEntry, ParsedFeed
from narrwatch.domain.urls import MAX_URL_LENGTH, is_http_url
from narrwatch.steps.poll.isolate import IsolatedRunner, TaskFailed

MAX_TITLE_CHARS = 1_000
MAX_SUMMARY_CHARS = 20_000
MAX_CONTENT_CHARS = 200_000
MAX_AUTHOR_CHARS = 200
MAX_GUID_CHARS = 2_048
MAX_ERRORS = 50
#: Longest author-like field handed to feedparser (its email regex is quadratic in this length).
MAX_AUTHOR_FIELD_CHARS = 512
#: Oldest and newest plausible publication years; anything else is a broken date.
PLAUSIBLE_YEARS = (1990, 2100)
#: Time zone assumed for the region's "dd.mm.yyyy hh:mm" dates that carry none (CET/CEST everywhere
#: from Zagreb to Tirana).
REGION_TIME_ZONE = ZoneInfo("Europe/Belgrade")

_CANDIDATE_ENCODINGS = ("windows-1251", "windows-1250", "iso-8859-2", "koi8-r", "iso-8859-5", "windows-1252")
_UNTRUSTED_DECLARATIONS = frozenset({"latin-1", "iso8859-1", "cp1252", "ascii"})
_XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]{0,200}?encoding\s*=\s*[\"']([A-Za-z0-9._:\-]{1,40})[\"']")
_HTML_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?([A-Za-z0-9._:\-]{1,40})", re.I)
_XML_DECLARATION_TEXT = re.compile(r"^(\s*<\?xml[^>]{0,200}?encoding\s*=\s*[\"'])([^\"']{0,40})([\"'])")
_INVALID_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_AUTHOR_FIELD = re.compile(
    r"(<(?:[\w.\-]+:)?(?:author|creator|managingEditor|webMaster|name|email|owner|contributor)"
    r"\b[^<>]{0,256}>\s*(?:<!\[CDATA\[)?)([^<\]]{" + str(MAX_AUTHOR_FIELD_CHARS) + r"})[^<\]]*"
)
_WORD = re.compile(r"\w+")
_BCMS_LETTERS = frozenset("čćšžđČĆŠŽĐ")
_REGION_DATE = re.compile(
    r"^\s*(\d{1,2})\.\s?(\d{1,2})\.\s?(\d{4})\.?(?:\s*(?:u\s*)?(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*(?:h|č)?\s*$"
)


class FeedParseError(Exception):
    """The document could not be parsed within its budget (timeout, memory, crash)."""


@dataclass(frozen=True)
class DecodedDocument:
    text: str
    encoding: str
    notes: tuple[str, ...]


# --- encodings ----------------------------------------------------------------------------------


def _codec_name(label: str | None) -> str | None:
    if not label:
        return None
    try:
        return codecs.lookup(label.strip().strip("\"'")).name
    except LookupError:
        return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _declared_encodings(body: bytes, headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """(source, label) pairs in order of authority: HTTP header, XML declaration, HTML meta."""
    found: list[tuple[str, str]] = []
    content_type = _header(headers, "content-type") or ""
    match = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9._:\-]{1,40})", content_type, re.I)
    if match:
        found.append(("content-type header", match.group(1)))
    head = body[:2048]
    declaration = _XML_DECLARATION.match(head)
    if declaration:
        found.append(("XML declaration", declaration.group(1).decode("ascii")))
    meta = _HTML_META_CHARSET.search(head)
    if meta:
        found.append(("HTML meta", meta.group(1).decode("ascii")))
    return found


def _bom_encoding(body: bytes) -> tuple[str, int] | None:
    for bom, name in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if body.startswith(bom):
            return name, len(bom)
    if body.startswith(b"<\x00?\x00"):
        return "utf-16-le", 0
    if body.startswith(b"\x00<\x00?"):
        return "utf-16-be", 0
    return None


def plausibility(text: str) -> float:
    """How much ``text`` looks like real writing in the region's languages (higher is better).

    Only non-ASCII characters count: letters score, letters in a word of mixed scripts or with an
    upper-case letter after a lower-case one (what a wrong Cyrillic code page produces) cost, and
    control characters and symbols cost more.
    """
    score = 0.0
    for word in _WORD.findall(text):
        if word.isascii():
            continue
        cyrillic = sum(1 for char in word if "\u0400" <= char <= "\u04ff")
        other = len(word) - cyrillic
        if cyrillic and any(char.isascii() and char.isalpha() for char in word):
            score -= 2 * cyrillic
            continue
        if cyrillic and other:
            score -= 2
            continue
        case_breaks = sum(1 for a, b in zip(word, word[1:], strict=False) if a.islower() and b.isupper())
        score -= 2 * case_breaks
        if cyrillic:
            score += cyrillic
        else:
            run = 0
            for char in word:
                run = run + 1 if not char.isascii() else 0
                if run >= 3:
                    score -= 2
            score += sum(1.0 if char in _BCMS_LETTERS else 0.5 for char in word if not char.isascii())
    for char in text:
        if char.isascii() or char.isalnum() or char.isspace():
            continue
        category = unicodedata.category(char)
        if category in ("Cc", "Co", "Cn", "Cs"):
            score -= 3
        elif category in ("So", "Sk", "Sc", "Sm"):
            score -= 1
    return score


def _guess_encoding(body: bytes) -> str:
    sample = body[:262_144]
    best_name, best_score = "utf-8", float("-inf")
    for name in _CANDIDATE_ENCODINGS:
        score = plausibility(sample.decode(name, errors="replace"))
        if score > best_score:
            best_name, best_score = name, score
    return best_name


def decode_document(body: bytes, headers: Mapping[str, str]) -> DecodedDocument:
    """Decode a feed body by the rules in this module's docstring."""
    notes: list[str] = []
    bom = _bom_encoding(body)
    if bom is not None:
        name, skip = bom
        return DecodedDocument(body[skip:].decode(name, errors="replace"), name, ())
    declared = _declared_encodings(body, headers)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        for source, label in declared:
            codec = _codec_name(label)
            if codec not in (None, "utf-8", "ascii") and not body.isascii():
                notes.append(f"{source} says {label!r} but the body is UTF-8: read as UTF-8")
                break
        return DecodedDocument(text, "utf-8", tuple(notes))
    for source, label in declared:
        codec = _codec_name(label)
        if codec is None:
            notes.append(f"{source} names unknown encoding {label!r}: ignored")
            continue
        if codec == "utf-8":
            notes.append(f"{source} says UTF-8 but the body is not valid UTF-8")
            continue
        if codec in _UNTRUSTED_DECLARATIONS:
            break  # often a server default: let the text decide below
        try:
            return DecodedDocument(body.decode(codec), codec, tuple(notes))
        except UnicodeDecodeError:
            notes.append(f"body has bytes that are not {label!r}: replaced")
            return DecodedDocument(body.decode(codec, errors="replace"), codec, tuple(notes))
    guessed = codecs.lookup(_guess_encoding(body)).name
    notes.append(f"encoding guessed from the text: {guessed}")
    return DecodedDocument(body.decode(guessed, errors="replace"), guessed, tuple(notes))


def _strip_doctype(text: str) -> tuple[str, bool]:
    """Remove the document type declaration and its internal subset.

    Feeds need no DTD, and entity declarations are how billion-laughs and quadratic-blowup documents
    work: expat stops them only after allocating a hundred megabytes or more.
    """
    start = text.upper().find("<!DOCTYPE", 0, 4096)
    if start < 0:
        return text, False
    close = text.find(">", start)
    bracket = text.find("[", start, close if close >= 0 else len(text))
    if bracket >= 0:
        subset_end = text.find("]", bracket)
        close = text.find(">", subset_end) if subset_end >= 0 else -1
    if close < 0:
        return text[:start], True
    return text[:start] + text[close + 1 :], True


def _prepare_for_feedparser(decoded: DecodedDocument) -> tuple[bytes, list[str]]:
    notes: list[str] = []
    text, stripped = _strip_doctype(decoded.text)
    if stripped:
        notes.append("removed the document type declaration (DTDs and entity declarations are not read)")
    text, removed = _INVALID_XML_CHARS.subn("", text)
    if removed:
        notes.append(f"removed {removed} characters that XML does not allow (NUL, controls)")
    text, cut = _AUTHOR_FIELD.subn(r"\1\2", text)
    if cut:
        notes.append(f"cut {cut} author fields to {MAX_AUTHOR_FIELD_CHARS} characters")
    text = _XML_DECLARATION_TEXT.sub(r"\1utf-8\3", text, count=1)
    return text.encode("utf-8"), notes


# --- dates --------------------------------------------------------------------------------------


def _region_date_handler(value: str) -> time.struct_time | None:
    """feedparser date handler for "12.05.2025 10:30" and "12. 5. 2025." (local time of the region)."""
    match = _REGION_DATE.match(value)
    if not match:
        return None
    day, month, year, hour, minute, second = match.groups()
    try:
        local = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=REGION_TIME_ZONE,
        )
    except ValueError:
        return None
    return local.astimezone(dt.UTC).timetuple()


feedparser.registerDateHandler(_region_date_handler)


def _to_utc(value: Any) -> dt.datetime | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        when = dt.datetime.fromtimestamp(calendar.timegm(value), tz=dt.UTC)
    except (OverflowError, ValueError, OSError):
        return None
    if not PLAUSIBLE_YEARS[0] <= when.year <= PLAUSIBLE_YEARS[1]:
        return None
    return when


# --- entries ------------------------------------------------------------------------------------


def _text(value: Any, max_chars: int) -> str:
    return html_to_text(value, max_chars) if isinstance(value, str) else ""


def _entry_link(entry: Any, base_url: str | None) -> str | None:
    candidates: list[str] = []
    if isinstance(entry.get("link"), str):
        candidates.append(entry["link"])
    for link in entry.get("links") or []:
        href = link.get("href") if isinstance(link, dict) else None
        if isinstance(href, str) and link.get("rel", "alternate") == "alternate":
            candidates.append(href)
    for candidate in candidates:
        href = candidate.strip()
        if not href:
            continue
        if base_url and not is_http_url(href):
            try:
                href = urljoin(base_url, href)
            except ValueError:
                continue
        if is_http_url(href) and len(href) <= MAX_URL_LENGTH and not any(c.isspace() for c in href):
            return href
    return None


def _build_entry(
    entry: Any, index: int, base_url: str | None, feed_language: str | None, errors: list[str]
) -> ParsedEntry | None:
    title = single_line(_text(entry.get("title"), MAX_TITLE_CHARS))
    link = _entry_link(entry, base_url)
    if link is None and (entry.get("link") or entry.get("links")):
        errors.append(f"entry {index}: link dropped: not an absolute http(s) URL")
    raw_guid = entry.get("id")
    guid = single_line(raw_guid)[:MAX_GUID_CHARS] if isinstance(raw_guid, str) else ""
    if not title and link is None and not guid:
        errors.append(f"entry {index}: no title, link or id: skipped")
        return None
    contents = entry.get("content") or []
    content_html = "\n\n".join(
        part.get("value", "")
        for part in contents
        if isinstance(part, dict) and isinstance(part.get("value"), str)
    )
    title_detail = entry.get("title_detail") or {}
    language = entry.get("language") or title_detail.get("language") or feed_language
    author = single_line(_text(entry.get("author"), MAX_AUTHOR_CHARS))
    published, updated, date_raw = entry_dates(entry)
    if date_raw is not None:
        errors.append(f"entry {index}: date {date_raw[:80]!r} unreadable: kept as written")
    return ParsedEntry(
        title=title,
        link=link,
        guid=guid or None,
        summary=_text(entry.get("summary"), MAX_SUMMARY_CHARS),
        content=_text(content_html, MAX_CONTENT_CHARS),
        published=published,
        updated=updated,
        author=author or None,
        language=language.strip()[:16] if isinstance(language, str) and language.strip() else None,
        date_raw=date_raw,
    )


def entry_dates(entry: Any) -> tuple[dt.datetime | None, dt.datetime | None, str | None]:
    """(published, updated, raw date string when none could be read): feedparser first, then
    dateparser for the strings feedparser left unread (see narrwatch.steps.poll.dates)."""
    from narrwatch.steps.poll.dates import read_date

    published = _to_utc(entry.get("published_parsed")) or _to_utc(entry.get("created_parsed"))
    updated = _to_utc(entry.get("updated_parsed"))
    if published is None:
        published = read_date(entry.get("published")) or read_date(entry.get("created"))
    if updated is None:
        updated = read_date(entry.get("updated"))
    raw = None
    if published is None and updated is None:
        for key in ("published", "updated", "created"):
            value = entry.get(key)
            if isinstance(value, str) and value.strip():
                raw = single_line(value)[:200]
                break
    return published, updated, raw


def _newest_first(raw_entries: list[Any], limit: int) -> list[Any]:
    """The ``limit`` newest entries, in document order. Feeds list newest first or oldest first;
    a long feed cut to its first items would keep the oldest ones of an oldest-first feed. Undated
    entries rank after dated ones, in document order."""
    ranked: list[tuple[int, float, int]] = []
    for position, entry in enumerate(raw_entries):
        when = None
        for key in ("published_parsed", "updated_parsed", "created_parsed"):
            when = _to_utc(entry.get(key))
            if when is not None:
                break
        ranked.append((0 if when is not None else 1, -(when.timestamp() if when else 0.0), position))
    kept = sorted(sorted(ranked)[:limit], key=lambda item: item[2])
    return [raw_entries[position] for _, _, position in kept]


def parse_document(
    body: bytes, headers: Mapping[str, str], base_url: str | None, max_entries: int
) -> ParsedFeed:
    """Parse one feed document in this process. Never raises for bad input: problems go to errors.

    This is what runs inside the isolated worker; call :meth:`FeedParser.parse` from anywhere else.
    """
    decoded = decode_document(body, headers)
    data, notes = _prepare_for_feedparser(decoded)
    media_type = (_header(headers, "content-type") or "application/xml").split(";")[0].strip()
    feed_headers = {"content-type": f"{media_type or 'application/xml'}; charset=utf-8"}
    if base_url:
        feed_headers["content-location"] = base_url
    result = feedparser.parse(
        io.BytesIO(data), response_headers=feed_headers, sanitize_html=False, resolve_relative_uris=False
    )
    errors: list[str] = [*decoded.notes, *notes]
    if result.get("bozo"):
        exception = result.get("bozo_exception")
        errors.append(
            f"not well-formed ({type(exception).__name__}: {str(exception)[:300]}): parsed leniently"
        )
    feed = result.get("feed") or {}
    feed_language = feed.get("language") if isinstance(feed.get("language"), str) else None
    raw_entries = list(result.get("entries") or [])
    dropped: dict[str, int] = {}
    chosen = raw_entries
    if len(raw_entries) > max_entries:
        chosen = _newest_first(raw_entries, max_entries)
        dropped["older than the newest entries kept (entry cap)"] = len(raw_entries) - len(chosen)
        errors.append(f"truncated: kept the {len(chosen)} newest of {len(raw_entries)} entries")
    entries: list[ParsedEntry] = []
    for index, raw in enumerate(chosen):
        entry = _build_entry(raw, index, base_url, feed_language, errors)
        if entry is not None:
            entries.append(entry)
        else:
            dropped["no title, link or id"] = dropped.get("no title, link or id", 0) + 1
    n_undated = sum(1 for entry in entries if entry.published is None and entry.updated is None)
    version = result.get("version") or ""
    if not version and not entries:
        errors.append("not a feed: no RSS, Atom or RDF document found")
    if len(errors) > MAX_ERRORS:
        errors = [*errors[:MAX_ERRORS], f"... and {len(errors) - MAX_ERRORS} more"]
    feed_link = _entry_link(feed, base_url)
    return ParsedFeed(
        title=single_line(_text(feed.get("title"), MAX_TITLE_CHARS)),
        link=feed_link,
        language=feed_language.strip()[:16] if feed_language else None,
        entries=tuple(entries),
        errors=tuple(errors),
        n_undated=n_undated,
        truncated=len(raw_entries) > max_entries,
        extra={"version": version, "encoding": decoded.encoding},
        dropped=dropped,
        n_found=len(raw_entries),
    )


def is_feed(parsed: ParsedFeed) -> bool:
    """A document feedparser recognised as a feed, or one that yielded entries anyway."""
    return bool(parsed.extra.get("version")) or bool(parsed.entries)


class FeedParser:
    """Parses feed bodies in isolated worker processes under a time budget."""

    TARGET = "narrwatch.steps.poll.parse:parse_document"

    def __init__(self, runner: IsolatedRunner, *, timeout_s: float, max_entries: int) -> None:
        self.runner = runner
        self.timeout_s = timeout_s
        self.max_entries = max_entries
        self.last_peak_rss_bytes = 0

    def parse(self, body: bytes, headers: Mapping[str, str], base_url: str | None) -> ParsedFeed:
        try:
            result = self.runner.run(
                self.TARGET, (bytes(body), dict(headers), base_url, self.max_entries), self.timeout_s
            )
        except TaskFailed as exc:
            raise FeedParseError(f"parser {exc.reason}: {exc}") from exc
        self.last_peak_rss_bytes = result.peak_rss_bytes
        parsed = result.value
        if not isinstance(parsed, ParsedFeed):
            raise FeedParseError(f"parser returned {type(parsed).__name__}, not a ParsedFeed")
        return parsed
