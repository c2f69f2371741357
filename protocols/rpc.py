"""Local control RPC: the message set spoken over the node's Unix socket (sans-I/O).

Framing: each message is a 4-byte big-endian length followed by that many bytes of a
msgpack map. Three shapes of message travel on one connection:

- request   ``{"id": int, "method": str, "params": {...}}``       client -> node
- response  ``{"id": int, "result": any}`` or
            ``{"id": int, "error": {"code": str, "message": str}}`` node -> client
- push      ``{"push": str, "data": any}``                          node -> client

Push messages are sent only after the client called ``subscribe``; ``push == "object"``
carries a summary of a newly stored object, ``push == "sync"`` carries sync progress.
The method names and their parameters are listed in ``METHODS`` and documented in
``docs/rpc.md``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import msgpack

# A control-socket frame holds a page of results, never bulk data: 16 MiB is far above any page.
MAX_RPC_FRAME = 16 * 1024 * 1024
# The frame length alone does not bound memory: decoded, every msgpack value becomes a Python
# object of ~35-75 bytes (one 16 MiB frame of empty arrays took a node to 1.2 GB RSS). So a
# frame may hold at most this many values (every scalar, array, map, and map key counts one),
# which bounds a decoded frame to ~75 MB at worst. The largest legitimate frames hold far fewer:
# an 8 MiB export page of objects (>= ~110 bytes each) is < 80,000 values, a page of 200
# project views a few thousand.
MAX_RPC_ITEMS = 1_000_000
# msgpack's own per-container caps, as a second bound (no message uses ext types).
MAX_RPC_CONTAINER_LEN = MAX_RPC_ITEMS
MAX_RPC_EXT_LEN = 0
_LEN = struct.Struct(">I")

# method name -> parameter names it accepts (all optional unless the node says otherwise).
METHODS: dict[str, tuple[str, ...]] = {
    "status": (),
    "peers": (),
    "whoami": (),
    "init": ("name", "about"),
    "profile_set": ("name", "about"),
    "lab_list": (),
    "lab_create": ("name", "description", "place"),
    "lab_follow": ("lab",),
    "lab_unfollow": ("lab",),
    "projects": ("lab", "order", "limit", "cursor", "tag", "author"),
    "project": ("id",),
    "show": ("id",),
    "post": ("lab", "title", "summary", "body", "stage", "needs", "tags"),
    "comment": ("target", "body", "parent"),
    "tag": ("target", "labels"),
    "retract": ("id",),
    "tags": ("limit",),
    "search": ("query", "limit"),
    "export": ("lab",),
    "import_objects": ("objects",),
    "connect": ("addr",),
    "subscribe": (),
}


class RpcProtocolError(ValueError):
    """The peer on the control socket sent bytes that are not a valid RPC frame."""


@dataclass(frozen=True)
class Request:
    id: int
    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Response:
    id: int
    result: Any = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_code is None


@dataclass(frozen=True)
class Push:
    kind: str
    data: Any


Message = Request | Response | Push


def encode(message: Message) -> bytes:
    """Serialise one message into a length-prefixed frame."""
    body: dict[str, Any]
    if isinstance(message, Request):
        body = {"id": message.id, "method": message.method, "params": message.params}
    elif isinstance(message, Response):
        if message.error_code is None:
            body = {"id": message.id, "result": message.result}
        else:
            body = {
                "id": message.id,
                "error": {"code": message.error_code, "message": message.error_message or ""},
            }
    else:
        body = {"push": message.kind, "data": message.data}
    payload: bytes = msgpack.packb(body, use_bin_type=True)
    if len(payload) > MAX_RPC_FRAME:
        raise RpcProtocolError(f"RPC frame of {len(payload)} bytes exceeds {MAX_RPC_FRAME}")
    return _LEN.pack(len(payload)) + payload


def _parse(obj: Any) -> Message:
    if not isinstance(obj, dict):
        raise RpcProtocolError("RPC frame is not a map")
    if "push" in obj:
        kind = obj["push"]
        if not isinstance(kind, str):
            raise RpcProtocolError("push kind must be a string")
        return Push(kind, obj.get("data"))
    mid = obj.get("id")
    if not isinstance(mid, int) or isinstance(mid, bool):
        raise RpcProtocolError("RPC frame has no integer id")
    if "method" in obj:
        method, params = obj["method"], obj.get("params", {})
        if not isinstance(method, str):
            raise RpcProtocolError("method must be a string")
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise RpcProtocolError("params must be a map with string keys")
        return Request(mid, method, params)
    if "error" in obj:
        err = obj["error"]
        if not isinstance(err, dict):
            raise RpcProtocolError("error must be a map")
        return Response(mid, None, str(err.get("code", "error")), str(err.get("message", "")))
    if "result" in obj:
        return Response(mid, obj["result"])
    raise RpcProtocolError("RPC frame is neither request, response nor push")


# The msgpack format, as far as `count_items` needs it (github.com/msgpack/msgpack/spec.md).
_FIXED: dict[int, int] = {  # fixed size: bytes after the type byte
    0xC0: 0, 0xC2: 0, 0xC3: 0,  # nil, false, true
    0xCA: 4, 0xCB: 8,  # float32/64
    0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8,  # uint8..64
    0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8,  # int8..64
    0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17,  # fixext 1..16 (type byte + data)
}  # fmt: skip
_SIZED: dict[int, tuple[int, int]] = {  # length-prefixed: (length bytes, extra bytes)
    0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0),  # bin8/16/32
    0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1),  # ext8/16/32 (+ type byte)
    0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0),  # str8/16/32
}  # fmt: skip
_COUNTED: dict[int, tuple[int, int]] = {  # (length bytes, values per counted element)
    0xDC: (2, 1), 0xDD: (4, 1),  # array16/32
    0xDE: (2, 2), 0xDF: (4, 2),  # map16/32: a key and a value per entry
}  # fmt: skip


def count_items(payload: bytes, limit: int = MAX_RPC_ITEMS) -> int:
    """The number of msgpack values in the one value ``payload`` starts with.

    Refuses (RpcProtocolError) a value of more than ``limit`` values, or whose containers
    declare more values than there are bytes left, before anything is allocated.

    Walks the type bytes only (strings and bins are skipped whole), and stops at the first
    value over the limit. Every value takes at least one byte, so a payload of at most
    ``limit`` bytes always passes: callers may skip the walk for those.
    """
    end = len(payload)
    pos, pending, items = 0, 1, 0
    while pending:
        if pos >= end:
            raise RpcProtocolError("truncated msgpack value")
        b = payload[pos]
        pos += 1
        pending -= 1
        items += 1
        if items > limit:
            raise RpcProtocolError(f"RPC frame holds more than {limit} msgpack values")
        if b <= 0x7F or b >= 0xE0:  # fixint
            continue
        if b <= 0x8F:  # fixmap
            pending += 2 * (b & 0x0F)
        elif b <= 0x9F:  # fixarray
            pending += b & 0x0F
        elif b <= 0xBF:  # fixstr
            pos += b & 0x1F
        elif b in _FIXED:
            pos += _FIXED[b]
        elif b in _SIZED:
            width, extra = _SIZED[b]
            pos += width + extra + int.from_bytes(payload[pos : pos + width], "big")
        elif b in _COUNTED:
            width, per = _COUNTED[b]
            pending += per * int.from_bytes(payload[pos : pos + width], "big")
            pos += width
        else:  # 0xC1: never used
            raise RpcProtocolError(f"invalid msgpack type byte 0x{b:02x}")
        if pos > end:
            raise RpcProtocolError("truncated msgpack value")
        if pending > end - pos:  # each declared value needs at least one more byte
            raise RpcProtocolError("msgpack container declares more values than bytes left")
    return items


class FrameDecoder:
    """Feed bytes in, take whole messages out. Raises RpcProtocolError on bad input."""

    def __init__(self, max_frame: int = MAX_RPC_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        out: list[Message] = []
        while len(self._buf) >= _LEN.size:
            (size,) = _LEN.unpack_from(self._buf)
            if size > self._max:
                raise RpcProtocolError(f"RPC frame of {size} bytes exceeds {self._max}")
            if len(self._buf) < _LEN.size + size:
                break
            with memoryview(self._buf) as view:  # one copy of the payload, not two
                payload = bytes(view[_LEN.size : _LEN.size + size])
            del self._buf[: _LEN.size + size]
            if len(payload) > MAX_RPC_ITEMS:  # a smaller payload cannot hold more values
                count_items(payload)
            try:
                obj = msgpack.unpackb(
                    payload, raw=False, strict_map_key=False,
                    max_array_len=MAX_RPC_CONTAINER_LEN, max_map_len=MAX_RPC_CONTAINER_LEN,
                    max_str_len=MAX_RPC_FRAME, max_bin_len=MAX_RPC_FRAME,
                    max_ext_len=MAX_RPC_EXT_LEN,
                )  # fmt: skip
            except Exception as exc:  # msgpack raises many types on garbage
                raise RpcProtocolError(f"undecodable RPC frame: {exc}") from exc
            out.append(_parse(obj))
        return out
