"""Typed verdicts on objects: each failure has its own class, a stable code and a message.

Every decoder and validator in `protocols` raises only subclasses of `ObjectError`, so callers
(ingest, sync, HTTP) can report the reason and carry on with the next object.

Each code belongs to one **layer** (docs/protocol.md §4), which says what a receiver does:

- ``REJECT``: the bytes are not a Percolab object under any release (envelope, encoding,
  signature). Not stored, not relayed; the peer that sent it is at fault (a strike).
- ``DEFER``: valid bytes whose timestamp lies too far in the future of the receiver's clock.
  Not stored *yet* and not relayed; nobody is at fault (a peer's clock may be right).
- ``OPAQUE``: a kind or envelope version this release does not know. Stored, relayed and
  reconciled like any object, not shown; a later release that knows it indexes it.
- ``HIDE``: a known kind whose body breaks that kind's schema. Stored, relayed and reconciled
  (so every release holds the same set), not shown.
"""

from __future__ import annotations

from enum import Enum


class Layer(Enum):
    REJECT = "rejected"
    DEFER = "deferred"
    OPAQUE = "opaque"
    HIDE = "hidden"


class ObjectError(ValueError):
    """An object failed a rule. `code` is stable (for logs, APIs, tests); str() is for people."""

    code = "invalid_object"
    layer = Layer.REJECT


# ---- REJECT: the envelope (section 1 of docs/protocol.md) ---------------------------------


class TooLarge(ObjectError):
    code = "too_large"


class Undecodable(ObjectError):
    code = "undecodable"


class NonCanonical(ObjectError):
    code = "non_canonical"


class BadEnvelope(ObjectError):
    code = "bad_envelope"


class TooDeep(ObjectError):
    code = "too_deep"


class ForbiddenType(ObjectError):
    """A float, an ext type or a non-string map key anywhere in the body."""

    code = "forbidden_type"


class BadTimestamp(ObjectError):
    code = "bad_timestamp"


class BadScope(ObjectError):
    """The body's `lab` field (the scope of every kind) is neither nil nor a 32-byte id."""

    code = "bad_scope"


class BadSignature(ObjectError):
    code = "bad_signature"


# ---- DEFER ---------------------------------------------------------------------------------


class FutureTimestamp(ObjectError):
    code = "future_timestamp"
    layer = Layer.DEFER


# ---- OPAQUE --------------------------------------------------------------------------------


class UnsupportedVersion(ObjectError):
    code = "unsupported_version"
    layer = Layer.OPAQUE


class UnknownKind(ObjectError):
    code = "unknown_kind"
    layer = Layer.OPAQUE


# ---- HIDE: a known kind's schema (section 3) ---------------------------------------------


class SchemaError(ObjectError):
    layer = Layer.HIDE


class MissingField(SchemaError):
    code = "missing_field"


class BadFieldType(SchemaError):
    code = "bad_field_type"


class StringTooLong(SchemaError):
    code = "string_too_long"


class EmptyString(SchemaError):
    code = "empty_string"


class BadText(SchemaError):
    code = "bad_text"


class TooManyItems(SchemaError):
    code = "too_many_items"


class BadLabel(SchemaError):
    code = "bad_label"


class BadValue(SchemaError):
    code = "bad_value"


class IntOutOfRange(SchemaError):
    code = "int_out_of_range"


def all_codes() -> dict[str, Layer]:
    """Every code an object verdict can carry, with its layer (the conformance corpus has a
    case for each)."""
    out: dict[str, Layer] = {}
    todo: list[type[ObjectError]] = [ObjectError]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.code != ObjectError.code:
            out[cls.code] = cls.layer
    return out


_LAYERS = all_codes()


def layer_of(code: str) -> Layer:
    """The layer of a code; codes this release does not know are rejections."""
    return _LAYERS.get(code, Layer.REJECT)


def blames_peer(code: str) -> bool:
    """True if a peer that sent an object with this verdict broke the protocol."""
    return layer_of(code) is Layer.REJECT
