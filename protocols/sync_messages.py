"""Messages of the catch-up stream protocols (sans-I/O): ``/percolab/sync/1.0.0`` and
``/percolab/fetch/1.0.0``. Every decoder accepts any bytes and raises only
`SyncMessageError` (with a stable `SyncErrorCode`); every size is bounded by a named limit
before it is allocated. The byte-level format and the rules are specified in docs/sync.md
("Transport"); docs/conformance/sync.json holds their cases.

Sync stream (frames of ``p2p/framing.py``)::

    initiator -> SyncOpen, reconcile message 0, 2, 4, ...            then END
    responder -> SyncAccept, reconcile message 1, 3, 5, ...          then END

Fetch stream::

    requester -> FetchRequest                                        then END
    server    -> (after the requester's END) FetchBatch, ... (objects in request order, unknown
                 omitted; none at all when it knows none), END
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

import msgpack

from protocols.limits import MAX_OBJECT_BYTES
from protocols.reconcile_store import ID_BYTES, MAX_TS, Bound
from protocols.reconcile_wire import SYNC_PROTOCOL_ID as SYNC_PROTOCOL_ID
from protocols.reconcile_wire import MsgpackError, unpack_plain

FETCH_PROTOCOL_ID = "/percolab/fetch/1.0.0"
VERSION = 1
SCOPE_BYTES = 32

# Ids in one fetch request. 2048 objects of ~1 KiB = ~2 MiB of answer.
MAX_FETCH_IDS = 2048
# One FetchBatch frame: objects are packed into frames up to this size (the p2p frame limit
# is 4 MiB; a single object is at most MAX_OBJECT_BYTES, so any object fits).
MAX_FETCH_FRAME_BYTES = 4 * 1024 * 1024 - 1024
# Objects in one FetchBatch (bounds the array header a peer can claim).
MAX_OBJECTS_PER_BATCH = MAX_FETCH_IDS
# Small control messages (SyncOpen, SyncAccept).
MAX_CONTROL_BYTES = 256
# A request of MAX_FETCH_IDS ids takes ~68 KiB; the byte limit is twice that, so that the
# id count (not the byte size) is the rule a slightly too long request breaks.
MAX_FETCH_REQUEST_BYTES = 2 * MAX_FETCH_IDS * (ID_BYTES + 2)


class SyncErrorCode(StrEnum):
    """Why a sync or fetch message was rejected (docs/sync.md, "Decoding rules"); every
    code has cases in docs/conformance/sync.json."""

    TOO_LARGE = "too_large"  # over the message's byte limit (checked before parsing)
    UNDECODABLE = "undecodable"  # not exactly one msgpack value of int, bin and array only
    BAD_SHAPE = "bad_shape"  # not an array, or the wrong number of fields
    BAD_VERSION = "bad_version"
    BAD_SCOPE = "bad_scope"  # not bin(32)
    BAD_TIMESTAMP = "bad_timestamp"  # lower_ts / upper_ts not an int in [0, MAX_TS]
    BAD_WINDOW = "bad_window"  # lower_ts >= upper_ts
    BAD_STATUS = "bad_status"  # SyncAccept status not 0, 1 or 2
    NO_IDS = "no_ids"
    TOO_MANY_IDS = "too_many_ids"  # over MAX_FETCH_IDS
    BAD_ID = "bad_id"  # not bin(32)
    DUPLICATE_IDS = "duplicate_ids"
    EMPTY_BATCH = "empty_batch"
    TOO_MANY_OBJECTS = "too_many_objects"  # over MAX_OBJECTS_PER_BATCH
    BAD_OBJECT = "bad_object"  # an object that is not bin
    OBJECT_TOO_LARGE = "object_too_large"  # an object over MAX_OBJECT_BYTES


class SyncMessageError(ValueError):
    """A sync or fetch message is malformed or exceeds a limit. ``code`` is stable
    (corpus, logs, tests); str() is for people."""

    def __init__(self, message: str, code: SyncErrorCode) -> None:
        super().__init__(message)
        self.code = code


class Accept(IntEnum):
    OK = 0  # reconcile messages follow
    BUSY = 1  # too many sessions: try later; END follows
    REFUSED = 2  # scope or parameters not served; END follows


@dataclass(frozen=True)
class SyncOpen:
    """First frame of a sync stream: the scope, and the window: the session reconciles only
    the scope's keys with ``lower_ts <= ts < upper_ts`` (``upper_ts = MAX_TS``: no end)."""

    scope: bytes  # lab id, or 32 zero bytes for the public scope
    lower_ts: int = 0
    upper_ts: int = MAX_TS

    def encode(self) -> bytes:
        check_open(self)
        return _pack([VERSION, self.scope, self.lower_ts, self.upper_ts])

    @property
    def bounds(self) -> tuple[Bound, Bound]:
        """The window as reconciliation bounds: keys with ``lower_ts <= ts < upper_ts``."""
        return (self.lower_ts, b""), (self.upper_ts, b"")


@dataclass(frozen=True)
class SyncAccept:
    status: Accept

    def encode(self) -> bytes:
        return _pack([VERSION, int(self.status)])


@dataclass(frozen=True)
class FetchRequest:
    ids: tuple[bytes, ...]

    def encode(self) -> bytes:
        check_request(self)
        return _pack([VERSION, list(self.ids)])


def _pack(value: Any) -> bytes:
    out: bytes = msgpack.packb(value, use_bin_type=True)
    return out


def encode_fetch_batches(raws: list[bytes]) -> list[bytes]:
    """Pack objects into as few FetchBatch frames as fit ``MAX_FETCH_FRAME_BYTES``."""
    frames: list[bytes] = []
    batch: list[bytes] = []
    size = 8
    for raw in raws:
        cost = len(raw) + 5
        if batch and (size + cost > MAX_FETCH_FRAME_BYTES or len(batch) >= MAX_OBJECTS_PER_BATCH):
            frames.append(_pack(batch))
            batch, size = [], 8
        batch.append(raw)
        size += cost
    if batch:
        frames.append(_pack(batch))
    return frames


def _unpack(data: bytes, max_bytes: int) -> Any:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SyncMessageError("message must be bytes", SyncErrorCode.UNDECODABLE)
    if len(data) > max_bytes:
        raise SyncMessageError(
            f"message of {len(data)} bytes exceeds {max_bytes}", SyncErrorCode.TOO_LARGE
        )
    try:
        return unpack_plain(data)
    except MsgpackError as exc:
        raise SyncMessageError(str(exc), SyncErrorCode.UNDECODABLE) from None


def _version(top: Any, fields: int) -> list[Any]:
    if type(top) is not list or len(top) != fields:
        raise SyncMessageError(
            f"message must be an array of {fields} fields", SyncErrorCode.BAD_SHAPE
        )
    if type(top[0]) is not int or top[0] != VERSION:
        raise SyncMessageError(f"unsupported version {top[0]!r}", SyncErrorCode.BAD_VERSION)
    return top


def check_open(msg: SyncOpen) -> None:
    if type(msg.scope) is not bytes or len(msg.scope) != SCOPE_BYTES:
        raise SyncMessageError("scope must be 32 bytes", SyncErrorCode.BAD_SCOPE)
    for ts in (msg.lower_ts, msg.upper_ts):
        if type(ts) is not int or not 0 <= ts <= MAX_TS:
            raise SyncMessageError("timestamp bound out of range", SyncErrorCode.BAD_TIMESTAMP)
    if msg.lower_ts >= msg.upper_ts:
        raise SyncMessageError("empty time window", SyncErrorCode.BAD_WINDOW)


def decode_open(data: bytes) -> SyncOpen:
    top = _version(_unpack(data, MAX_CONTROL_BYTES), 4)
    msg = SyncOpen(top[1], top[2], top[3])
    check_open(msg)
    return msg


def decode_accept(data: bytes) -> SyncAccept:
    top = _version(_unpack(data, MAX_CONTROL_BYTES), 2)
    if type(top[1]) is not int or top[1] not in {int(a) for a in Accept}:
        raise SyncMessageError(f"unknown accept status {top[1]!r}", SyncErrorCode.BAD_STATUS)
    return SyncAccept(Accept(top[1]))


def check_request(msg: FetchRequest) -> None:
    if not msg.ids:
        raise SyncMessageError(
            f"a fetch request names 1..{MAX_FETCH_IDS} ids", SyncErrorCode.NO_IDS
        )
    if len(msg.ids) > MAX_FETCH_IDS:
        raise SyncMessageError(
            f"a fetch request names 1..{MAX_FETCH_IDS} ids", SyncErrorCode.TOO_MANY_IDS
        )
    for oid in msg.ids:
        if type(oid) is not bytes or len(oid) != ID_BYTES:
            raise SyncMessageError("ids must be 32 bytes", SyncErrorCode.BAD_ID)
    if len(set(msg.ids)) != len(msg.ids):
        raise SyncMessageError("duplicate ids in a fetch request", SyncErrorCode.DUPLICATE_IDS)


def decode_request(data: bytes) -> FetchRequest:
    top = _version(_unpack(data, MAX_FETCH_REQUEST_BYTES), 2)
    if type(top[1]) is not list:
        raise SyncMessageError("ids must be an array", SyncErrorCode.BAD_SHAPE)
    msg = FetchRequest(tuple(top[1]))
    check_request(msg)
    return msg


def decode_fetch_batch(data: bytes) -> list[bytes]:
    """Objects of one FetchBatch frame (not yet validated: they go through ingest)."""
    top = _unpack(data, MAX_FETCH_FRAME_BYTES)
    if type(top) is not list:
        raise SyncMessageError(
            "a fetch batch is a non-empty array of objects", SyncErrorCode.BAD_SHAPE
        )
    if not top:
        raise SyncMessageError(
            "a fetch batch is a non-empty array of objects", SyncErrorCode.EMPTY_BATCH
        )
    if len(top) > MAX_OBJECTS_PER_BATCH:
        raise SyncMessageError(
            f"more than {MAX_OBJECTS_PER_BATCH} objects in a batch", SyncErrorCode.TOO_MANY_OBJECTS
        )
    for raw in top:
        if type(raw) is not bytes:
            raise SyncMessageError("objects must be binary", SyncErrorCode.BAD_OBJECT)
        if len(raw) > MAX_OBJECT_BYTES:
            raise SyncMessageError(
                f"object of {len(raw)} bytes exceeds {MAX_OBJECT_BYTES}",
                SyncErrorCode.OBJECT_TOO_LARGE,
            )
    return top
