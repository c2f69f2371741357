"""The recovery phrase: the root seed as 60 Crockford base32 characters in 12 groups of 5.

The first 52 characters are the 256-bit seed (big-endian, the last 4 bits zero); the last 8
are a 40-bit check: the first 5 bytes of SHA-256(CHECK_LABEL + the 52 data characters).
Reading folds case, ignores spaces and dashes, and takes I/L as 1 and O as 0 (Crockford). A
phrase that fails the check is tried with each single character changed: one mistyped
character is named (group and position) with what it probably should be.
"""

from __future__ import annotations

import hashlib
from typing import Final

from node.keys.keyfile import KeyFileError

ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
ALIASES: Final = {"I": "1", "L": "1", "O": "0"}
SEED_BYTES: Final = 32
DATA_CHARS: Final = 52  # ceil(256 / 5)
CHECK_CHARS: Final = 8  # 40 bits
PHRASE_CHARS: Final = DATA_CHARS + CHECK_CHARS
GROUP: Final = 5
PAD_BITS: Final = DATA_CHARS * 5 - SEED_BYTES * 8
CHECK_LABEL: Final = b"percolab-recovery-phrase/v1:"


class PhraseError(KeyFileError):
    """A recovery phrase that cannot be read; the message says what is wrong where."""


def _check(data: str) -> str:
    digest = int.from_bytes(hashlib.sha256(CHECK_LABEL + data.encode("ascii")).digest()[:5])
    return "".join(ALPHABET[(digest >> (5 * i)) & 31] for i in reversed(range(CHECK_CHARS)))


def encode_phrase(seed: bytes) -> str:
    if len(seed) != SEED_BYTES:
        raise ValueError(f"a seed is {SEED_BYTES} bytes")
    number = int.from_bytes(seed) << PAD_BITS
    data = "".join(ALPHABET[(number >> (5 * i)) & 31] for i in reversed(range(DATA_CHARS)))
    chars = data + _check(data)
    return " ".join(chars[i : i + GROUP] for i in range(0, PHRASE_CHARS, GROUP))


def _where(index: int) -> str:
    return f"character {index % GROUP + 1} of group {index // GROUP + 1}"


def _valid(chars: str) -> bool:
    data = chars[:DATA_CHARS]
    last = ALPHABET.index(data[-1])
    return last & ((1 << PAD_BITS) - 1) == 0 and _check(data) == chars[DATA_CHARS:]


def decode_phrase(text: str) -> bytes:
    """The root seed in a recovery phrase; PhraseError says what is wrong (a character that
    is not in the alphabet, a wrong length, a mistyped character and where it is)."""
    chars = ""
    for c in text.upper():
        if c in " -\t\n":
            continue
        c = ALIASES.get(c, c)
        if c not in ALPHABET:
            shown = c if c.isprintable() else repr(c)
            raise PhraseError(f"the recovery phrase has {shown!r} at {_where(len(chars))}, "
                              "which is not a phrase character")  # fmt: skip
        chars += c
    if len(chars) != PHRASE_CHARS:
        raise PhraseError(f"a recovery phrase has {PHRASE_CHARS} characters "
                          f"({PHRASE_CHARS // GROUP} groups of {GROUP}); this one has "
                          f"{len(chars)}")  # fmt: skip
    if not _valid(chars):
        raise PhraseError(_diagnose(chars))
    value = 0
    for c in chars[:DATA_CHARS]:
        value = value << 5 | ALPHABET.index(c)
    return (value >> PAD_BITS).to_bytes(SEED_BYTES)


def _diagnose(chars: str) -> str:
    """Why a phrase of the right length fails its check: one character that, changed, makes
    it valid is named; otherwise more than one is wrong."""
    fixes = []
    for i, original in enumerate(chars):
        for c in ALPHABET:
            if c != original and _valid(chars[:i] + c + chars[i + 1 :]):
                fixes.append((i, c))
    if len(fixes) == 1:
        i, c = fixes[0]
        return (f"the recovery phrase has a mistyped character: {_where(i)} is "
                f"{chars[i]!r}, probably {c!r}")  # fmt: skip
    return ("the recovery phrase does not check out: more than one character is wrong "
            "(compare it with the printed copy group by group)")
