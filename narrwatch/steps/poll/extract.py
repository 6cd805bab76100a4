"""Full text of article pages: fetched through the guarded fetcher, extracted with trafilatura.

Article links come from feeds, i.e. from whoever controls a feed, so the page is fetched with every
guard of :mod:`narrwatch.steps.poll.fetch` (the SSRF check included) and the extraction (lxml on hostile
HTML) runs in the isolated worker under the same time budget as parsing. The result is plain text;
``extractor`` records which extractor and version produced it (``Article.text_source``).
"""

from __future__ import annotations

from dataclasses import dataclass

from narrwatch.domain.text import clean_text, truncate
from narrwatch.steps.poll.fetch import HTML_ACCEPT, GuardedFetcher
from narrwatch.steps.poll.isolate import IsolatedRunner, TaskFailed
from narrwatch.steps.poll.tool_version import tool_name

#: Longest article text kept.
MAX_TEXT_CHARS = 200_000
#: Article pages larger than this are not worth extracting (real pages are a few hundred KB).
MAX_PAGE_BYTES = 5 * 1024 * 1024
#: Extracted texts shorter than this are navigation or paywall stubs, not articles.
MIN_TEXT_CHARS = 200
_HTML_TYPES = ("text/html", "application/xhtml+xml")


EXTRACTOR = tool_name("trafilatura", "trafilatura")


@dataclass(frozen=True)
class Extraction:
    text: str | None
    extractor: str
    final_url: str
    error: str | None = None


def extract_html_text(html: bytes, url: str) -> str | None:
    """Run inside the isolated worker: trafilatura's main-text extraction as plain text."""
    import trafilatura

    text = trafilatura.extract(
        html,
        url=url,
        output_format="txt",
        include_comments=False,
        include_tables=False,
        include_images=False,
        include_links=False,
        favor_precision=True,
        deduplicate=False,
    )
    return text if isinstance(text, str) else None


class ArticleExtractor:
    def __init__(self, fetcher: GuardedFetcher, runner: IsolatedRunner, *, timeout_s: float) -> None:
        self.fetcher = fetcher
        self.runner = runner
        self.timeout_s = timeout_s

    def extract(self, url: str) -> Extraction:
        """Fetch ``url`` and extract its main text; failures come back in ``error``, never raised."""
        result = self.fetcher.fetch(url, accept=HTML_ACCEPT, max_bytes=MAX_PAGE_BYTES)
        if result.error is not None:
            return Extraction(None, EXTRACTOR, result.final_url, f"fetch: {result.error}")
        content_type = result.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type and content_type not in _HTML_TYPES:
            return Extraction(None, EXTRACTOR, result.final_url, f"not an HTML page ({content_type})")
        try:
            extracted = self.runner.run(
                "narrwatch.steps.poll.extract:extract_html_text",
                (result.body, result.final_url),
                self.timeout_s,
            ).value
        except TaskFailed as exc:
            return Extraction(None, EXTRACTOR, result.final_url, f"extraction {exc.reason}: {exc}")
        text = truncate(clean_text(extracted or "").strip(), MAX_TEXT_CHARS)
        if len(text) < MIN_TEXT_CHARS:
            return Extraction(None, EXTRACTOR, result.final_url, "no article text found on the page")
        return Extraction(text, EXTRACTOR, result.final_url)
