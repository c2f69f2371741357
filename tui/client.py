"""Asyncio client for the node's control socket (see docs/rpc.md).

``NodeClient`` holds one Unix-socket connection to a node. ``call()`` sends a request and
waits for its response; pushes (after ``subscribe``) go to a callback and to any async
iterators opened with ``pushes()``. ``run()`` is a supervisor loop: it connects, subscribes,
waits until the connection drops, then reconnects with exponential backoff, reporting each
state change through ``on_state``. Nothing here imports the node: only ``protocols.rpc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from protocols.rpc import FrameDecoder, Push, Request, Response, RpcProtocolError, encode

log = logging.getLogger(__name__)

PushCallback = Callable[[Push], None]
StateCallback = Callable[[bool], None]
NO_SEAT = "no_seat"  # the node forgot the seat token (restarted, or the seat was closed)


class NodeUnavailable(ConnectionError):
    """The control socket is absent, refused the connection, or closed it."""


class RpcError(Exception):
    """The node answered a request with an error response."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class PushStream:
    """Async iterator over pushed messages; ends when the client (or the stream) closes."""

    def __init__(self, registry: set[asyncio.Queue[Push | None]]) -> None:
        self.queue: asyncio.Queue[Push | None] = asyncio.Queue()
        self._registry = registry

    def __aiter__(self) -> PushStream:
        return self

    async def __anext__(self) -> Push:
        item = await self.queue.get()
        if item is None:
            self.close()
            raise StopAsyncIteration
        return item

    def close(self) -> None:
        self._registry.discard(self.queue)


class NodeClient:
    """One connection to a node's control socket, with optional auto-reconnect (``run``)."""

    def __init__(
        self,
        socket_path: Path | str,
        *,
        on_push: PushCallback | None = None,
        on_state: StateCallback | None = None,
        subscribe: bool = True,
        min_backoff: float = 0.1,
        max_backoff: float = 2.0,
        call_timeout: float = 30.0,
    ) -> None:
        self.socket_path = Path(socket_path)
        self.on_push = on_push
        self.on_state = on_state
        self.subscribe = subscribe
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.call_timeout = call_timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._read_task: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._next_id = 1
        self._queues: set[asyncio.Queue[Push | None]] = set()
        self._lost = asyncio.Event()
        self._up = asyncio.Event()
        self._closing = False
        # The member signed in on a shared machine (docs/rpc.md "A shared machine"): its
        # token goes with every call. ``on_no_seat`` hears when the node no longer knows it.
        self.seat: str | None = None
        self.on_no_seat: Callable[[], None] | None = None

    # -- connection -----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._lost.is_set()

    async def connect(self) -> None:
        """Open the socket once. Raises ``NodeUnavailable`` when no node listens there."""
        if self.connected:
            return
        try:
            reader, writer = await asyncio.open_unix_connection(str(self.socket_path))
        except OSError as exc:
            raise NodeUnavailable(f"no node at {self.socket_path}: {exc}") from exc
        self._reader, self._writer = reader, writer
        self._lost = asyncio.Event()
        self._read_task = asyncio.create_task(self._read_loop(reader), name="rpc-reader")
        self._up.set()
        log.info("connected to %s", self.socket_path)

    async def wait_connected(self, timeout: float | None = None) -> bool:
        """Wait until a connection is up; False on timeout."""
        try:
            await asyncio.wait_for(self._up.wait(), timeout)
        except TimeoutError:
            return False
        return self.connected

    async def close(self) -> None:
        """Close the connection and stop ``run()``; pending calls fail with NodeUnavailable."""
        self._closing = True
        await self._drop("closed by client")
        if self._read_task is not None and self._read_task is not asyncio.current_task():
            self._read_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._read_task
        for queue in list(self._queues):
            queue.put_nowait(None)

    async def run(self) -> None:
        """Connect, subscribe, wait for the connection to drop, reconnect with backoff; forever.

        Calls ``on_state(True)`` after each successful (re)connect and ``on_state(False)``
        when the connection is lost or a connection attempt fails after having been up.
        """
        delay = self.min_backoff
        reported: bool | None = None
        while not self._closing:
            try:
                await self.connect()
                if self.subscribe:  # pushes are the node's, not a seat's: no stale token
                    await self._request("subscribe", {})
            except (NodeUnavailable, RpcError) as exc:
                log.debug("connect failed: %s", exc)
                await self._drop("connect failed")
                if reported is not False:
                    reported = False
                    self._emit_state(False)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            delay = self.min_backoff
            reported = True
            self._emit_state(True)
            await self._lost.wait()
            if self._closing:
                break
            log.warning("lost connection to node at %s", self.socket_path)
            reported = False
            self._emit_state(False)
            await asyncio.sleep(delay)

    def _emit_state(self, up: bool) -> None:
        if self.on_state is not None:
            try:
                self.on_state(up)
            except Exception:
                log.exception("state callback failed")

    # -- requests -------------------------------------------------------------------------

    async def call(self, method: str, **params: Any) -> Any:
        """Send one request; return its result. ``None`` params are left out; ``seat`` is
        added (when set and not given). A ``no_seat`` error for the current seat forgets it
        and calls ``on_no_seat`` once, then raises as any error."""
        clean = {k: v for k, v in params.items() if v is not None}
        if self.seat is not None:
            clean.setdefault("seat", self.seat)
        try:
            return await self._request(method, clean)
        except RpcError as exc:
            if exc.code == NO_SEAT and self.seat is not None and clean.get("seat") == self.seat:
                self.seat = None  # a call with a newer seat must not lose that one
                if self.on_no_seat is not None:
                    try:
                        self.on_no_seat()
                    except Exception:
                        log.exception("no-seat callback failed")
            raise

    async def _request(self, method: str, clean: dict[str, Any]) -> Any:
        writer = self._writer
        if writer is None or self._lost.is_set():
            raise NodeUnavailable("not connected to a node")
        rid = self._next_id
        self._next_id += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            writer.write(encode(Request(rid, method, clean)))
            await writer.drain()
        except (OSError, RuntimeError) as exc:
            self._pending.pop(rid, None)
            await self._drop(f"write failed: {exc}")
            raise NodeUnavailable(f"write to node failed: {exc}") from exc
        try:
            return await asyncio.wait_for(future, self.call_timeout)
        except TimeoutError as exc:
            raise NodeUnavailable(f"{method}: no answer within {self.call_timeout}s") from exc
        finally:
            self._pending.pop(rid, None)

    # -- pushes ---------------------------------------------------------------------------

    def pushes(self) -> PushStream:
        """An async iterator over pushes from now on (registered at once), until close()."""
        stream = PushStream(self._queues)
        self._queues.add(stream.queue)
        return stream

    # -- internals ------------------------------------------------------------------------

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        decoder = FrameDecoder()
        reason = "node closed the connection"
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for message in decoder.feed(data):
                    self._dispatch(message)
        except RpcProtocolError as exc:
            reason = f"protocol error: {exc}"
            log.error("bad frame from node: %s", exc)
        except (OSError, asyncio.IncompleteReadError) as exc:
            reason = f"read failed: {exc}"
        except asyncio.CancelledError:
            reason = "cancelled"
            raise
        finally:
            await self._drop(reason)

    def _dispatch(self, message: Any) -> None:
        if isinstance(message, Response):
            future = self._pending.get(message.id)
            if future is None or future.done():
                log.debug("response to unknown request %s", message.id)
                return
            if message.ok:
                future.set_result(message.result)
            else:
                code = message.error_code or "error"
                future.set_exception(RpcError(code, message.error_message or ""))
        elif isinstance(message, Push):
            if self.on_push is not None:
                try:
                    self.on_push(message)
                except Exception:
                    log.exception("push callback failed")
            for queue in self._queues:
                queue.put_nowait(message)
        else:
            log.debug("ignoring unexpected message %r", message)

    async def _drop(self, reason: str) -> None:
        writer, self._writer = self._writer, None
        self._reader = None
        self._up.clear()
        self._lost.set()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(NodeUnavailable(reason))
        self._pending.clear()
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
