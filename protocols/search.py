"""Words for the search index: the same tokenizer on the indexing and the query side."""

from __future__ import annotations

import re
import unicodedata

MIN_WORD_CHARS = 2
MAX_WORD_CHARS = 32
MAX_QUERY_WORDS = 8
_WORD = re.compile(r"[^\W_]+")


def words_of(text: str) -> set[str]:
    """Lowercased NFC words of `text` (letters/digits runs), 2..32 characters."""
    norm = unicodedata.normalize("NFC", text).casefold()
    return {w for w in _WORD.findall(norm) if MIN_WORD_CHARS <= len(w) <= MAX_WORD_CHARS}


def query_words(query: str) -> list[str]:
    """Words of a search query, in order, at most MAX_QUERY_WORDS; the last may be a prefix."""
    norm = unicodedata.normalize("NFC", query).casefold()
    # Longer words are cut to the indexed length (keeps index keys far below LMDB's limit).
    return [w[:MAX_WORD_CHARS] for w in _WORD.findall(norm)[:MAX_QUERY_WORDS]]
