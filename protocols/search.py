"""Words for the search index: the same tokenizer on the indexing and the query side."""

from __future__ import annotations

import re
import unicodedata

MIN_WORD_CHARS = 2
MAX_WORD_CHARS = 32
MAX_QUERY_WORDS = 8
_WORD = re.compile(r"[^\W_]+")


# ASCII fast path of the same rule (the ingest hot path: most text is ASCII): letters and
# digits lowercased, every other character a separator. NFC and casefold leave ASCII as is.
_ASCII_WORDS = str.maketrans(
    {chr(c): (chr(c).lower() if chr(c).isalnum() else " ") for c in range(128)}
)


# The same fast path on bytes, for the index (its keys are bytes): bytes.translate is one
# table lookup a byte, str.translate with a dict one lookup a character (measured on
# bench/ingest.py's projects: 11 -> 5 us a title and summary).
_ASCII_WORD_BYTES = bytes(
    ord(chr(c).lower()) if c < 128 and chr(c).isalnum() else 0x20 for c in range(256)
)


def words_of(text: str) -> set[str]:
    """Lowercased NFC words of `text` (letters/digits runs), 2..32 characters."""
    if text.isascii():
        found = set(text.translate(_ASCII_WORDS).split())
    else:
        found = set(_WORD.findall(unicodedata.normalize("NFC", text).casefold()))
    if not found:
        return found
    lengths = list(map(len, found))
    if min(lengths) < MIN_WORD_CHARS or max(lengths) > MAX_WORD_CHARS:
        return {w for w in found if MIN_WORD_CHARS <= len(w) <= MAX_WORD_CHARS}
    return found


def word_keys_of(text: str) -> set[bytes]:
    """`words_of(text)`, each word UTF-8 encoded (the search index's form)."""
    if not text.isascii():
        return {w.encode() for w in words_of(text)}
    found = set(text.encode().translate(_ASCII_WORD_BYTES).split())
    if not found:
        return found
    lengths = list(map(len, found))  # ASCII: bytes are characters
    if min(lengths) < MIN_WORD_CHARS or max(lengths) > MAX_WORD_CHARS:
        return {w for w in found if MIN_WORD_CHARS <= len(w) <= MAX_WORD_CHARS}
    return found


def query_words(query: str) -> list[str]:
    """Words of a search query, in order, at most MAX_QUERY_WORDS; the last may be a prefix."""
    norm = unicodedata.normalize("NFC", query).casefold()
    # Longer words are cut to the indexed length (keeps index keys far below LMDB's limit).
    return [w[:MAX_WORD_CHARS] for w in _WORD.findall(norm)[:MAX_QUERY_WORDS]]
