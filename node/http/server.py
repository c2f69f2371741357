"""A small HTTP/1.1 server: h11 (sans-I/O) driven by trio streams.

One task per connection, at most MAX_CONNECTIONS at once (the accept loop waits for a free
slot, so extra clients queue in the kernel backlog instead of costing memory here). Each
connection serves requests one after another (keep-alive) and is closed when the client is
idle for IDLE_TIMEOUT_S, slower than REQUEST_TIMEOUT_S to deliver a request, slower than
SEND_TIMEOUT_S to take a response, or breaks the protocol. When every slot is taken, the
connection that has waited longest for its next request (idle, or trickling its request head:
a slow client) is closed to make room, once it has waited EVICT_AFTER_S: 130 slow clients
used to make an honest GET wait for IDLE_TIMEOUT_S (issue 21). Connections whose request is
being handled or answered are never evicted. The application is one coroutine
`app(Request) -> Response`; it never sees h11.
"""

from __future__ import annotations

import errno
import json
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import h11
import trio

log = logging.getLogger(__name__)

# Concurrent connections; further clients wait in the listen backlog.
MAX_CONNECTIONS = 128
LISTEN_BACKLOG = 128
# Request line + headers, in bytes (h11 refuses a larger head with 431).
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADER_COUNT = 64
# Request body, in bytes (an object is at most 64 KiB; base64 in JSON adds a third).
MAX_BODY_BYTES = 256 * 1024
# A keep-alive connection waiting for its next request is closed after this long.
IDLE_TIMEOUT_S = 30.0
# From the first byte of a request to its last.
REQUEST_TIMEOUT_S = 10.0
# Writing one response to the client.
SEND_TIMEOUT_S = 10.0
READ_CHUNK = 64 * 1024
# With every slot taken, a connection waiting this long for (the rest of) its next request
# may be closed to serve a new one (loopback clients send a request in well under a ms).
EVICT_AFTER_S = 0.5
# accept() failing for lack of file descriptors or memory: wait this long, then retry.
ACCEPT_BACKOFF_S = 0.1
_ACCEPT_RETRY = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
SERVER_NAME = b"percolab"
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


@dataclass
class Request:
    method: str
    target: str  # path and query, as sent
    headers: dict[str, str]  # lower-case names; repeated headers joined by ", "
    body: bytes = b""

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


App = Callable[[Request], Awaitable[Response]]


class _TooLarge(Exception):
    pass


def error_body(code: str, message: str, object_code: str | None = None) -> bytes:
    body = {"error": code, "message": message}
    if object_code:  # why an object was refused: a verdict code of docs/protocol.md §4
        body["code"] = object_code
    return json.dumps(body, separators=(",", ":")).encode()


def _error(status: int, code: str, message: str) -> Response:
    return Response(status, error_body(code, message))


class HttpServer:
    def __init__(self, app: App) -> None:
        self.app = app
        self.connections = 0
        self.requests = 0
        self.evicted = 0
        self.address: tuple[str, int] | None = None
        self._open: set[_Connection] = set()

    async def serve(
        self, host: str, port: int, *, task_status: Any = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen on host:port and serve until cancelled; `started("HOST:PORT")` once bound."""
        listeners = await trio.open_tcp_listeners(port, host=host, backlog=LISTEN_BACKLOG)
        sock = listeners[0].socket
        bound = sock.getsockname()
        self.address = (bound[0], bound[1])
        log.info("HTTP API on http://%s:%d", *self.address)
        slots = trio.Semaphore(MAX_CONNECTIONS)
        async with trio.open_nursery() as nursery:
            for listener in listeners:
                nursery.start_soon(self._accept_loop, listener, slots, nursery)
            task_status.started(f"{self.address[0]}:{self.address[1]}")

    async def _accept_loop(
        self, listener: trio.SocketListener, slots: trio.Semaphore, nursery: trio.Nursery
    ) -> None:
        async with listener:
            while True:
                while True:
                    with trio.move_on_after(EVICT_AFTER_S if not slots.value else math.inf):
                        await slots.acquire()
                        break
                    self._evict_one()  # full: make room, then wait for the slot it frees
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    slots.release()
                    if exc.errno not in _ACCEPT_RETRY:
                        raise
                    log.warning("HTTP accept failed (%s); retrying", exc)
                    await trio.sleep(ACCEPT_BACKOFF_S)
                    continue
                nursery.start_soon(self._connection, stream, slots)

    def _evict_one(self) -> None:
        """Close the connection waiting longest for its next request, if it has waited at
        least EVICT_AFTER_S."""
        now = trio.current_time()
        waiting = [c for c in self._open if c.waiting_since is not None]
        if not waiting:
            return
        oldest = min(waiting, key=lambda c: c.waiting_since or now)
        waited = now - (oldest.waiting_since or now)
        if waited >= EVICT_AFTER_S:
            oldest.scope.cancel()
            oldest.waiting_since = None
            self.evicted += 1
            log.debug("HTTP: closed a connection waiting %.1f s to make room", waited)

    async def _connection(self, stream: trio.SocketStream, slots: trio.Semaphore) -> None:
        self.connections += 1
        conn = _Connection(stream, self)
        self._open.add(conn)
        try:
            async with stream:
                with conn.scope:
                    await conn.run()
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
            pass
        except Exception:
            log.exception("HTTP connection failed")
        finally:
            self._open.discard(conn)
            self.connections -= 1
            slots.release()


class _Connection:
    def __init__(self, stream: trio.SocketStream, server: HttpServer) -> None:
        self.stream, self.server = stream, server
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        self.scope = trio.CancelScope()  # cancelled to evict it (HttpServer._evict_one)
        # Since when it waits for (the rest of) its next request; None while one is handled.
        self.waiting_since: float | None = None

    async def run(self) -> None:
        while True:
            try:
                self.waiting_since = trio.current_time()
                with trio.fail_after(IDLE_TIMEOUT_S):
                    first = await self._next_event()
                with trio.fail_after(REQUEST_TIMEOUT_S):
                    request = await self._read_request(first)
                self.waiting_since = None
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint
                await self._send_error(_error(status, "bad_request", f"bad HTTP request: {exc}"))
                return
            except _TooLarge:
                await self._send_error(_error(
                    413, "too_large", f"request body is over {MAX_BODY_BYTES} bytes"))
                return
            except trio.TooSlowError:
                return
            if request is None:
                return
            self.server.requests += 1
            try:
                response = await self.server.app(request)
            except Exception:
                log.exception("HTTP %s %s failed", request.method, request.target)
                response = _error(500, "internal", "internal error (logged by the node)")
            with trio.fail_after(SEND_TIMEOUT_S):
                await self._send_response(request, response)
            if self.conn.our_state is h11.MUST_CLOSE or self.conn.their_state is h11.MUST_CLOSE:
                return
            try:
                self.conn.start_next_cycle()
            except h11.LocalProtocolError:
                return

    async def _next_event(self) -> Any:
        while True:
            event = self.conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.stream.receive_some(READ_CHUNK)
            self.conn.receive_data(data)

    async def _read_request(self, first: Any) -> Request | None:
        if not isinstance(first, h11.Request):
            return None
        if len(first.headers) > MAX_HEADER_COUNT:
            raise h11.RemoteProtocolError("too many headers", error_status_hint=431)
        # h11 bounds only a head that arrives in pieces; one read can bring a larger one.
        head = len(first.target) + sum(len(k) + len(v) + 4 for k, v in first.headers)
        if head > MAX_HEADER_BYTES:
            raise h11.RemoteProtocolError("request head too large", error_status_hint=431)
        headers: dict[str, str] = {}
        for raw_name, raw_value in first.headers:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            raise _TooLarge
        if self.conn.client_is_waiting_for_100_continue:
            await self.stream.send_all(
                self.conn.send(h11.InformationalResponse(status_code=100, headers=[]))
            )
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > MAX_BODY_BYTES:
                    raise _TooLarge
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                return None
        return Request(first.method.decode("ascii", "replace"),
                       first.target.decode("latin-1"), headers, b"".join(chunks))

    def _head(self, response: Response, close: bool) -> h11.Response:
        headers: list[tuple[bytes, bytes]] = [
            (b"server", SERVER_NAME),
            (b"content-type", response.content_type.encode()),
            (b"content-length", str(len(response.body)).encode()),
        ]
        headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        if close:
            headers.append((b"connection", b"close"))
        return h11.Response(status_code=response.status, headers=headers,
                            reason=_REASONS.get(response.status, b""))

    async def _send_response(self, request: Request, response: Response) -> None:
        body = b"" if request.method == "HEAD" or response.status == 304 else response.body
        if response.status == 304:
            response = Response(304, b"", response.content_type, response.headers)
        data = self.conn.send(self._head(response, close=False))
        if body:
            data += self.conn.send(h11.Data(data=body))
        data += self.conn.send(h11.EndOfMessage())
        await self.stream.send_all(data)

    async def _send_error(self, response: Response) -> None:
        """Answer a broken request (if the protocol state allows) before closing."""
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        try:
            data = self.conn.send(self._head(response, close=True))
            data += self.conn.send(h11.Data(data=response.body))
            data += self.conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            return
        with trio.fail_after(SEND_TIMEOUT_S):
            await self.stream.send_all(data)
