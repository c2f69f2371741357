"""Stream handling of ``/percolab/sync/1.0.0`` and ``/percolab/fetch/1.0.0`` (docs/sync.md).

This module moves frames; it knows nothing of LMDB. The reconciliation state machine is
driven through a ``step`` callable (the node runs it in a worker thread because its
`ItemStore` reads LMDB), and objects are looked up through a ``lookup`` callable.

Errors: `FrameError` (transport: EOF, reset, timeout) and `PeerViolation` (the peer broke
the protocol: an oversized frame header, an undecodable message, an unrequested object,
frames after END...). Callers report violations with ``P2PNode.report_invalid``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from p2p.framing import (
    FRAME_TOO_LARGE,
    MAX_FRAME,
    FrameError,
    read_frame,
    write_end,
    write_frame,
)
from protocols.objects import object_id
from protocols.reconcile_wire import MAX_MESSAGE_BYTES, ReconcileError
from protocols.sync_messages import (
    MAX_CONTROL_BYTES,
    MAX_FETCH_FRAME_BYTES,
    MAX_FETCH_REQUEST_BYTES,
    Accept,
    FetchRequest,
    SyncAccept,
    SyncMessageError,
    SyncOpen,
    decode_accept,
    decode_fetch_batch,
    decode_open,
    decode_request,
    encode_fetch_batches,
)

# Seconds to wait for any one frame from the peer.
FRAME_TIMEOUT_S = 30.0

Step = Callable[[bytes], Awaitable[bytes | None]]


class PeerViolation(Exception):
    """The peer broke the sync or fetch protocol (worth a strike)."""


@dataclass
class SessionIO:
    """What a session moved over its stream (frames and payload bytes, both ways)."""

    frames_sent: int = 0
    frames_received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


def peer_of(stream: Any) -> str:
    """Peer id (base58) of a libp2p stream."""
    return str(stream.muxed_conn.peer_id)


async def _send(stream: Any, data: bytes, io: SessionIO) -> None:
    await write_frame(stream, data)
    io.frames_sent += 1
    io.bytes_sent += len(data) + 4


async def _recv(stream: Any, io: SessionIO, max_bytes: int, timeout: float) -> bytes | None:
    """One frame. A length over the transport limit (MAX_FRAME) or over this message's
    limit is a protocol violation; EOF, reset and timeouts stay FrameErrors (no strike)."""
    try:
        data = await read_frame(stream, max_frame=MAX_FRAME, timeout=timeout)
    except FrameError as exc:
        if exc.code == FRAME_TOO_LARGE:
            raise PeerViolation(str(exc)) from exc
        raise
    io.frames_received += 1
    io.bytes_received += 4 + (len(data) if data is not None else 0)
    if data is not None and len(data) > max_bytes:
        raise PeerViolation(f"frame of {len(data)} bytes where at most {max_bytes} fit")
    return data


async def _finish(stream: Any, io: SessionIO, timeout: float) -> None:
    """Write END, then expect the peer's END (anything else is a violation)."""
    await write_end(stream)
    io.bytes_sent += 4
    if await _recv(stream, io, MAX_MESSAGE_BYTES, timeout) is not None:
        raise PeerViolation("frame after the session ended")
    with contextlib.suppress(Exception):
        await stream.close()


def _violation(exc: Exception) -> PeerViolation:
    return PeerViolation(f"{type(exc).__name__}: {exc}")


async def initiate_sync(
    stream: Any,
    opening: SyncOpen,
    first: bytes,
    step: Step,
    done: Callable[[], bool],
    *,
    frame_timeout: float = FRAME_TIMEOUT_S,
    io: SessionIO | None = None,
) -> Accept:
    """Run the initiator side: SyncOpen + message 0, then alternate until done, then END.

    ``step(peer_message)`` returns the next message (or None); ``done()`` tells whether the
    state machine finished. Returns the responder's accept status (OK when reconciled).
    """
    io = io or SessionIO()
    await _send(stream, opening.encode(), io)
    await _send(stream, first, io)
    raw = await _recv(stream, io, MAX_CONTROL_BYTES, frame_timeout)
    if raw is None:
        raise PeerViolation("END instead of SyncAccept")
    try:
        status = decode_accept(raw).status
    except SyncMessageError as exc:
        raise _violation(exc) from exc
    if status != Accept.OK:
        # The responder sends END right after a refusal; ours goes back.
        await _finish(stream, io, frame_timeout)
        return status
    await _exchange(stream, io, step, done, frame_timeout)
    return Accept.OK


async def _exchange(
    stream: Any, io: SessionIO, step: Step, done: Callable[[], bool], frame_timeout: float
) -> None:
    """Both sides: answer each reconcile message until the machine is done, then END."""
    while not done():
        data = await _recv(stream, io, MAX_MESSAGE_BYTES, frame_timeout)
        if data is None:
            raise PeerViolation("END before the reconciliation finished")
        try:
            reply = await step(data)
        except ReconcileError as exc:
            raise _violation(exc) from exc
        if reply is not None:
            await _send(stream, reply, io)
    await _finish(stream, io, frame_timeout)


async def respond_sync(
    stream: Any,
    accept: Callable[[SyncOpen], Awaitable[tuple[Accept, Step | None, Callable[[], bool]]]],
    *,
    frame_timeout: float = FRAME_TIMEOUT_S,
    io: SessionIO | None = None,
) -> SyncOpen:
    """Run the responder side. ``accept(opening)`` decides and returns the status, the step
    function and the done() probe of a fresh Responder. Returns the opening."""
    io = io or SessionIO()
    raw = await _recv(stream, io, MAX_CONTROL_BYTES, frame_timeout)
    if raw is None:
        raise PeerViolation("END instead of SyncOpen")
    try:
        opening = decode_open(raw)
    except SyncMessageError as exc:
        raise _violation(exc) from exc
    status, step, done = await accept(opening)
    await _send(stream, SyncAccept(status).encode(), io)
    if status != Accept.OK or step is None:
        await write_end(stream)
        # Drain the initiator's message 0 and its END (bounded by frame size and timeout).
        with contextlib.suppress(FrameError):
            while await _recv(stream, io, MAX_MESSAGE_BYTES, frame_timeout) is not None:
                pass
        return opening
    await _exchange(stream, io, step, done, frame_timeout)
    return opening


async def fetch_objects(
    stream: Any,
    ids: Sequence[bytes],
    *,
    frame_timeout: float = FRAME_TIMEOUT_S,
    io: SessionIO | None = None,
) -> AsyncIterator[list[bytes]]:
    """Request ``ids`` and yield the objects as they arrive, one list per frame (as
    `fetch_objects_with_ids`, without the ids)."""
    fetched = fetch_objects_with_ids(stream, ids, frame_timeout=frame_timeout, io=io)
    async with contextlib.aclosing(fetched):
        async for raws, _ in fetched:
            yield raws


async def fetch_objects_with_ids(
    stream: Any,
    ids: Sequence[bytes],
    *,
    frame_timeout: float = FRAME_TIMEOUT_S,
    io: SessionIO | None = None,
) -> AsyncGenerator[tuple[list[bytes], list[bytes]], None]:
    """Request ``ids`` and yield the objects as they arrive, one list per frame, with their
    ids (hashed here to check them: ingest takes them as they are, `Ingest.ingest`'s `ids`).

    Every object must be one of the requested ids, at most once and in request order (else
    `PeerViolation`). Ids the peer does not send are simply missing from the output.
    """
    io = io or SessionIO()
    position = {oid: i for i, oid in enumerate(ids)}
    last = -1  # position of the last object received
    try:
        request = FetchRequest(tuple(ids)).encode()
    except SyncMessageError as exc:
        raise ValueError(str(exc)) from exc
    await _send(stream, request, io)
    await write_end(stream)
    while True:
        data = await _recv(stream, io, MAX_FETCH_FRAME_BYTES, frame_timeout)
        if data is None:
            break
        try:
            raws = decode_fetch_batch(data)
        except SyncMessageError as exc:
            raise _violation(exc) from exc
        oids = [object_id(raw) for raw in raws]
        for oid in oids:
            at = position.get(oid, -1)
            if at < 0:
                raise PeerViolation("fetch answer holds an object that was not requested")
            if at <= last:  # also catches an object sent twice
                raise PeerViolation("fetch answer out of request order (or repeated)")
            last = at
        yield raws, oids
    with contextlib.suppress(Exception):
        await stream.close()


# How `serve_fetch` finds objects: ids -> (the objects found, how many of the ids it took)
Lookup = Callable[[Sequence[bytes]], Awaitable[tuple[list[bytes], int]]]


async def serve_fetch(
    stream: Any,
    lookup: Lookup,
    *,
    frame_timeout: float = FRAME_TIMEOUT_S,
    chunk: int = 256,
    io: SessionIO | None = None,
) -> int:
    """Answer one fetch request: objects found by ``lookup`` (in request order), then END.
    ``lookup`` is handed up to ``chunk`` ids at a time and may stop short (a bound on the
    bytes it reads): it says how many it got through, at least one, and is handed the
    rest next. Returns the number of objects sent."""
    io = io or SessionIO()
    raw = await _recv(stream, io, MAX_FETCH_REQUEST_BYTES, frame_timeout)
    if raw is None:
        raise PeerViolation("END instead of a fetch request")
    try:
        request = decode_request(raw)
    except SyncMessageError as exc:
        raise _violation(exc) from exc
    if await _recv(stream, io, MAX_CONTROL_BYTES, frame_timeout) is not None:
        raise PeerViolation("more than one frame in a fetch request")
    sent = 0
    pending: list[bytes] = []
    pending_bytes = 0
    start = 0
    while start < len(request.ids):
        found, through = await lookup(request.ids[start : start + chunk])
        if through < 1:
            raise ValueError("a fetch lookup got through no id")
        start += through
        pending += found
        pending_bytes += sum(len(r) for r in found)
        if pending_bytes >= MAX_FETCH_FRAME_BYTES // 2:
            for frame in encode_fetch_batches(pending):
                await _send(stream, frame, io)
            sent += len(pending)
            pending, pending_bytes = [], 0
    for frame in encode_fetch_batches(pending):
        await _send(stream, frame, io)
    sent += len(pending)
    await write_end(stream)
    with contextlib.suppress(Exception):
        await stream.close()
    return sent
