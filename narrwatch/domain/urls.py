"""Canonical URLs (the article dedup key) and the stable vector point ids derived from them.

``canonical_url`` is a *key*, never fetched or shown: ``Article.url`` keeps the URL as served. The rules
(version :data:`CANON_VERSION`; bump it when they change, stored keys were made by the old rules):

* scheme ``http`` and ``https`` are one key (``https``); other schemes are refused;
* host lowercased, IDN hosts to punycode, a trailing dot dropped, the ``www.``, ``m.``, ``mobile.`` and
  ``amp.`` prefixes dropped (mobile and AMP mirrors of one article); default ports dropped;
* the fragment dropped; user info dropped;
* tracking parameters dropped (``utm_*``, click ids, mailing-list and social share ids, the lists
  of Miniflux's URL cleaner and Firefox's query stripping), the rest sorted by name;
* AMP path variants (``/amp``, ``/amp/``, ``.amp``, ``?amp=1``, ``?outputType=amp``) reduced to the
  page itself;
* the path keeps its case (it is case-sensitive on most servers); percent-escapes are normalised
  (unreserved characters decoded, hex upper case, non-ASCII encoded as UTF-8) so a Cyrillic slug and
  its escaped form are one key; a trailing slash on a non-root path is dropped; empty path is ``/``.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

CANON_VERSION = 1

#: Longest canonical URL kept (Media Cloud's MAX_URL; the column is VARCHAR(2048)).
MAX_URL_LENGTH = 2048

#: Namespace of Qdrant point ids. Pinned forever: changing it orphans every stored vector.
POINT_NAMESPACE = uuid.UUID("6f1c2a52-3b0e-5d4f-9a57-2f3c8d1e7b40")

_TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid",
        "ttclid", "li_fat_id", "igshid", "igsh", "mc_cid", "mc_eid", "mkt_tok", "_hsenc", "_hsmi",
        "hsctatracking", "oly_anon_id", "oly_enc_id", "vero_conv", "vero_id", "rb_clickid", "s_cid",
        "wt_mc", "wt.mc_id", "at_medium", "at_campaign", "at_custom1", "at_custom2", "at_custom3",
        "at_custom4", "cmpid", "ocid", "ncid", "sr_share", "spm", "scm", "_ga", "_gl", "ref_src",
        "ref_url", "feature", "share", "shared", "rss", "from_rss", "rss_source", "xtor",
        "__twitter_impression",
    }
)  # fmt: skip
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hmb_", "itm_", "__hs", "ga_", "matomo_")
_AMP_PARAMS = {"amp": {"", "1", "true"}, "outputtype": {"amp"}, "output": {"amp"}}
_HOST_PREFIXES = ("www.", "m.", "mobile.", "amp.")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"


class UrlError(ValueError):
    """A URL that cannot be an article key (not http(s), no host, too long)."""


def canonicalize_url(url: str) -> str:
    """The dedup key of ``url`` under the rules in this module's docstring; idempotent."""
    text = url.strip()
    if not text:
        raise UrlError("empty URL")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UrlError(f"malformed URL {url[:200]!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UrlError(f"not an http(s) URL: {url[:200]!r}")
    host = _canonical_host(parts.hostname or "")
    if not host:
        raise UrlError(f"URL has no host: {url[:200]!r}")
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _strip_amp_path(_canonical_path(parts.path))
    query = _canonical_query(parts.query)
    canonical = urlunsplit(("https", netloc, path, query, ""))
    if len(canonical) > MAX_URL_LENGTH:
        raise UrlError(f"URL longer than {MAX_URL_LENGTH} characters")
    return canonical


def point_uuid(canonical_url: str, passage_idx: int) -> str:
    """Qdrant point id of passage ``passage_idx`` of the article with this canonical URL."""
    if passage_idx < 0:
        raise ValueError("passage_idx must be >= 0")
    return str(uuid.uuid5(POINT_NAMESPACE, f"{canonical_url}#{passage_idx}"))


def is_http_url(url: str) -> bool:
    """True for an absolute http(s) URL with a host, the only links narrwatch stores or follows."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in _DEFAULT_PORTS and bool(parts.hostname)


def is_loopback_url(url: str) -> bool:
    """The URL's host is this machine (localhost or a loopback address)."""
    import ipaddress

    host = (urlsplit(url if "://" in url else f"http://{url}").hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _canonical_host(hostname: str) -> str:
    host = hostname.strip().rstrip(".").lower()
    if not host:
        return ""
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            host = quote(host, safe="")
    stripped = True
    while stripped:
        stripped = False
        for prefix in _HOST_PREFIXES:
            # Keep at least "name.tld": "m.rs" is a domain, not a mobile mirror.
            if host.startswith(prefix) and host.count(".") >= 2:
                host = host[len(prefix) :]
                stripped = True
    return host


def _normalise_escapes(text: str, safe: str) -> str:
    """Decode escapes of unreserved characters, upper-case the rest, encode what must be encoded."""

    def _fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    # quote() leaves existing escapes alone ('%' is safe) and encodes non-ASCII as UTF-8.
    return quote(_ESCAPE.sub(_fix, text), safe=safe)


def _canonical_path(path: str) -> str:
    path = _normalise_escapes(path, _PATH_SAFE) or "/"
    path = re.sub(r"/{2,}", "/", path)
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


def _strip_amp_path(path: str) -> str:
    while True:
        lowered = path.lower()
        if lowered.endswith("/amp"):
            path = path[: -len("/amp")]
        elif lowered.endswith(".amp.html"):
            path = path[: -len(".amp.html")] + ".html"
        elif lowered.endswith(".amp"):
            path = path[: -len(".amp")]
        else:
            return path.rstrip("/") or "/"


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in _TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES)


def _is_amp_param(name: str, value: str) -> bool:
    allowed = _AMP_PARAMS.get(name.lower())
    return allowed is not None and value.lower() in allowed


def _canonical_query(query: str) -> str:
    if not query:
        return ""
    # parse_qsl decodes escapes and '+'; urlencode below re-encodes one way, so the key is stable.
    pairs = [
        (name, value)
        for name, value in parse_qsl(query, keep_blank_values=True)
        if not _is_tracking(name) and not _is_amp_param(name, value)
    ]
    # Stable sort: the order of repeated names is kept, since some servers read it.
    pairs.sort(key=lambda pair: pair[0])
    return urlencode(pairs, quote_via=quote, safe="/:@!$'()*,;~")
