"""Field types of object bodies: each checks one value and raises a typed ObjectError."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Protocol

from protocols import errors
from protocols.limits import ID_BYTES, MAX_INT, MAX_LABEL_CHARS, MIN_INT

# Control characters other than tab and newline are refused in every string.
_BAD_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LABEL = re.compile(r"[^\W_][\w-]*")


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
        if not self.allow_empty and (not value or value.isspace()):
            raise errors.EmptyString(f"{name} must not be empty")
        if value.isprintable():  # the common case, in C: no control character, one line
            return
        if _BAD_CONTROL.search(value):
            raise errors.BadText(f"{name} contains a control character")
        if not self.multiline and ("\n" in value or "\t" in value):
            raise errors.BadText(f"{name} must be a single line")


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
    if not _LABEL.fullmatch(value) or unicodedata.normalize("NFC", value).lower() != value:
        raise errors.BadLabel(
            f"{name} {value!r} must be lowercase letters, digits, '-' or '_' "
            "(starting with a letter or digit)"
        )


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
