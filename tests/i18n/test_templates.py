"""No visible English left outside the translation tags in the templates.

A small scan, not an HTML parser: it removes comments, scripts, the translation tags and every
other template tag and variable, then looks at what a reader sees (the text between tags and
the attributes read aloud or shown) and at English literals in ``default`` and ``yesno``
filters. What remains with letters in it must be on the allow-list: names and symbols that
are the same in every language.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

TEMPLATES = Path(settings.BASE_DIR) / "templates"

# Product names, formats and units that read the same in German.
ALLOWED = {"CSV", "JSON", "HTTP", "Jira", "Swagger", "webhook-id", "ms", "+30 s", "UTC"}

_REMOVE = [
    re.compile(r"\{%\s*comment\s*%\}.*?\{%\s*endcomment\s*%\}", re.S),
    re.compile(r"\{#.*?#\}", re.S),
    re.compile(r"<!--.*?-->", re.S),
    re.compile(r"<(script|style)\b[^>]*>.*?</\1>", re.S | re.I),
    re.compile(r"\{%\s*blocktranslate\b.*?\{%\s*endblocktranslate\s*%\}", re.S),
    re.compile(r"\{%.*?%\}", re.S),
    re.compile(r"\{\{.*?\}\}", re.S),
]
_VISIBLE_ATTRIBUTES = re.compile(
    r"\b(?:title|aria-label|placeholder|alt|data-confirm)=\"([^\"]*)\"", re.I
)
_ENGLISH_FILTER_LITERAL = re.compile(r"\|(?:default|yesno):\"([^\"]*[A-Za-z]{2,}[^\"]*)\"")


def untranslated(source: str, *, html: bool) -> list[str]:
    """The visible English of one template, in order."""
    found = [s for s in _ENGLISH_FILTER_LITERAL.findall(source) if s not in ALLOWED]
    text = source
    for pattern in _REMOVE:
        text = pattern.sub(" ", text)
    pieces = _VISIBLE_ATTRIBUTES.findall(text)
    if html:
        text = _VISIBLE_ATTRIBUTES.sub(" ", text)
        pieces += re.findall(r">([^<>]*)<", text)
        # Text before the first tag or after the last one (a fragment's edges).
        pieces += [text.split("<", 1)[0], text.rsplit(">", 1)[-1]]
    else:
        pieces.append(text)
    for piece in pieces:
        for chunk in re.split(r"[\n|·•:;,()\[\]<>*\u2013\u2014]+|&\w+;|\s-+\s", piece):
            chunk = chunk.strip().strip(".!?…").strip()
            if re.search(r"[A-Za-z]", chunk) and chunk not in ALLOWED:
                found.append(chunk)
    return found


def _templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*") if p.suffix in (".html", ".txt"))


@pytest.mark.parametrize("path", _templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_a_template_shows_no_untranslated_text(path):
    assert untranslated(path.read_text(encoding="utf-8"), html=path.suffix == ".html") == []


@pytest.mark.parametrize(
    ("source", "html", "expected"),
    [
        ("<p>Log in</p>", True, ["Log in"]),
        ('<button aria-label="Close">✕</button>', True, ["Close"]),
        ('{% load i18n %}<p>{% translate "Log in" %}</p>', True, []),
        ("<p>{% blocktranslate %}Hi {{ name }}{% endblocktranslate %}</p>", True, []),
        ('<p>{{ value|default:"none yet" }}</p>', True, ["none yet"]),
        ("<p>{{ count }} · ☕ · 42</p>", True, []),
        ("<p>{# Nothing to see #}<code>CSV</code></p>", True, []),
        ("Hello {{ name }},\n{% translate 'Bye' %}", False, ["Hello"]),
    ],
)
def test_the_scan_finds_english_outside_the_tags(source, html, expected):
    assert untranslated(source, html=html) == expected
