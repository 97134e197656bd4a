"""Folding text for search, so that "muller" finds Müller and "strasse" finds Straße on SQLite and
PostgreSQL alike (neither `unaccent` nor ICU collations are needed: the folded form is stored)."""

from __future__ import annotations

import unicodedata

# Letters that NFKD does not decompose into a base letter and a mark, spelt as people type them.
_BASE_LETTERS = str.maketrans(
    {"ø": "o", "đ": "d", "ð": "d", "ł": "l", "ħ": "h", "ı": "i", "þ": "th", "æ": "ae", "œ": "oe"}
)


def fold(text: str) -> str:
    """Lower case without accents, whitespace collapsed: "  Chloé  MÜLLER " → "chloe muller"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(bare.translate(_BASE_LETTERS).split())


def words(query: str) -> list[str]:
    """The folded words of a search query, each to be found somewhere in the folded text."""
    return fold(query).split()
