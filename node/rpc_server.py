"""The control socket: a Unix socket (mode 0600) speaking protocols.rpc.

Each connection gets its own nursery: one task reads frames and starts a task per request
(so a slow `search` does not hold up a `status`), one task writes responses and pushes in
order. Pushes go only to connections that called `subscribe`; a subscriber that cannot keep
up loses pushes (counted and logged), never blocks the node.
"""

from __future__ import annotations

import logging
import os
import socket as stdsocket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from protocols import rpc

log = logging.getLogger(__name__)

# Responses + pushes queued per connection before pushes start being dropped.
CONNECTION_SEND_BUFFER = 1024
MAX_CONTROL_CONNECTIONS = 64
READ_CHUNK = 1 << 16

# What a client's socket raises when the client went away (reset, broken pipe, closed).
_CLIENT_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
CLIENT_GONE_LOG = "control client went away"

Handler = Callable[[str, dict[str, Any]], Awaitable[Any]]


def _why(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return f"{type(cause or exc).__name__}: {cause or exc}"


class HandlerError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class RpcServer:
    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self.subscribers: set[trio.MemorySendChannel[bytes]] = set()
        self.connections = 0
        self.dropped_pushes = 0

    def push(self, kind: str, data: Any) -> None:
        """Queue a push to every subscriber (call from the trio thread)."""
        if not self.subscribers:
            return
        frame = rpc.encode(rpc.Push(kind, data))
        for chan in list(self.subscribers):
            try:
                chan.send_nowait(frame)
            except trio.WouldBlock:
                self.dropped_pushes += 1
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                self.subscribers.discard(chan)

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()  # stale socket of a dead node (we hold the data-dir lock)
        sock = trio.socket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # the socket is born 0600: no window where others connect
        try:
            await sock.bind(str(self.path))
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        sock.listen(16)
        listener = trio.SocketListener(sock)
        log.info("control socket at %s", self.path)
        try:
            async with listener:
                task_status.started()
                await trio.serve_listeners(self._connection, [listener])
        finally:
            self.path.unlink(missing_ok=True)

    async def _connection(self, stream: trio.SocketStream) -> None:
        if self.connections >= MAX_CONTROL_CONNECTIONS:
            log.warning("refusing control connection: %d open", self.connections)
            await trio.aclose_forcefully(stream)
            return
        self.connections += 1
        send, recv = trio.open_memory_channel[bytes](CONNECTION_SEND_BUFFER)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, stream, recv, nursery.cancel_scope)
                await self._reader(stream, send, nursery)
                nursery.cancel_scope.cancel()
        except Exception:
            # Last line of defence: whatever one client's connection raises ends that
            # connection only. (A nursery wraps errors in an ExceptionGroup, which is why the
            # socket errors are caught inside _reader/_writer, where they are plain.)
            log.exception("control connection failed; closing it")
        finally:
            self.subscribers.discard(send)
            self.connections -= 1
            await trio.aclose_forcefully(stream)

    async def _writer(
        self, stream: trio.SocketStream, recv: trio.MemoryReceiveChannel[bytes],
        scope: trio.CancelScope,
    ) -> None:  # fmt: skip
        try:
            async for frame in recv:
                await stream.send_all(frame)
        except _CLIENT_GONE as exc:  # EPIPE/ECONNRESET: the client left mid-write
            log.info("%s while writing (%s)", CLIENT_GONE_LOG, _why(exc))
            scope.cancel()

    async def _reader(
        self, stream: trio.SocketStream, send: trio.MemorySendChannel[bytes],
        nursery: trio.Nursery,
    ) -> None:  # fmt: skip
        decoder = rpc.FrameDecoder()
        while True:
            try:
                data = await stream.receive_some(READ_CHUNK)
            except _CLIENT_GONE as exc:
                # ECONNRESET: e.g. a subscriber (the TUI) quit with a push unread in its
                # socket buffer. A normal way to leave; it ends this connection only.
                log.info("%s while reading (%s)", CLIENT_GONE_LOG, _why(exc))
                return
            if not data:
                return
            try:
                messages = decoder.feed(data)
            except rpc.RpcProtocolError as exc:
                log.warning("closing control connection: %s", exc)
                return
            for msg in messages:
                if not isinstance(msg, rpc.Request):
                    log.warning("closing control connection: client sent a non-request")
                    return
                nursery.start_soon(self._answer, msg, send)

    async def _answer(self, req: rpc.Request, send: trio.MemorySendChannel[bytes]) -> None:
        if req.method == "subscribe":
            self.subscribers.add(send)
            response = rpc.Response(req.id, True)
        else:
            try:
                response = rpc.Response(req.id, await self.handler(req.method, req.params))
            except HandlerError as exc:
                response = rpc.Response(req.id, None, exc.code, exc.message)
            except Exception as exc:
                log.exception("control request %s failed", req.method)
                response = rpc.Response(req.id, None, "internal", f"internal error: {exc}")
        try:
            frame = rpc.encode(response)
        except rpc.RpcProtocolError as exc:
            frame = rpc.encode(rpc.Response(req.id, None, "too_large", str(exc)))
        await send.send(frame)
