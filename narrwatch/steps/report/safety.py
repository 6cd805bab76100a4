"""Making feed text and links safe to show: every value from a feed passes through here.

Feed titles, summaries, evidence passages and links are written by whoever runs the outlet, so they
are untrusted. HTML output escapes them through Jinja2's autoescape; that is not enough for links
(``javascript:`` survives HTML escaping inside ``href``) nor for Markdown (which passes raw HTML and
link syntax through), so links are filtered to http(s) here and Markdown gets its own escaping.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote, urlsplit, urlunsplit

MAX_URL_CHARS = 2048

# Bidi embedding/override/isolate controls can make a title read backwards or hide its end.
_BIDI_CONTROLS = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
_WHITESPACE = re.compile(r"\s+")
# Markdown punctuation that can start markup inline: emphasis, code, links, images, raw HTML,
# tables, strike-through, entities, headings, and the backslash itself.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&])")
# Characters kept as they are in a URL path/query; everything else is percent-encoded, so a link
# can never close its Markdown destination or an HTML attribute.
_URL_SAFE = "/:@-._~!$&'*+,;=%?"


def plain_text(value: object, max_chars: int | None = None) -> str:
    """Feed text as one clean line: no control or bidi characters, whitespace collapsed, truncated."""
    if value is None:
        return ""
    text = str(value).translate(_BIDI_CONTROLS)
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf") else ch for ch in text)
    text = _WHITESPACE.sub(" ", text).strip()
    if max_chars is not None and len(text) > max_chars:
        cut = text[: max_chars - 1]
        space = cut.rfind(" ")
        if space > max_chars * 0.6:
            cut = cut[:space]
        text = cut.rstrip(" ,.;:") + "…"
    return text


def safe_url(value: object) -> str | None:
    """An http(s) URL re-encoded so it is inert in HTML attributes and Markdown; None for anything else.

    Schemes such as ``javascript:``, ``data:``, ``vbscript:`` and ``file:``, scheme-relative and
    relative links, URLs with credentials, and URLs with whitespace or control characters are
    dropped, not repaired: the reader then sees the title without a link.
    """
    if not isinstance(value, str):
        return None
    candidate = value.strip()
    if not candidate or len(candidate) > MAX_URL_CHARS:
        return None
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in candidate):
        return None
    try:
        parts = urlsplit(candidate)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https"):
        return None
    host = parts.hostname
    if not host or parts.username is not None or parts.password is not None:
        return None
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return None
    if not re.fullmatch(r"[A-Za-z0-9.\-:]+", ascii_host):
        return None
    host_part = f"[{ascii_host}]" if ":" in ascii_host else ascii_host  # IPv6 literal
    netloc = host_part if port is None else f"{host_part}:{port}"
    return urlunsplit(
        (
            parts.scheme.lower(),
            netloc,
            quote(parts.path, safe=_URL_SAFE),
            quote(parts.query, safe=_URL_SAFE),
            quote(parts.fragment, safe=_URL_SAFE),
        )
    )


def markdown_text(value: object, max_chars: int | None = None) -> str:
    """Untrusted text for Markdown: one line, every markup character backslash-escaped.

    CommonMark renders a backslash-escaped ASCII punctuation character as itself, so a title such
    as ``<img src=x onerror=...>`` or ``[click](javascript:...)`` shows as text in any renderer.
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", plain_text(value, max_chars))


def markdown_link(text: object, url: object, max_chars: int | None = None) -> str:
    """``[text](url)`` when the URL is http(s), otherwise just the escaped text."""
    label = markdown_text(text, max_chars) or "(untitled)"
    href = safe_url(url)
    if href is None:
        return label
    # safe_url percent-encodes parentheses, angle brackets and spaces, so the destination is closed
    # only by our own ``)``.
    return f"[{label}]({href})"
