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
* Any other length (``MAX_FRAME < length < END_MARKER``) is a protocol violation, raised as
  soon as the header is read (the payload is never waited for).
* A sender writes nothing after END; a reader does not read past it.

A fixed 4-byte header was chosen over a varint so another implementation can frame with one
``struct`` call; its cost (≤3 bytes per frame) is nothing next to frames of objects.

Errors: ``read_frame`` raises :class:`FrameError` for an oversized length (code
``frame_too_large``), a stream that ends (EOF or reset) before END or in the middle of a frame
(``truncated``), and any other stream I/O error (``io``); :class:`FrameTimeout` (``timeout``)
when the optional per-read deadline passes. ``decode_frames`` applies the same rules to bytes
in memory (the conformance corpus, docs/conformance/sync.json).
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


# Codes a peer's bytes alone can cause (each has conformance cases) ...
FRAME_TOO_LARGE = "frame_too_large"
TRUNCATED = "truncated"  # EOF inside a frame, or before END
WIRE_ERROR_CODES = (FRAME_TOO_LARGE, TRUNCATED)
# ... and local or transport conditions.
IO_ERROR = "io"
TIMEOUT = "timeout"


class FrameError(Exception):
    """A frame could not be read or written: oversized, truncated, EOF, or I/O error.
    ``code`` is one of the codes above."""

    def __init__(self, message: str, code: str = IO_ERROR) -> None:
        super().__init__(message)
        self.code = code


class FrameTimeout(FrameError):
    """The per-read deadline passed before a whole frame arrived."""

    def __init__(self, message: str) -> None:
        super().__init__(message, TIMEOUT)


def check_length(length: int, max_frame: int = MAX_FRAME) -> bool:
    """Check a header's length; True for END. Oversized: FrameError(frame_too_large)."""
    if length == END_MARKER:
        return True
    if length > max_frame:
        raise FrameError(
            f"frame of {length} bytes exceeds the limit of {max_frame}", FRAME_TOO_LARGE
        )
    return False


def decode_frames(data: bytes, *, max_frame: int = MAX_FRAME) -> list[bytes]:
    """Every DATA payload of a whole stream's bytes, up to its END (sans-I/O; the stream
    ends after ``data``). Raises FrameError like ``read_frame`` would on the same bytes."""
    frames: list[bytes] = []
    pos = 0
    while True:
        if len(data) - pos < HEADER_SIZE:
            raise FrameError("unexpected EOF in frame header", TRUNCATED)
        (length,) = HEADER.unpack_from(data, pos)
        pos += HEADER_SIZE
        if check_length(length, max_frame):
            return frames
        if len(data) - pos < length:
            raise FrameError("unexpected EOF in frame payload", TRUNCATED)
        frames.append(bytes(data[pos : pos + length]))
        pos += length


def encode_frame(data: bytes, *, max_frame: int = MAX_FRAME) -> bytes:
    """Header + payload of one DATA frame."""
    if len(data) > max_frame:
        raise FrameError(
            f"frame of {len(data)} bytes exceeds the limit of {max_frame}", FRAME_TOO_LARGE
        )
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
            raise FrameError(f"unexpected EOF in {what} ({len(buf)}/{n} bytes)", TRUNCATED) from exc
        except Exception as exc:  # StreamReset, StreamError, IOException...
            raise FrameError(f"read failed in {what}: {exc.__class__.__name__}: {exc}") from exc
        if not chunk:
            raise FrameError(f"unexpected EOF in {what} ({len(buf)}/{n} bytes)", TRUNCATED)
        buf += chunk
    return bytes(buf)


async def _read_frame(stream: ByteStream, max_frame: int) -> bytes | None:
    header = await _read_exactly(stream, HEADER_SIZE, "frame header")
    (length,) = HEADER.unpack(header)
    if check_length(length, max_frame):
        return None
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
