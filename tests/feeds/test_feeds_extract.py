"""Full text of article pages through the guarded fetcher and trafilatura."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from feeds_support import LoopbackServer

from narrwatch.config import Settings
from narrwatch.steps.poll.extract import EXTRACTOR, ArticleExtractor
from narrwatch.steps.poll.fetch import GuardedFetcher
from narrwatch.steps.poll.isolate import IsolatedRunner

PARAGRAPHS = [
    "Vlada Srbije usvojila je u četvrtak predlog zakona o budžetu za narednu godinu, "
    "koji predviđa veća izdvajanja za infrastrukturu i zdravstvo.",
    "Ministar finansija rekao je na konferenciji za novinare da će deficit ostati ispod tri odsto "
    "bruto domaćeg proizvoda, uprkos rastu rashoda za plate u javnom sektoru.",
    "Opozicija je kritikovala predlog, navodeći da budžet ne predviđa dovoljno sredstava za "
    "obrazovanje i da je rasprava u skupštini zakazana prebrzo.",
]
ARTICLE = f"""<!DOCTYPE html><html lang="sr"><head><meta charset="utf-8"><title>Budžet</title>
<script>var tracking = "NOT ARTICLE TEXT";</script></head><body>
<nav><a href="/">Početna</a> | <a href="/politika">Politika</a> | <a href="/sport">Sport</a></nav>
<article><h1>Vlada usvojila predlog budžeta</h1>
{"".join(f"<p>{p}</p>" for p in PARAGRAPHS)}
</article>
<aside>Najčitanije: Horoskop za danas</aside><footer>© Portal 2026. Sva prava zadržana.</footer>
</body></html>""".encode()


@pytest.fixture
def extractor(settings: Settings) -> Iterator[ArticleExtractor]:
    with GuardedFetcher(settings) as fetcher, IsolatedRunner(1) as runner:
        yield ArticleExtractor(fetcher, runner, timeout_s=20)


def test_article_text_is_extracted_as_plain_text(server: LoopbackServer, extractor: ArticleExtractor) -> None:
    url = server.serve("/clanak", ARTICLE, headers={"Content-Type": "text/html; charset=utf-8"})
    result = extractor.extract(url)
    assert result.error is None and result.text is not None
    assert result.extractor == EXTRACTOR and EXTRACTOR.startswith("trafilatura-")
    for paragraph in PARAGRAPHS:
        assert paragraph in result.text
    assert "NOT ARTICLE TEXT" not in result.text and "<p>" not in result.text


@pytest.mark.parametrize(
    ("path", "body", "headers", "error"),
    [
        ("/missing", None, None, "fetch: soft: HTTP 404"),
        ("/pdf", b"%PDF-1.7 ...", {"Content-Type": "application/pdf"}, "not an HTML page (application/pdf)"),
        (
            "/stub",
            b"<html><body><p>Prijavite se.</p></body></html>",
            {"Content-Type": "text/html"},
            "no article text found",
        ),
    ],
)
def test_pages_without_article_text_report_why(
    server: LoopbackServer,
    extractor: ArticleExtractor,
    path: str,
    body: bytes | None,
    headers: dict[str, str] | None,
    error: str,
) -> None:
    if body is not None:
        server.serve(path, body, headers=headers)
    result = extractor.extract(server.url(path))
    assert result.text is None and result.error is not None and error in result.error


def test_article_links_to_private_addresses_are_refused(server: LoopbackServer, settings: Settings) -> None:
    url = server.serve("/clanak", ARTICLE, headers={"Content-Type": "text/html"})
    strict = settings.model_copy(update={"allow_private_networks": False})
    with GuardedFetcher(strict) as fetcher, IsolatedRunner(1) as runner:
        result = ArticleExtractor(fetcher, runner, timeout_s=20).extract(url)
    assert result.text is None and result.error is not None and "hard" in result.error
    assert server.hits("/clanak") == 0
