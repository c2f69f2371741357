"""Length-prefixed frames for Percolab's own stream protocols (sync, fetch-by-id, ...).

Wire format, per frame::

    +----------------------------+-------------------+
    | length: uint32, big-endian | payload: length B |
    +----------------------------+-------------------+

* ``0 <= length <= MAX_FRAME`` is a DATA frame (an empty payload is a valid frame).
* ``length == END_MARKER`` (``0xFFFFFFFF``) is the explicit END frame, with no payload.
  A sender that finished writes END before closing. It exists because py-libp2p 0.8.1 reports
  a remote ``reset()`` to the reader as plain EOF (``StreamEOF``): without END a reader cannot
  tell "the peer finished" from "the peer crashed or aborted".
* Any other length (``MAX_FRAME < length < END_MARKER``) is a protocol violation.

A fixed 4-byte header was chosen over a varint so another implementation can frame with one
``struct`` call; its cost (≤3 bytes per frame) is nothing next to frames of objects.

Errors: ``read_frame`` raises :class:`FrameError` for an oversized length, a stream that ends
(EOF or reset) before END or in the middle of a frame, and any stream I/O error;
:class:`FrameTimeout` (a ``FrameError``) when the optional per-read deadline passes.
"""

from __future__ import annotations

import struct
from typing import Protocol

import trio

MAX_FRAME = 4 * 1024 * 1024
END_MARKER = 0xFFFFFFFF
HEADER = struct.Struct(">I")
HEADER_SIZE = HEADER.size
READ_CHUNK = 256 * 1024


class ByteStream(Protocol):
    """What framing needs from a stream (a libp2p ``INetStream`` fits)."""

    async def read(self, n: int | None = None) -> bytes: ...

    async def write(self, data: bytes) -> None: ...


class FrameError(Exception):
    """A frame could not be read or written: oversized, truncated, EOF, or I/O error."""


class FrameTimeout(FrameError):
    """The per-read deadline passed before a whole frame arrived."""


def encode_frame(data: bytes, *, max_frame: int = MAX_FRAME) -> bytes:
    """Header + payload of one DATA frame."""
    if len(data) > max_frame:
        raise FrameError(f"frame of {len(data)} bytes exceeds the limit of {max_frame}")
    return HEADER.pack(len(data)) + data


def encode_end() -> bytes:
    """The explicit END frame."""
    return HEADER.pack(END_MARKER)


async def _write(stream: ByteStream, blob: bytes) -> None:
    try:
        await stream.write(blob)
    except FrameError:
        raise
    except Exception as exc:  # libp2p StreamClosed/StreamReset/IOException
        raise FrameError(f"write failed: {exc.__class__.__name__}: {exc}") from exc


async def write_frame(stream: ByteStream, data: bytes, *, max_frame: int = MAX_FRAME) -> None:
    """Write one DATA frame. Raises :class:`FrameError` if ``data`` is over ``max_frame``."""
    await _write(stream, encode_frame(data, max_frame=max_frame))


async def write_end(stream: ByteStream) -> None:
    """Write the END frame (then the caller closes the stream)."""
    await _write(stream, encode_end())


async def _read_exactly(stream: ByteStream, n: int, what: str) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = await stream.read(min(n - len(buf), READ_CHUNK))
        except EOFError as exc:  # libp2p StreamEOF subclasses EOFError
            raise FrameError(f"unexpected EOF in {what} ({len(buf)}/{n} bytes)") from exc
        except Exception as exc:  # StreamReset, StreamError, IOException...
            raise FrameError(f"read failed in {what}: {exc.__class__.__name__}: {exc}") from exc
        if not chunk:
            raise FrameError(f"unexpected EOF in {what} ({len(buf)}/{n} bytes)")
        buf += chunk
    return bytes(buf)


async def _read_frame(stream: ByteStream, max_frame: int) -> bytes | None:
    header = await _read_exactly(stream, HEADER_SIZE, "frame header")
    (length,) = HEADER.unpack(header)
    if length == END_MARKER:
        return None
    if length > max_frame:
        raise FrameError(f"frame of {length} bytes exceeds the limit of {max_frame}")
    if length == 0:
        return b""
    return await _read_exactly(stream, length, "frame payload")


async def read_frame(
    stream: ByteStream, *, max_frame: int = MAX_FRAME, timeout: float | None = None
) -> bytes | None:
    """Read one frame: its payload, or ``None`` for the explicit END frame.

    ``timeout`` (seconds) bounds the whole frame; on expiry :class:`FrameTimeout` is raised
    and the stream should be reset (a partial frame may have been consumed).
    """
    if timeout is None:
        return await _read_frame(stream, max_frame)
    try:
        with trio.fail_after(timeout):
            return await _read_frame(stream, max_frame)
    except trio.TooSlowError as exc:
        raise FrameTimeout(f"no complete frame within {timeout} s") from exc
