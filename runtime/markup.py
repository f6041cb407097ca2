"""HTML for `format=html`: the text between tags is translated, the markup kept as it is.

The page is cut into tags (with comments, doctypes and the contents of <script> and <style>, which
are not text to translate) and the text between them; each text node is translated as a text of its
own (entities decoded before, the result escaped after), its surrounding whitespace kept.
"""
from __future__ import annotations

import html
import re

# a comment, a <script>/<style> element whole, or any other tag / doctype / processing instruction
_MARKUP = re.compile(r"<!--.*?-->|<(script|style)\b.*?</\1\s*>|<[^>]*>", re.S | re.I)


def split_html(page: str) -> list[tuple[bool, str]]:
    """-> [(is_text, piece)] in order; "".join(pieces) == page."""
    pieces, pos = [], 0
    for m in _MARKUP.finditer(page):
        if m.start() > pos:
            pieces.append((True, page[pos: m.start()]))
        pieces.append((False, m.group()))
        pos = m.end()
    if pos < len(page):
        pieces.append((True, page[pos:]))
    return pieces


def text_nodes(page: str) -> list[str]:
    """The page's text to translate, entities decoded (whitespace-only nodes included: they come back as they are)."""
    return [html.unescape(piece) for is_text, piece in split_html(page) if is_text]


def rebuild(page: str, translations: list[str]) -> str:
    """The page with its text nodes replaced by translations (in text_nodes' order), escaped for HTML."""
    out, it = [], iter(translations)
    for is_text, piece in split_html(page):
        out.append(html.escape(next(it), quote=False) if is_text else piece)
    return "".join(out)
