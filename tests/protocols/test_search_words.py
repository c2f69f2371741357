"""The tokenizer's ASCII fast path gives exactly the general rule's words."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from protocols.search import MAX_WORD_CHARS, MIN_WORD_CHARS, word_keys_of, words_of

_WORD = re.compile(r"[^\W_]+")


def general_rule(text: str) -> set[str]:
    norm = unicodedata.normalize("NFC", text).casefold()
    return {w for w in _WORD.findall(norm) if MIN_WORD_CHARS <= len(w) <= MAX_WORD_CHARS}


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_text(text: str) -> None:
    assert words_of(text) == general_rule(text)


@given(st.text(alphabet="aZ9 _-\n\té\u0301ß" + "x" * 40, max_size=120))
def test_mixed_text_and_word_lengths(text: str) -> None:
    assert words_of(text) == general_rule(text)


def test_examples() -> None:
    assert words_of("Solar-DRYER, v2_kit x") == {"solar", "dryer", "v2", "kit"}
    assert words_of("a" * 33 + " ok") == {"ok"}


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_index_keys_are_the_ascii_words_encoded(text: str) -> None:
    assert word_keys_of(text) == {w.encode() for w in general_rule(text)}


@given(st.text(alphabet="aZ9 _-\n\té\u0301ß" + "x" * 40, max_size=120))
def test_index_keys_of_mixed_text_are_its_words_encoded(text: str) -> None:
    assert word_keys_of(text) == {w.encode() for w in general_rule(text)}
