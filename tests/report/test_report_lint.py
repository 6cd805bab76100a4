"""Nothing in narrwatch/report/ may switch escaping off: a grep over the code and the templates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from narrwatch.steps.report import render

REPORT_DIR = Path(render.__file__).resolve().parent

FORBIDDEN = {
    "|safe filter": re.compile(r"\|\s*safe\b"),
    "Markup(": re.compile(r"\bMarkup\s*\("),
    "markupsafe import": re.compile(r"\bimport\s+markupsafe\b|\bfrom\s+markupsafe\b"),
    "autoescape=False": re.compile(r"autoescape\s*=\s*False"),
    "autoescape false block": re.compile(r"{%-?\s*autoescape\s+false", re.IGNORECASE),
    "jinja2 Template(": re.compile(r"\bTemplate\s*\("),
    "from_string(": re.compile(r"\bfrom_string\s*\("),
    "script tag": re.compile(r"<script", re.IGNORECASE),
}


def violations(text: str) -> list[str]:
    return [name for name, pattern in FORBIDDEN.items() if pattern.search(text)]


def report_sources() -> list[Path]:
    files = [p for p in REPORT_DIR.rglob("*") if p.is_file() and p.suffix in {".py", ".j2", ".css", ".html"}]
    assert len(files) >= 8, files  # the package and its templates were found
    return files


@pytest.mark.parametrize("path", report_sources(), ids=lambda p: p.name)
def test_no_escape_hatch_in_report_code_or_templates(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    if path.name == "safety.py":  # names the schemes it drops
        text = text.replace("javascript:", "")
    assert violations(text) == [], f"{path}: {violations(text)}"


@pytest.mark.parametrize(
    "snippet",
    [
        "{{ article.title|safe }}",
        "{{ article.title | safe }}",
        "Markup(article.title)",
        "from markupsafe import Markup",
        "Environment(autoescape=False)",
        "{% autoescape false %}{{ x }}{% endautoescape %}",
        "jinja2.Template(text)",
        "env.from_string(text)",
        "<SCRIPT>",
    ],
)
def test_the_lint_catches_each_escape_hatch(snippet: str) -> None:
    assert violations(snippet)


def test_the_report_environment_escapes_every_template() -> None:
    env = render._ENV
    assert env.autoescape is not False
    for name in [*env.list_templates(), "anything.txt", None]:
        assert callable(env.autoescape) and env.autoescape(name), name
    html = env.from_string("<b title='{{ value }}'>{{ value }}</b>").render(value="<script>\"x'")
    assert html == "<b title='&lt;script&gt;&#34;x&#39;'>&lt;script&gt;&#34;x&#39;</b>"
