"""Typed rejections of objects: each failure has its own class, a stable code and a message.

Every decoder and validator in `protocols` raises only subclasses of `ObjectError`, so callers
(ingest, sync, HTTP) can report the reason and carry on with the next object.
"""

from __future__ import annotations


class ObjectError(ValueError):
    """An object was rejected. `code` is stable (for logs, APIs, tests); str() is for people."""

    code = "invalid_object"


class TooLarge(ObjectError):
    code = "too_large"


class Undecodable(ObjectError):
    code = "undecodable"


class NonCanonical(ObjectError):
    code = "non_canonical"


class BadEnvelope(ObjectError):
    code = "bad_envelope"


class UnsupportedVersion(ObjectError):
    code = "unsupported_version"


class UnknownKind(ObjectError):
    code = "unknown_kind"


class MissingField(ObjectError):
    code = "missing_field"


class UnknownField(ObjectError):
    code = "unknown_field"


class BadFieldType(ObjectError):
    code = "bad_field_type"


class StringTooLong(ObjectError):
    code = "string_too_long"


class EmptyString(ObjectError):
    code = "empty_string"


class BadText(ObjectError):
    code = "bad_text"


class TooManyItems(ObjectError):
    code = "too_many_items"


class BadLabel(ObjectError):
    code = "bad_label"


class BadValue(ObjectError):
    code = "bad_value"


class IntOutOfRange(ObjectError):
    code = "int_out_of_range"


class FutureTimestamp(ObjectError):
    code = "future_timestamp"


class BadSignature(ObjectError):
    code = "bad_signature"


class NotAuthor(ObjectError):
    """A retraction names an object written by someone else."""

    code = "not_author"
