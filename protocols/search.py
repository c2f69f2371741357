"""Words for the search index: the same tokenizer on the indexing and the query side."""

from __future__ import annotations

import re
import unicodedata

MIN_WORD_CHARS = 2
MAX_WORD_CHARS = 32
MAX_QUERY_WORDS = 8
_WORD = re.compile(r"[^\W_]+(?:[-_][^\W_]+)*")


def words_of(text: str) -> set[str]:
    """Lowercased NFC words of `text`, 2..32 characters, hyphenated words kept whole."""
    norm = unicodedata.normalize("NFC", text).casefold()
    out: set[str] = set()
    for match in _WORD.finditer(norm):
        word = match.group()
        if MIN_WORD_CHARS <= len(word) <= MAX_WORD_CHARS:
            out.add(word)
            if "-" in word or "_" in word:
                out.update(p for p in re.split(r"[-_]", word) if len(p) >= MIN_WORD_CHARS)
    return out


def query_words(query: str) -> list[str]:
    """Words of a search query, in order, at most MAX_QUERY_WORDS; the last may be a prefix."""
    norm = unicodedata.normalize("NFC", query).casefold()
    return [m.group() for m in _WORD.finditer(norm)][:MAX_QUERY_WORDS]
