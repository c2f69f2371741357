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
            payload = bytes(self._buf[_LEN.size : _LEN.size + size])
            del self._buf[: _LEN.size + size]
            try:
                obj = msgpack.unpackb(payload, raw=False, strict_map_key=False)
            except Exception as exc:  # msgpack raises many types on garbage
                raise RpcProtocolError(f"undecodable RPC frame: {exc}") from exc
            out.append(_parse(obj))
        return out
