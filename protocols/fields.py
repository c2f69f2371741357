"""Field types of object bodies: each checks one value and raises a typed ObjectError."""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from protocols import errors
from protocols.licences import licence_syntax_error
from protocols.limits import ID_BYTES, MAX_INT, MAX_LABEL_CHARS, MAX_TOKEN_CHARS, MIN_INT
from protocols.unicode_tables import LABEL_REST, LABEL_START

# Text rules (docs/protocol.md §2), by explicit code points so that every implementation and
# Unicode version agrees:
# - refused in every text: C0 controls but tab and newline, DEL, C1 controls, and the bidi
#   embedding, override and isolate controls (the "Trojan Source" reordering attacks);
_REFUSED = "\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_BAD_MULTILINE = re.compile(f"[{_REFUSED}]")
# - refused too in single-line texts (names, titles, places): tab, newline, the line and
#   paragraph separators, and invisible characters that make two names look alike
#   (zero width space, word joiner, byte order mark, Mongolian vowel separator).
_BAD_SINGLE_LINE = re.compile(f"[{_REFUSED}\t\n\u2028\u2029\u200b\u2060\ufeff\u180e]")
# - "blank": White_Space code points plus the invisible format characters. A required text
#   must hold at least one code point outside this set.
BLANK = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\u180e\u200b\u200c\u200d\u2060\ufeff"
)
_ASCII_LABEL = re.compile(r"[a-z0-9][a-z0-9_-]*")
_TOKEN = re.compile(f"[a-z]{{1,{MAX_TOKEN_CHARS}}}")


class Field(Protocol):
    @property
    def required(self) -> bool: ...

    def check(self, name: str, value: Any) -> None: ...


@dataclass(frozen=True)
class Text:
    max_chars: int
    required: bool = True
    allow_empty: bool = True
    multiline: bool = False

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, str):
            raise errors.BadFieldType(f"{name} must be a string")
        if len(value) > self.max_chars:
            raise errors.StringTooLong(
                f"{name} is {len(value)} characters; the limit is {self.max_chars}"
            )
        if not self.allow_empty and not value.strip(BLANK):
            raise errors.EmptyString(f"{name} must not be empty")
        # isprintable() (in C) is True only without any Cc, Cf, Zl, Zp code point: the
        # common case, and then no refused character can be present.
        if value.isprintable():
            return
        bad = (_BAD_MULTILINE if self.multiline else _BAD_SINGLE_LINE).search(value)
        if bad:
            raise errors.BadText(
                f"{name} contains U+{ord(bad.group()):04X}, refused in "
                + ("any text" if self.multiline else "a single-line text")
            )


@dataclass(frozen=True)
class ObjectRef:
    """A reference to another object by its 32-byte id (or None when `nullable`)."""

    required: bool = True
    nullable: bool = False

    def check(self, name: str, value: Any) -> None:
        if value is None and self.nullable:
            return
        if not isinstance(value, bytes) or len(value) != ID_BYTES:
            raise errors.BadFieldType(f"{name} must be a {ID_BYTES}-byte object id")


@dataclass(frozen=True)
class Integer:
    minimum: int = MIN_INT
    maximum: int = MAX_INT
    required: bool = True

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise errors.BadFieldType(f"{name} must be an integer")
        if not self.minimum <= value <= self.maximum:
            raise errors.IntOutOfRange(
                f"{name}={value} is outside [{self.minimum}, {self.maximum}]"
            )


@dataclass(frozen=True)
class Choice:
    values: tuple[str, ...]
    required: bool = True

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, str):
            raise errors.BadFieldType(f"{name} must be a string")
        if value not in self.values:
            raise errors.BadValue(f"{name}={value!r} is not one of {', '.join(self.values)}")


def normalize_label(label: str) -> str:
    """The canonical form of a tag label as a member typed it: NFC, lowercase, trimmed,
    inner spaces turned into '-'. `check_label` accepts exactly these forms."""
    return "-".join(unicodedata.normalize("NFC", label).strip().lower().split())


def check_label(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise errors.BadFieldType(f"{name} must be a string")
    if not 1 <= len(value) <= MAX_LABEL_CHARS:
        raise errors.BadLabel(f"{name} must be 1..{MAX_LABEL_CHARS} characters")
    if not (value.isascii() and _ASCII_LABEL.fullmatch(value)) and not (
        _label_chars(value)
        and unicodedata.normalize("NFC", value) == value
        and value.lower() == value
    ):
        raise errors.BadLabel(
            f"{name} {value!r} must be lowercase letters, marks, decimal digits, '-' or '_' "
            "(starting with a letter or digit), NFC"
        )


def _in(table: tuple[int, ...], ch: str) -> bool:
    return bisect_right(table, ord(ch)) % 2 == 1


def _label_chars(value: str) -> bool:
    """Letters or decimal digits first, then letters, marks, decimal digits, '-' or '_'
    (general categories of Unicode 14.0: protocols/unicode_tables.py)."""
    return _in(LABEL_START, value[0]) and all(_in(LABEL_REST, ch) for ch in value[1:])


@dataclass(frozen=True)
class Label:
    required: bool = True

    def check(self, name: str, value: Any) -> None:
        check_label(name, value)


@dataclass(frozen=True)
class ListOf:
    item: Field
    max_items: int
    min_items: int = 0
    unique: bool = False
    required: bool = True
    # For lists of records (maps): items must differ in this key (`unique` compares whole
    # items, which only works for hashable ones: str, bytes, int).
    unique_key: str | None = None

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, list):
            raise errors.BadFieldType(f"{name} must be a list")
        if len(value) > self.max_items:
            raise errors.TooManyItems(
                f"{name} has {len(value)} items; the limit is {self.max_items}"
            )
        if len(value) < self.min_items:
            raise errors.TooManyItems(f"{name} needs at least {self.min_items} item(s)")
        for i, item in enumerate(value):
            self.item.check(f"{name}[{i}]", item)
        if self.unique and len(set(value)) != len(value):
            raise errors.BadValue(f"{name} has duplicate items")
        if self.unique_key is not None:
            keys = [item.get(self.unique_key) for item in value]  # items checked: maps
            if len(set(keys)) != len(keys):
                raise errors.BadValue(f"{name} has two items with the same {self.unique_key}")


@dataclass(frozen=True)
class Token:
    """A short lowercase word, `[a-z]{1,16}`: an open vocabulary (a pledge's type, how a
    project derives from another). Unknown words are valid: a later release may name more."""

    required: bool = True

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, str):
            raise errors.BadFieldType(f"{name} must be a string")
        if not _TOKEN.fullmatch(value):
            raise errors.BadValue(f"{name} must be 1..{MAX_TOKEN_CHARS} letters a-z")


@dataclass(frozen=True)
class Licence:
    """A licence statement: an SPDX licence expression (syntax only: whether its ids are on
    the SPDX list is a view matter), the exact text "all rights reserved", or "" (no licence
    stated). protocols/licences.py has the grammar."""

    max_chars: int
    required: bool = True

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, str):
            raise errors.BadFieldType(f"{name} must be a string")
        if len(value) > self.max_chars:
            raise errors.StringTooLong(
                f"{name} is {len(value)} characters; the limit is {self.max_chars}"
            )
        problem = licence_syntax_error(value)
        if problem:
            raise errors.BadValue(f"{name} {value!r} is not a licence: {problem}")


@dataclass(frozen=True)
class Record:
    """A map with str keys whose declared `fields` are checked like a body's (required ones
    present); keys it does not declare are kept, unread (a later release may add them).
    `min_entries`/`max_entries` bound the number of keys, declared or not."""

    fields: Mapping[str, Field]
    required: bool = True
    min_entries: int = 0
    max_entries: int | None = None

    def check(self, name: str, value: Any) -> None:
        if not isinstance(value, dict):
            raise errors.BadFieldType(f"{name} must be a map")
        if self.max_entries is not None and len(value) > self.max_entries:
            raise errors.TooManyItems(
                f"{name} has {len(value)} entries; the limit is {self.max_entries}"
            )
        if len(value) < self.min_entries:
            raise errors.TooManyItems(f"{name} needs at least {self.min_entries} entry(ies)")
        for key, fld in self.fields.items():
            if key not in value:
                if fld.required:
                    raise errors.MissingField(f"{name} needs field {key!r}")
                continue
            fld.check(f"{name}.{key}", value[key])
