"""Messages of the catch-up stream protocols (sans-I/O): ``/percolab/sync/1.0.0`` and
``/percolab/fetch/1.0.0``. Every decoder accepts any bytes and raises only
`SyncMessageError`; every size is bounded by a named limit before it is allocated.
The byte-level format is specified in docs/sync.md ("Transport").

Sync stream (frames of ``p2p/framing.py``)::

    initiator -> SyncOpen, reconcile message 0, 2, 4, ...            then END
    responder -> SyncAccept, reconcile message 1, 3, 5, ...          then END

Fetch stream::

    requester -> FetchRequest                                        then END
    server    -> FetchBatch, FetchBatch, ... (objects, in request order, unknown omitted), END
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import msgpack

from protocols.limits import MAX_OBJECT_BYTES
from protocols.reconcile_store import ID_BYTES, MAX_TS
from protocols.reconcile_wire import SYNC_PROTOCOL_ID as SYNC_PROTOCOL_ID

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
MAX_FETCH_REQUEST_BYTES = 16 + MAX_FETCH_IDS * (ID_BYTES + 2)


class SyncMessageError(ValueError):
    """A sync or fetch message is malformed or exceeds a limit."""


class Accept(IntEnum):
    OK = 0  # reconcile messages follow
    BUSY = 1  # too many sessions: try later; END follows
    REFUSED = 2  # scope or parameters not served; END follows


@dataclass(frozen=True)
class SyncOpen:
    """First frame of a sync stream: which scope and time window the session covers."""

    scope: bytes  # lab id, or 32 zero bytes for the public scope
    lower_ts: int = 0
    upper_ts: int = MAX_TS

    def encode(self) -> bytes:
        check_open(self)
        return _pack([VERSION, self.scope, self.lower_ts, self.upper_ts])


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


def _unpack(data: bytes, max_bytes: int, *, max_bin: int, max_array: int) -> Any:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SyncMessageError("message must be bytes")
    if len(data) > max_bytes:
        raise SyncMessageError(f"message of {len(data)} bytes exceeds {max_bytes}")
    try:
        return msgpack.unpackb(
            bytes(data), raw=False, use_list=True, strict_map_key=True,
            max_bin_len=max_bin, max_str_len=0, max_array_len=max_array,
            max_map_len=0, max_ext_len=0,
        )  # fmt: skip
    except Exception as exc:  # msgpack raises many types on garbage
        raise SyncMessageError(f"undecodable message: {type(exc).__name__}") from None


def _version(top: Any, fields: int) -> list[Any]:
    if type(top) is not list or len(top) != fields:
        raise SyncMessageError(f"message must be an array of {fields} fields")
    if type(top[0]) is not int or top[0] != VERSION:
        raise SyncMessageError(f"unsupported version {top[0]!r}")
    return top


def check_open(msg: SyncOpen) -> None:
    if type(msg.scope) is not bytes or len(msg.scope) != SCOPE_BYTES:
        raise SyncMessageError("scope must be 32 bytes")
    for ts in (msg.lower_ts, msg.upper_ts):
        if type(ts) is not int or not 0 <= ts <= MAX_TS:
            raise SyncMessageError("timestamp bound out of range")
    if msg.lower_ts >= msg.upper_ts:
        raise SyncMessageError("empty time window")


def decode_open(data: bytes) -> SyncOpen:
    top = _version(_unpack(data, MAX_CONTROL_BYTES, max_bin=SCOPE_BYTES, max_array=8), 4)
    msg = SyncOpen(top[1], top[2], top[3])
    check_open(msg)
    return msg


def decode_accept(data: bytes) -> SyncAccept:
    top = _version(_unpack(data, MAX_CONTROL_BYTES, max_bin=0, max_array=8), 2)
    if type(top[1]) is not int or top[1] not in {int(a) for a in Accept}:
        raise SyncMessageError(f"unknown accept status {top[1]!r}")
    return SyncAccept(Accept(top[1]))


def check_request(msg: FetchRequest) -> None:
    if not 0 < len(msg.ids) <= MAX_FETCH_IDS:
        raise SyncMessageError(f"a fetch request names 1..{MAX_FETCH_IDS} ids")
    for oid in msg.ids:
        if type(oid) is not bytes or len(oid) != ID_BYTES:
            raise SyncMessageError("ids must be 32 bytes")
    if len(set(msg.ids)) != len(msg.ids):
        raise SyncMessageError("duplicate ids in a fetch request")


def decode_request(data: bytes) -> FetchRequest:
    top = _version(
        _unpack(data, MAX_FETCH_REQUEST_BYTES, max_bin=ID_BYTES, max_array=MAX_FETCH_IDS), 2
    )
    if type(top[1]) is not list:
        raise SyncMessageError("ids must be an array")
    msg = FetchRequest(tuple(top[1]))
    check_request(msg)
    return msg


def decode_fetch_batch(data: bytes) -> list[bytes]:
    """Objects of one FetchBatch frame (not yet validated: they go through ingest)."""
    top = _unpack(
        data, MAX_FETCH_FRAME_BYTES, max_bin=MAX_OBJECT_BYTES, max_array=MAX_OBJECTS_PER_BATCH
    )
    if type(top) is not list or not top:
        raise SyncMessageError("a fetch batch is a non-empty array of objects")
    for raw in top:
        if type(raw) is not bytes:
            raise SyncMessageError("objects must be binary")
    return top
