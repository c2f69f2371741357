"""Wire messages of set reconciliation: limits, dataclasses, msgpack encode/decode.

The byte-level format is specified in ``docs/sync.md``. ``decode_message`` accepts any bytes
and raises only ``ReconcileError`` on malformed input; every size is bounded by a named limit
before anything is allocated for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import msgpack

from protocols.reconcile_store import (
    FINGERPRINT_BYTES,
    ID_BYTES,
    MAX_TS,
    Bound,
)

PROTOCOL_VERSION = 1
SYNC_PROTOCOL_ID = "/percolab/sync/1.0.0"

# Tuning. A differing range with more than IDLIST_THRESHOLD items is split into BUCKETS parts.
BUCKETS = 16
IDLIST_THRESHOLD = 64
SHORT_ID_BYTES = 8  # salted id hashes in IDLIST ranges
SALT_BYTES = 16

# Limits: a peer exceeding any of them gets ReconcileError.
MAX_RANGES_PER_MESSAGE = 2048
MAX_IDS_PER_MESSAGE = 8192  # short ids (IDLIST) + full ids (DIFF extras, HAVE) in one message
MAX_MESSAGE_BYTES = 512 * 1024
MAX_ROUNDS = 64  # round trips per session (initiator messages)
MAX_BITMAP_BYTES = (IDLIST_THRESHOLD + 7) // 8
MAX_BIN_BYTES = MAX_IDS_PER_MESSAGE * ID_BYTES
_TOP_FIELDS = 5  # version, index, lower_ts, lower_prefix, ranges (+ salt in message 0)


class ReconcileError(ValueError):
    """A reconciliation message is malformed, exceeds a limit, or breaks the protocol."""


class Mode(IntEnum):
    SKIP = 0  # ranges agree (or: nothing to say); no payload
    FINGERPRINT = 1  # payload: 16-byte fingerprint of the sender's items in the range
    IDLIST = 2  # payload: salted short ids of ALL the sender's items in the range
    DIFF = 3  # answer to an IDLIST: bitmap of entries the sender has + full ids it alone has
    HAVE = 4  # answer to a DIFF: full ids of IDLIST entries the DIFF sender lacked


@dataclass(frozen=True)
class Range:
    """One range ``[previous upper (or message lower), upper)`` of a message.

    ``data`` is the fingerprint (FINGERPRINT), the concatenated short ids (IDLIST) or the
    concatenated 32-byte ids (DIFF extras, HAVE); ``bitmap`` is only used by DIFF.
    """

    mode: Mode
    upper: Bound
    data: bytes = b""
    bitmap: bytes = b""

    def chunks(self, size: int) -> list[bytes]:
        return [self.data[i : i + size] for i in range(0, len(self.data), size)]

    @property
    def id_count(self) -> int:
        if self.mode == Mode.IDLIST:
            return len(self.data) // SHORT_ID_BYTES
        if self.mode in (Mode.DIFF, Mode.HAVE):
            return len(self.data) // ID_BYTES
        return 0


@dataclass(frozen=True)
class Message:
    """``index`` counts messages in the session: the initiator sends even, the responder odd.
    ``salt`` is present exactly in message 0."""

    index: int
    lower: Bound
    ranges: tuple[Range, ...]
    salt: bytes | None = None


def _check_bound(ts: int, prefix: bytes) -> Bound:
    if not 0 <= ts <= MAX_TS:
        raise ReconcileError("bound timestamp out of range")
    if len(prefix) > ID_BYTES:
        raise ReconcileError("bound prefix longer than an id")
    if prefix.endswith(b"\x00"):
        raise ReconcileError("bound prefix has a trailing zero byte")
    if ts == MAX_TS and prefix:
        raise ReconcileError("infinity bound with a prefix")
    return (ts, prefix)


def _payload_size_ok(mode: Mode, data: bytes, bitmap: bytes) -> bool:
    if mode == Mode.SKIP:
        return not data and not bitmap
    if mode == Mode.FINGERPRINT:
        return len(data) == FINGERPRINT_BYTES and not bitmap
    if mode == Mode.IDLIST:
        n = len(data)
        return n % SHORT_ID_BYTES == 0 and n // SHORT_ID_BYTES <= IDLIST_THRESHOLD and not bitmap
    if mode == Mode.DIFF:
        return len(data) % ID_BYTES == 0 and len(bitmap) <= MAX_BITMAP_BYTES
    return len(data) % ID_BYTES == 0 and len(data) > 0 and not bitmap  # HAVE


def validate_message(msg: Message) -> None:
    """Check every limit and invariant of a message; raise ReconcileError if one fails."""
    if type(msg.index) is not int or not 0 <= msg.index < 2 * MAX_ROUNDS:
        raise ReconcileError("message index out of range")
    if (msg.salt is None) != (msg.index != 0):
        raise ReconcileError("salt must be present exactly in message 0")
    if msg.salt is not None and len(msg.salt) != SALT_BYTES:
        raise ReconcileError("bad salt length")
    if len(msg.ranges) > MAX_RANGES_PER_MESSAGE:
        raise ReconcileError("too many ranges")
    prev = _check_bound(*msg.lower)
    ids = 0
    for r in msg.ranges:
        _check_bound(*r.upper)
        if not r.upper > prev:
            raise ReconcileError("range bounds not strictly ascending")
        prev = r.upper
        if not _payload_size_ok(r.mode, r.data, r.bitmap):
            raise ReconcileError(f"bad payload size for {r.mode.name}")
        ids += r.id_count
    if ids > MAX_IDS_PER_MESSAGE:
        raise ReconcileError("too many ids")


def encode_message(msg: Message) -> bytes:
    validate_message(msg)
    ranges: list[list[Any]] = []
    prev_ts = msg.lower[0]
    for r in msg.ranges:
        item: list[Any] = [int(r.mode), r.upper[0] - prev_ts, r.upper[1]]
        prev_ts = r.upper[0]
        if r.mode == Mode.DIFF:
            item += [r.bitmap, r.data]
        elif r.mode != Mode.SKIP:
            item.append(r.data)
        ranges.append(item)
    top: list[Any] = [PROTOCOL_VERSION, msg.index, msg.lower[0], msg.lower[1], ranges]
    if msg.salt is not None:
        top.append(msg.salt)
    out: bytes = msgpack.packb(top, use_bin_type=True)
    if len(out) > MAX_MESSAGE_BYTES:
        raise ReconcileError("encoded message exceeds MAX_MESSAGE_BYTES")
    return out


def _int(value: object, what: str) -> int:
    if type(value) is not int or value < 0:
        raise ReconcileError(f"{what} must be a non-negative integer")
    return value


def _bin(value: object, what: str) -> bytes:
    if type(value) is not bytes:
        raise ReconcileError(f"{what} must be binary")
    return value


def decode_message(data: bytes) -> Message:
    """Parse and validate one message. Raises only ReconcileError."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ReconcileError("message must be bytes")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ReconcileError("message exceeds MAX_MESSAGE_BYTES")
    try:
        top = msgpack.unpackb(
            bytes(data),
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_bin_len=MAX_BIN_BYTES,
            max_str_len=0,
            max_array_len=MAX_RANGES_PER_MESSAGE,
            max_map_len=0,
            max_ext_len=0,
        )
    except Exception as exc:  # msgpack raises a zoo of types on garbage
        raise ReconcileError(f"undecodable message: {type(exc).__name__}") from None
    if type(top) is not list or len(top) not in (_TOP_FIELDS, _TOP_FIELDS + 1):
        raise ReconcileError("message must be an array of 5 or 6 fields")
    if top[0] != PROTOCOL_VERSION or type(top[0]) is not int:
        raise ReconcileError(f"unsupported protocol version {top[0]!r}")
    index = _int(top[1], "index")
    lower_ts = _int(top[2], "lower timestamp")
    if lower_ts > MAX_TS:
        raise ReconcileError("bound timestamp out of range")
    lower = _check_bound(lower_ts, _bin(top[3], "lower prefix"))
    raw_ranges = top[4]
    if type(raw_ranges) is not list:
        raise ReconcileError("ranges must be an array")
    salt = _bin(top[5], "salt") if len(top) == _TOP_FIELDS + 1 else None
    ranges: list[Range] = []
    ts = lower_ts
    for item in raw_ranges:
        if type(item) is not list or not 3 <= len(item) <= 5:
            raise ReconcileError("range must be an array of 3 to 5 fields")
        mode_value = _int(item[0], "mode")
        if mode_value > max(Mode):
            raise ReconcileError(f"unknown mode {mode_value}")
        mode = Mode(mode_value)
        ts += _int(item[1], "timestamp delta")
        if ts > MAX_TS:
            raise ReconcileError("bound timestamp out of range")
        upper = _check_bound(ts, _bin(item[2], "bound prefix"))
        want = 3 if mode == Mode.SKIP else 5 if mode == Mode.DIFF else 4
        if len(item) != want:
            raise ReconcileError(f"{mode.name} range must have {want} fields")
        if mode == Mode.DIFF:
            rng = Range(mode, upper, _bin(item[4], "ids"), _bin(item[3], "bitmap"))
        elif mode == Mode.SKIP:
            rng = Range(mode, upper)
        else:
            rng = Range(mode, upper, _bin(item[3], "payload"))
        ranges.append(rng)
    msg = Message(index, lower, tuple(ranges), salt)
    validate_message(msg)
    return msg
