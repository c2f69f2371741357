"""An object-checking worker process: `python -m node.check_worker`.

It runs the CPU-heavy, stateless part of ingest for a batch: decode (canonical form), schema
validation and the Ed25519 signature check, exactly as `node.ingest` would inline. Requests
on stdin, replies on stdout, one frame each way per request:

    request:  u32 big-endian length + msgpack [now_ms, [signed object bytes, ...]]
    reply:    u32 big-endian length + msgpack [verdict, ...]   nil = valid, or [code, reason]

A verdict names the first failing check of `protocols.validity.check`, whatever its layer:
the node decides what each means (reject, defer, store as opaque or hidden). The worker knows
the built-in kinds only; an extension kind comes back as "unknown_kind" (its signature checked)
and the node reads it against its own registry. It exits when stdin closes.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from typing import Any, BinaryIO

import msgpack

from protocols import errors, validity

_LEN = struct.Struct(">I")
# The node hashed each object already and checks never read the id: skip a SHA-256 an object.
_UNUSED_ID = bytes(32)


# Workers run below the node's own threads: the writer (the stage a large store waits for),
# the event loop and the TUI's RPCs come first; verification takes the CPU left over.
NICENESS = 10


def check(raws: list[bytes], now: int) -> list[Any]:
    out: list[Any] = []
    for raw in raws:
        try:
            verdict = validity.check(raw, now, oid=_UNUSED_ID)
        except errors.ObjectError as exc:
            out.append([exc.code, str(exc)])
            continue
        out.append(None if verdict.code is None else [verdict.code, verdict.reason])
    return out


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = stream.read(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    while True:
        head = _read_exact(inp, _LEN.size)
        if head is None:
            return
        body = _read_exact(inp, _LEN.unpack(head)[0])
        if body is None:
            return
        now, raws = msgpack.unpackb(body, use_list=True)
        reply = msgpack.packb(check(raws, now), use_bin_type=True)
        out.write(_LEN.pack(len(reply)) + reply)
        out.flush()


if __name__ == "__main__":
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    with contextlib.suppress(BrokenPipeError, KeyboardInterrupt):
        serve(sys.stdin.buffer, sys.stdout.buffer)
