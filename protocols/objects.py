"""Signed objects: envelope, canonical msgpack bytes, Ed25519 signatures, content ids.

Wire form of one object (docs/protocol.md has the byte-level detail)::

    msgpack array [v, kind, author, ts, body, sig]

- v: int (1), kind: str, author: bin 32 (Ed25519 public key), ts: int milliseconds,
  body: map with str keys sorted by their UTF-8 bytes, sig: bin 64.
- Canonical: exactly the bytes msgpack's shortest encodings give for that value with sorted
  map keys. `decode` re-encodes and refuses any other byte string for the same value, so one
  object has one byte string and therefore one id.
- Signature input: SIGN_DOMAIN + msgpack([v, kind, author, ts, body]).
- id: SHA-256 of the whole signed byte string.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
import nacl.bindings
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from protocols import errors
from protocols.limits import (
    ID_BYTES,
    KEY_BYTES,
    MAX_DEPTH,
    MAX_KIND_CHARS,
    MAX_OBJECT_BYTES,
    MAX_TS_MS,
    MAX_VERSION,
    SIG_BYTES,
)

VERSION = 1
# Domain separation: a Percolab signature can never be replayed as another protocol's message.
SIGN_DOMAIN = b"percolab/object/v1\x00"
_ENVELOPE_FIELDS = 6
_PACKED_SIG_BYTES = 2 + SIG_BYTES  # bin8 header (0xc4, 64) + the signature


@dataclass(frozen=True)
class SignedObject:
    """A decoded, canonically encoded object. `raw` is the exact signed bytes; `id` their hash."""

    v: int
    kind: str
    author: bytes
    ts: int
    body: Mapping[str, Any]
    sig: bytes
    raw: bytes
    id: bytes

    @property
    def id_hex(self) -> str:
        return self.id.hex()


_new_object = object.__new__


def _built(
    v: int, kind: str, author: bytes, ts: int, body: Any, sig: bytes, raw: bytes, oid: bytes
) -> SignedObject:
    """A SignedObject without the frozen dataclass's `__init__` (one `object.__setattr__`
    per field: 1.5 us against 0.7, and every ingested object is built twice)."""
    obj: SignedObject = _new_object(SignedObject)
    obj.__dict__.update(v=v, kind=kind, author=author, ts=ts, body=body, sig=sig, raw=raw, id=oid)
    return obj


def canonical(value: Any) -> Any:
    """Return `value` with every map's keys in canonical order, recursively.

    Keys are strings; ordering str by code point equals ordering by UTF-8 bytes.
    """
    t = type(value)
    if t is dict or isinstance(value, Mapping):
        for k in value:
            if type(k) is not str:
                raise errors.ForbiddenType(f"map keys must be strings, got {type(k).__name__}")
        return {k: canonical(value[k]) for k in sorted(value)}
    if t is list or t is tuple:
        return [canonical(v) for v in value]
    return value


_SCALARS = frozenset((str, int, bytes, bool, type(None)))
# Kind names: identifiers, so they fit index keys (`kind + 0`) and logs.
_KIND_RE = re.compile(rf"[a-z][a-z0-9_.-]{{0,{MAX_KIND_CHARS - 1}}}")


def _check_value(value: Any, depth: int = 0) -> bool:
    """The body's value model, the same for every kind and release: maps with str keys,
    arrays, str, bin, int, bool, nil; no float, no ext; at most MAX_DEPTH levels of nesting.
    Returns False if some map's keys are out of canonical order (the caller decides)."""
    t = type(value)
    if t is not dict and t is not list:
        if t not in _SCALARS:
            raise errors.ForbiddenType(f"a body may not hold a {t.__name__}")
        return True
    if depth >= MAX_DEPTH:
        raise errors.TooDeep(f"body nests deeper than {MAX_DEPTH} levels")
    ordered = True
    if t is dict:
        keys = list(value)
        for k in keys:
            if type(k) is not str:
                raise errors.ForbiddenType(f"map keys must be strings, not {type(k).__name__}")
        if keys != sorted(keys):
            ordered = False
        items = value.values()
    else:
        items = value
    for v in items:  # the hot path: flat values need no call
        tv = type(v)
        if tv is dict or tv is list:
            ordered = _check_value(v, depth + 1) and ordered
        elif tv not in _SCALARS:
            raise errors.ForbiddenType(f"a body may not hold a {tv.__name__}")
    return ordered


def _pack(value: Any) -> bytes:
    packed: bytes = msgpack.packb(value, use_bin_type=True)
    return packed


def unsigned_bytes(kind: str, author: bytes, ts: int, body: Mapping[str, Any]) -> bytes:
    return _pack([VERSION, kind, author, ts, canonical(body)])


def signing_input(kind: str, author: bytes, ts: int, body: Mapping[str, Any]) -> bytes:
    return SIGN_DOMAIN + unsigned_bytes(kind, author, ts, body)


def public_key_bytes(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def sign(key: Ed25519PrivateKey, kind: str, ts: int, body: Mapping[str, Any]) -> SignedObject:
    """Build and sign an object. The result still needs `kinds.validate` before it is trusted."""
    author = public_key_bytes(key)
    body = canonical(body)
    sig = key.sign(signing_input(kind, author, ts, body))
    raw = _pack([VERSION, kind, author, ts, body, sig])
    if len(raw) > MAX_OBJECT_BYTES:
        raise errors.TooLarge(f"object is {len(raw)} bytes; the limit is {MAX_OBJECT_BYTES}")
    return SignedObject(VERSION, kind, author, ts, body, sig, raw, object_id(raw))


def object_id(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()


def decode(raw: bytes, *, oid: bytes | None = None) -> SignedObject:
    """Parse signed bytes into a SignedObject: every envelope rule but the signature
    (docs/protocol.md §1 and §4, steps 1-3), the same for every kind and release.

    The kind's schema is `kinds.validate`'s job, the signature `verify`'s, and the order of
    all checks `protocols.validity.check`'s. Pass `oid` when the caller already hashed `raw`.
    """
    if len(raw) > MAX_OBJECT_BYTES:
        raise errors.TooLarge(f"object is {len(raw)} bytes; the limit is {MAX_OBJECT_BYTES}")
    try:
        arr = msgpack.unpackb(raw, raw=False, use_list=True, strict_map_key=False)
    except Exception as exc:  # msgpack raises a zoo of types on garbage; all mean "undecodable"
        raise errors.Undecodable(f"not a msgpack value: {type(exc).__name__}: {exc}") from exc
    if type(arr) is not list or len(arr) != _ENVELOPE_FIELDS:
        raise errors.BadEnvelope(f"an object is an array of {_ENVELOPE_FIELDS} items")
    v, kind, author, ts, body, sig = arr
    if type(v) is not int or not 1 <= v <= MAX_VERSION:
        raise errors.BadEnvelope(f"version must be an integer in 1..{MAX_VERSION}")
    if type(kind) is not str or not _KIND_RE.fullmatch(kind):
        raise errors.BadEnvelope(
            f"kind must be 1..{MAX_KIND_CHARS} of a-z 0-9 _ . - starting with a letter"
        )
    if type(author) is not bytes or len(author) != KEY_BYTES:
        raise errors.BadEnvelope(f"author must be {KEY_BYTES} bytes (an Ed25519 public key)")
    if type(ts) is not int:
        raise errors.BadEnvelope("ts must be an integer (milliseconds)")
    if type(body) is not dict:
        raise errors.BadEnvelope("body must be a map")
    if type(sig) is not bytes or len(sig) != SIG_BYTES:
        raise errors.BadEnvelope(f"sig must be {SIG_BYTES} bytes")
    # Canonical iff every map is in key order and re-packing (which keeps that order and
    # picks msgpack's shortest forms) reproduces the bytes exactly.
    if not _check_value(body) or _pack(arr) != raw:
        raise errors.NonCanonical("bytes are not the canonical encoding of this object")
    if not 0 <= ts <= MAX_TS_MS:
        raise errors.BadTimestamp(f"ts={ts} is outside [0, {MAX_TS_MS}]")
    lab = body.get("lab")
    if lab is not None and (type(lab) is not bytes or len(lab) != ID_BYTES):
        raise errors.BadScope(f"lab must be nil or a {ID_BYTES}-byte object id")
    return _built(v, kind, author, ts, body, sig, raw, oid or object_id(raw))


def decode_checked(raw: bytes, oid: bytes) -> SignedObject:
    """Decode bytes that `decode`, validation and `verify` already accepted (in another
    process: node/ingest/check_worker.py), without repeating their checks."""
    v, kind, author, ts, body, sig = msgpack.unpackb(raw, raw=False, use_list=True)
    return _built(v, kind, author, ts, body, sig, raw, oid)


def signed_message(obj: SignedObject) -> bytes:
    """Signature + signing input: what libsodium's `crypto_sign_open` checks."""
    # raw is canonical: [v, kind, author, ts, body, sig] is a fixarray (0x96) ending in the
    # 66-byte bin8 sig; the unsigned array is the same bytes under a 5-item header (0x95).
    return obj.sig + SIGN_DOMAIN + b"\x95" + obj.raw[1:-_PACKED_SIG_BYTES]


def verify(obj: SignedObject) -> bool:
    """True if `obj.sig` is the author's Ed25519 signature over the object (libsodium)."""
    try:
        nacl.bindings.crypto_sign_open(signed_message(obj), obj.author)
    except Exception:  # BadSignatureError, or ValueError for a malformed key
        return False
    return True


def check_signature(obj: SignedObject) -> None:
    if not verify(obj):
        raise errors.BadSignature("signature does not match the author's key")
