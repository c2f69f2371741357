"""Wire messages of set reconciliation: dataclasses, msgpack encode/decode.

The byte-level format is specified in ``docs/sync.md``. ``decode_message`` accepts any bytes
and raises only ``ReconcileError`` on malformed input; every size is bounded by a named limit
before anything is allocated for it. The limits are those of the negotiated protocol version
(``limits``, protocols/reconcile_limits.py; 1.0.0 by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

import msgpack

from protocols.reconcile_limits import (
    BUCKETS,
    IDLIST_THRESHOLD,
    MAX_IDS_PER_MESSAGE,
    MAX_MESSAGE_BYTES,
    MAX_RANGES_PER_MESSAGE,
    MAX_ROUNDS,
    SALT_BYTES,
    SHORT_ID_BYTES,
    SYNC_PROTOCOL_ID_1_0,
    V1_0,
    Limits,
)
from protocols.reconcile_store import (
    FINGERPRINT_BYTES,
    ID_BYTES,
    MAX_TS,
    Bound,
)

__all__ = [
    "BUCKETS",
    "IDLIST_THRESHOLD",
    "MAX_BITMAP_BYTES",
    "MAX_IDS_PER_MESSAGE",
    "MAX_MESSAGE_BYTES",
    "MAX_NESTING",
    "MAX_RANGES_PER_MESSAGE",
    "MAX_ROUNDS",
    "PROTOCOL_VERSION",
    "SALT_BYTES",
    "SHORT_ID_BYTES",
    "SYNC_PROTOCOL_ID",
    "DecodeCode",
    "Limits",
    "Message",
    "Mode",
    "MsgpackError",
    "Range",
    "ReconcileError",
    "SessionCode",
    "decode_message",
    "encode_message",
    "unpack_plain",
    "validate_message",
]

# The message format's version (the first field of every message), the same in both protocol
# versions: /percolab/sync/1.1.0 changed the limits (protocols/reconcile_limits.py), not the
# format.
PROTOCOL_VERSION = 1
SYNC_PROTOCOL_ID = SYNC_PROTOCOL_ID_1_0  # the first release's id; see SYNC_PROTOCOL_IDS

# The 1.0.0 values, for callers that predate `Limits` (every function takes `limits`).
MAX_BITMAP_BYTES = V1_0.max_bitmap_bytes
_TOP_FIELDS = 5  # version, index, lower_ts, lower_prefix, ranges (+ salt in message 0)
# Arrays nest at most this deep in any stream message (message -> ranges -> range). Deeper is
# undecodable, whatever a msgpack library's own stack limit is.
MAX_NESTING = 3


class DecodeCode(StrEnum):
    """Why a single message was rejected (docs/sync.md, "Decoding rules"); every code has
    cases in docs/conformance/sync.json."""

    TOO_LARGE = "too_large"  # over MAX_MESSAGE_BYTES (checked before parsing)
    UNDECODABLE = "undecodable"  # not exactly one msgpack value of int, bin and array only
    BAD_SHAPE = "bad_shape"  # an array with the wrong number of fields, or not an array
    BAD_VERSION = "bad_version"
    BAD_INDEX = "bad_index"  # not an int in [0, 2 * MAX_ROUNDS)
    BAD_SALT = "bad_salt"  # absent in message 0, present in another, or not bin(16)
    EMPTY_OPENING = "empty_opening"  # message 0 without ranges
    BAD_TIMESTAMP = "bad_timestamp"  # a bound's ts not an int in [0, MAX_TS]
    BAD_PREFIX = "bad_prefix"  # not bin, over 32 bytes, trailing 0x00, or on infinity
    TOO_MANY_RANGES = "too_many_ranges"
    BAD_MODE = "bad_mode"
    NOT_ASCENDING = "not_ascending"  # a range's upper bound not above its lower bound
    BAD_PAYLOAD = "bad_payload"  # payload or bitmap of the wrong type or size for its mode
    TOO_MANY_IDS = "too_many_ids"


class SessionCode(StrEnum):
    """Why a well-formed message breaks the session (needs the session's state)."""

    WRONG_INDEX = "wrong_index"
    AFTER_DONE = "after_done"
    OUT_OF_BOUNDS = "out_of_bounds"  # ranges outside the session's window or scope
    BAD_DIFF = "bad_diff"
    BAD_HAVE = "bad_have"
    DUPLICATE_SHORT_ID = "duplicate_short_id"
    # A message numbered 2·MAX_ROUNDS or beyond would be needed, or (1.1.0) a side's last
    # message requests something (a FINGERPRINT or an IDLIST) that could not be answered.
    TOO_MANY_ROUNDS = "too_many_rounds"
    MISUSE = "misuse"  # local API misuse (start twice...), never a peer's fault
    INCONSISTENT = "inconsistent"  # reconcile_in_memory: the two sides disagree


class ReconcileError(ValueError):
    """A reconciliation message is malformed, exceeds a limit, or breaks the protocol.
    ``code`` is stable (corpus, logs, tests); str() is for people."""

    def __init__(self, message: str, code: DecodeCode | SessionCode) -> None:
        super().__init__(message)
        self.code = code


class MsgpackError(ValueError):
    """Bytes that are not one msgpack value of the plain types (see `unpack_plain`)."""


def unpack_plain(data: bytes) -> Any:
    """Exactly one msgpack value built from int, bin and array only (any int encoding),
    arrays nested at most MAX_NESTING deep.

    nil, bool, float, str, map and ext are refused anywhere, whatever their length, so a
    value of the wrong msgpack type is always ``undecodable``, never a field's own error.
    Callers check the size limit first; every length msgpack may allocate is capped by the
    input's own size (a claim beyond it could never be satisfied), which bounds memory to a
    small multiple of the input and never changes a verdict."""
    cap = len(data)
    try:
        value = msgpack.unpackb(
            bytes(data), raw=False, use_list=True, strict_map_key=True,
            max_bin_len=cap, max_str_len=cap, max_array_len=cap, max_map_len=cap, max_ext_len=cap,
        )  # fmt: skip
    except Exception as exc:  # msgpack raises a zoo of types on garbage
        raise MsgpackError(f"undecodable message: {type(exc).__name__}") from None
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if type(item) is list:
            if depth > MAX_NESTING:
                raise MsgpackError(f"undecodable message: arrays nested over {MAX_NESTING} deep")
            stack.extend((x, depth + 1) for x in item)
        elif type(item) is not int and type(item) is not bytes:
            raise MsgpackError(f"undecodable message: {type(item).__name__} is not allowed")
    return value


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
        raise ReconcileError("bound timestamp out of range", DecodeCode.BAD_TIMESTAMP)
    if len(prefix) > ID_BYTES:
        raise ReconcileError("bound prefix longer than an id", DecodeCode.BAD_PREFIX)
    if prefix.endswith(b"\x00"):
        raise ReconcileError("bound prefix has a trailing zero byte", DecodeCode.BAD_PREFIX)
    if ts == MAX_TS and prefix:
        raise ReconcileError("infinity bound with a prefix", DecodeCode.BAD_PREFIX)
    return (ts, prefix)


def _payload_size_ok(mode: Mode, data: bytes, bitmap: bytes, limits: Limits) -> bool:
    if mode == Mode.SKIP:
        return not data and not bitmap
    if mode == Mode.FINGERPRINT:
        return len(data) == FINGERPRINT_BYTES and not bitmap
    if mode == Mode.IDLIST:
        n = len(data)
        entries = n // SHORT_ID_BYTES
        return n % SHORT_ID_BYTES == 0 and entries <= limits.idlist_threshold and not bitmap
    if mode == Mode.DIFF:
        return len(data) % ID_BYTES == 0 and len(bitmap) <= limits.max_bitmap_bytes
    return len(data) % ID_BYTES == 0 and len(data) > 0 and not bitmap  # HAVE


def validate_message(msg: Message, limits: Limits = V1_0) -> None:
    """Check every limit (of ``limits``' protocol version) and invariant of a message; raise
    ReconcileError if one fails."""
    if type(msg.index) is not int or not 0 <= msg.index < limits.max_index:
        raise ReconcileError("message index out of range", DecodeCode.BAD_INDEX)
    if (msg.salt is None) != (msg.index != 0):
        raise ReconcileError("salt must be present exactly in message 0", DecodeCode.BAD_SALT)
    if msg.salt is not None and len(msg.salt) != SALT_BYTES:
        raise ReconcileError("bad salt length", DecodeCode.BAD_SALT)
    if msg.index == 0 and not msg.ranges:
        # The responder takes the session's bounds from message 0: it must name a range.
        raise ReconcileError("message 0 must have at least one range", DecodeCode.EMPTY_OPENING)
    if len(msg.ranges) > limits.max_ranges:
        raise ReconcileError("too many ranges", DecodeCode.TOO_MANY_RANGES)
    prev = _check_bound(*msg.lower)
    ids = 0
    for r in msg.ranges:
        _check_bound(*r.upper)
        if not r.upper > prev:
            raise ReconcileError("range bounds not strictly ascending", DecodeCode.NOT_ASCENDING)
        prev = r.upper
        if not _payload_size_ok(r.mode, r.data, r.bitmap, limits):
            raise ReconcileError(f"bad payload size for {r.mode.name}", DecodeCode.BAD_PAYLOAD)
        ids += r.id_count
    if ids > limits.max_ids:
        raise ReconcileError("too many ids", DecodeCode.TOO_MANY_IDS)


def encode_message(msg: Message, limits: Limits = V1_0) -> bytes:
    validate_message(msg, limits)
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
    if len(out) > limits.max_message_bytes:
        raise ReconcileError("encoded message exceeds MAX_MESSAGE_BYTES", DecodeCode.TOO_LARGE)
    return out


def _int(value: object, what: str, code: DecodeCode) -> int:
    if type(value) is not int or value < 0:
        raise ReconcileError(f"{what} must be a non-negative integer", code)
    return value


def _bin(value: object, what: str, code: DecodeCode) -> bytes:
    if type(value) is not bytes:
        raise ReconcileError(f"{what} must be binary", code)
    return value


def decode_message(data: bytes, limits: Limits = V1_0) -> Message:
    """Parse and validate one message under ``limits`` (the negotiated protocol version's).
    Raises only ReconcileError (with a `DecodeCode`)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ReconcileError("message must be bytes", DecodeCode.UNDECODABLE)
    if len(data) > limits.max_message_bytes:
        raise ReconcileError("message exceeds MAX_MESSAGE_BYTES", DecodeCode.TOO_LARGE)
    try:
        top = unpack_plain(data)
    except MsgpackError as exc:
        raise ReconcileError(str(exc), DecodeCode.UNDECODABLE) from None
    if type(top) is not list or len(top) not in (_TOP_FIELDS, _TOP_FIELDS + 1):
        raise ReconcileError("message must be an array of 5 or 6 fields", DecodeCode.BAD_SHAPE)
    if top[0] != PROTOCOL_VERSION or type(top[0]) is not int:
        raise ReconcileError(f"unsupported protocol version {top[0]!r}", DecodeCode.BAD_VERSION)
    index = _int(top[1], "index", DecodeCode.BAD_INDEX)
    lower_ts = _int(top[2], "lower timestamp", DecodeCode.BAD_TIMESTAMP)
    if lower_ts > MAX_TS:
        raise ReconcileError("bound timestamp out of range", DecodeCode.BAD_TIMESTAMP)
    lower = _check_bound(lower_ts, _bin(top[3], "lower prefix", DecodeCode.BAD_PREFIX))
    raw_ranges = top[4]
    if type(raw_ranges) is not list:
        raise ReconcileError("ranges must be an array", DecodeCode.BAD_SHAPE)
    if len(raw_ranges) > limits.max_ranges:
        raise ReconcileError("too many ranges", DecodeCode.TOO_MANY_RANGES)
    salt = _bin(top[5], "salt", DecodeCode.BAD_SALT) if len(top) == _TOP_FIELDS + 1 else None
    ranges: list[Range] = []
    ts = lower_ts
    for item in raw_ranges:
        if type(item) is not list or not 3 <= len(item) <= 5:
            raise ReconcileError("range must be an array of 3 to 5 fields", DecodeCode.BAD_SHAPE)
        mode_value = _int(item[0], "mode", DecodeCode.BAD_MODE)
        if mode_value > max(Mode):
            raise ReconcileError(f"unknown mode {mode_value}", DecodeCode.BAD_MODE)
        mode = Mode(mode_value)
        want = 3 if mode == Mode.SKIP else 5 if mode == Mode.DIFF else 4
        if len(item) != want:
            raise ReconcileError(f"{mode.name} range must have {want} fields", DecodeCode.BAD_SHAPE)
        ts += _int(item[1], "timestamp delta", DecodeCode.BAD_TIMESTAMP)
        if ts > MAX_TS:
            raise ReconcileError("bound timestamp out of range", DecodeCode.BAD_TIMESTAMP)
        upper = _check_bound(ts, _bin(item[2], "bound prefix", DecodeCode.BAD_PREFIX))
        if mode == Mode.DIFF:
            ids = _bin(item[4], "ids", DecodeCode.BAD_PAYLOAD)
            rng = Range(mode, upper, ids, _bin(item[3], "bitmap", DecodeCode.BAD_PAYLOAD))
        elif mode == Mode.SKIP:
            rng = Range(mode, upper)
        else:
            rng = Range(mode, upper, _bin(item[3], "payload", DecodeCode.BAD_PAYLOAD))
        ranges.append(rng)
    msg = Message(index, lower, tuple(ranges), salt)
    validate_message(msg, limits)
    return msg
