"""Length-prefixed frames: round trips, END, limits, truncation, deadlines, real streams."""

from __future__ import annotations

import time
from typing import Any

import pytest
import trio

from p2p.framing import (
    END_MARKER,
    HEADER,
    MAX_FRAME,
    FrameError,
    FrameTimeout,
    encode_end,
    encode_frame,
    read_frame,
    write_end,
    write_frame,
)
from tests.p2p.helpers import Recorder, link, nodes, run


class BufferStream:
    """In-memory stream: reads return at most ``chunk`` bytes, EOF when drained."""

    def __init__(self, data: bytes = b"", chunk: int = 7, eof: bool = True) -> None:
        self.buf = bytearray(data)
        self.chunk = chunk
        self.eof = eof
        self.written = bytearray()

    async def read(self, n: int | None = None) -> bytes:
        await trio.lowlevel.checkpoint()
        if not self.buf:
            if self.eof:
                raise EOFError
            await trio.sleep_forever()
        take = min(n or self.chunk, self.chunk)
        out = bytes(self.buf[:take])
        del self.buf[:take]
        return out

    async def write(self, data: bytes) -> None:
        await trio.lowlevel.checkpoint()
        self.written += data


def test_round_trip_and_end() -> None:
    async def body() -> None:
        out = BufferStream()
        for payload in (b"one", b"", b"x" * 1000):
            await write_frame(out, payload)
        await write_end(out)
        inp = BufferStream(bytes(out.written))
        assert await read_frame(inp) == b"one"
        assert await read_frame(inp) == b""
        assert await read_frame(inp) == b"x" * 1000
        assert await read_frame(inp) is None

    run(body)


def test_oversized_frame_raises_on_read_and_write() -> None:
    async def body() -> None:
        inp = BufferStream(HEADER.pack(MAX_FRAME + 1) + b"zz")
        with pytest.raises(FrameError, match="exceeds"):
            await read_frame(inp)
        with pytest.raises(FrameError):
            await write_frame(BufferStream(), b"x" * 11, max_frame=10)
        with pytest.raises(FrameError):
            await read_frame(BufferStream(encode_frame(b"x" * 11)), max_frame=10)
        assert HEADER.unpack(encode_end())[0] == END_MARKER

    run(body)


def test_truncated_frame_and_bare_eof_raise() -> None:
    async def body() -> None:
        with pytest.raises(FrameError, match="EOF"):
            await read_frame(BufferStream(encode_frame(b"hello")[:-1]))
        with pytest.raises(FrameError, match="EOF"):
            await read_frame(BufferStream(b"\x00\x00"))
        with pytest.raises(FrameError, match="EOF"):
            await read_frame(BufferStream(b""))  # EOF without END is an error, not None

    run(body)


def test_read_deadline() -> None:
    async def body() -> None:
        stalled = BufferStream(encode_frame(b"hello")[:3], eof=False)
        with pytest.raises(FrameTimeout):
            await read_frame(stalled, timeout=0.05)

    run(body)


ECHO = "/percolab/test-echo/1.0.0"


def test_frames_over_libp2p_stream_and_reset_reads_as_error() -> None:
    async def body() -> None:
        async with nodes([Recorder(), Recorder()]) as (a, b):

            async def echo(stream: Any) -> None:
                while (data := await read_frame(stream, timeout=10)) is not None:
                    await write_frame(stream, data)
                await write_end(stream)
                await stream.close()

            async def crash(stream: Any) -> None:
                await read_frame(stream)
                await stream.reset()

            b.set_stream_handler(ECHO, echo)
            b.set_stream_handler(ECHO + "-reset", crash)
            await link(a, b)

            stream = await a.new_stream(b.peer_id, [ECHO])
            big = bytes(range(256)) * (2 * 1024 * 1024 // 256)  # 2 MiB
            t0 = time.perf_counter()
            await write_frame(stream, big)
            assert await read_frame(stream, timeout=10) == big
            rtt = time.perf_counter() - t0
            await write_frame(stream, b"small")
            await write_end(stream)
            assert await read_frame(stream, timeout=10) == b"small"
            assert await read_frame(stream, timeout=10) is None
            print(f"\n2 MiB frame round trip over libp2p: {rtt * 1000:.0f} ms")

            stream = await a.new_stream(b.peer_id, [ECHO + "-reset"])
            await write_frame(stream, b"go")
            with pytest.raises(FrameError):
                await read_frame(stream, timeout=10)

    run(body)
