"""The HTTP application: routing, parameter and body checks, the write token, ETags and
conditional GET, a response cache invalidated by every store change, and JSON errors.

`serve_http(node, "HOST:PORT")` runs it inside the node's nursery (see docs/http.md).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import trio

from node.http.common import JSON, Ctx, HttpError, NodeLike, Route, etag_of
from node.http.routes import ROUTES, Router
from node.http.schemas import SCHEMAS
from node.http.server import HttpServer, Request, Response, error_body
from node.http.validate import check
from node.identity import write_private_file

log = logging.getLogger(__name__)

TOKEN_FILE = "http.token"
TOKEN_BYTES = 32
# Rendered GET responses kept until the store changes (feed readers poll the same URLs).
MAX_CACHE_ENTRIES = 512
MAX_CACHE_BYTES = 32 * 1024 * 1024
MAX_CACHED_BODY_BYTES = 1024 * 1024
MAX_QUERY_FIELDS = 32
# Worker threads building GET responses at once. One: a render is GIL-bound Python, so two
# only take turns on the GIL while the event loop waits behind both for its own turn
# (bench/http.py, cold, after issue 21's cuts: 1 thread ~575/635 req/s page/feed with p99
# ~15 ms, 2 threads ~490/570 req/s with p99 ~25 ms). A slow read (a long search scan, at most
# a few tens of ms) holds up the reads queued behind it meanwhile.
RENDER_THREADS = 1
# Worker threads for writes, apart from reads: an ingest mostly waits for the writer thread's
# commit, which must not hold up reads.
WRITE_THREADS = 2
# Host header values used to build absolute links (feeds); others fall back to the bind address.
_HOST_RE = re.compile(r"[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")
_LOOPBACK = ("127.", "::1", "localhost")
Stamp = tuple[int, object]  # (store generation, local moderation settings)


def load_or_create_token(data_dir: Path) -> str:
    """The write token: `<data dir>/http.token` (mode 0600), created at first start."""
    path = data_dir / TOKEN_FILE
    try:
        token = path.read_text(encoding="ascii").strip()
        if path.stat().st_mode & 0o077:
            log.warning("%s was readable by others; setting mode 0600", path)
            path.chmod(0o600)
        if token:
            return token
    except FileNotFoundError:
        pass
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read %s (%s); making a new token", path, exc)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    write_private_file(path, token.encode() + b"\n")
    log.info("created the HTTP write token %s", path)
    return token


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


def _json_error(exc: HttpError) -> Response:
    resp = Response(exc.status, error_body(exc.code, exc.message, exc.object_code), JSON)
    if exc.status == 401:
        resp.headers.append(("www-authenticate", 'Bearer realm="percolab"'))
    return resp


class HttpApp:
    def __init__(self, node: NodeLike, token: str) -> None:
        self.node = node
        self.token = token.encode()
        self.router = Router(ROUTES)
        self.server: HttpServer | None = None
        self.generation = 0
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], tuple[Stamp, Response]] = OrderedDict()
        self._cache_bytes = 0
        self.render_limiter = trio.CapacityLimiter(RENDER_THREADS)
        self.write_limiter = trio.CapacityLimiter(WRITE_THREADS)
        node.ingest.listeners.append(lambda stored: self._changed())
        node.service.on_follow.append(lambda lab, on: self._changed())

    def _changed(self) -> None:
        """The store changed (called from worker threads): cached responses are stale."""
        with self._lock:
            self.generation += 1

    def _stamp(self) -> Stamp:
        """What a cached response depends on: the store's generation, and this node's local
        moderation (node settings, not objects: no ingest event; each change replaces its
        Settings object, so `is` tells a change)."""
        local = getattr(self.node.service, "local_moderation", None)
        return self.generation, (local.settings() if local is not None else None)

    def base_url(self, request: Request) -> str:
        host = request.header("host")
        if host and _HOST_RE.fullmatch(host):
            return f"http://{host}"
        addr = self.server.address if self.server is not None else None
        return f"http://{addr[0]}:{addr[1]}" if addr else "http://127.0.0.1"

    async def __call__(self, request: Request) -> Response:
        try:
            return await self._dispatch(request)
        except HttpError as exc:
            resp = _json_error(exc)
            if exc.status == 405:
                resp.headers.append(("allow", exc.message.rsplit(": ", 1)[-1]))
            return resp

    async def _dispatch(self, request: Request) -> Response:
        parts = urlsplit(request.target)
        if not parts.path.startswith("/"):
            raise HttpError(400, "bad_request", "the request target must be a path")
        route, path_params, allowed = self.router.match(request.method, parts.path)
        if route is None:
            if allowed:
                raise HttpError(405, "method_not_allowed",
                                f"{request.method} is not allowed here; allowed: "
                                + ", ".join(allowed))  # fmt: skip
            raise HttpError(404, "not_found", f"no such resource: {parts.path}")
        ctx = Ctx(request, self.node, self.base_url(request), limiter=self.write_limiter,
                  render_limiter=self.render_limiter)  # fmt: skip
        ctx.params = self._params(route, path_params, parts.query)
        if route.auth:
            self._authorize(request)
        if route.method == "POST":
            ctx.body = self._body(route, request)
            return await route.handler(ctx)
        key = (ctx.base_url, request.target)
        cached = self._cache.get(key) if route.cacheable else None
        stamp = self._stamp()
        if cached is not None and cached[0][0] == stamp[0] and cached[0][1] is stamp[1]:
            self._cache.move_to_end(key)
            response = cached[1]
        else:
            response = await route.handler(ctx)
            if not any(name == "etag" for name, _ in response.headers):  # not made by render
                response.headers.append(("etag", etag_of(response.body)))
            response.headers.append(("cache-control", "no-cache"))
            if route.cacheable and len(response.body) <= MAX_CACHED_BODY_BYTES:
                self._remember(key, stamp, response)
        match = request.header("if-none-match")
        if match and _etag_matches(match, dict(response.headers)["etag"]):
            return Response(304, b"", response.content_type, response.headers)
        return response

    def _remember(self, key: tuple[str, str], stamp: Stamp, response: Response) -> None:
        """Keep a rendered response (LRU, bounded in entries and bytes)."""
        old = self._cache.pop(key, None)
        if old is not None:
            self._cache_bytes -= len(old[1].body)
        self._cache[key] = (stamp, response)
        self._cache_bytes += len(response.body)
        while len(self._cache) > MAX_CACHE_ENTRIES or self._cache_bytes > MAX_CACHE_BYTES:
            _, (_, dropped) = self._cache.popitem(last=False)
            self._cache_bytes -= len(dropped.body)

    def _params(self, route: Route, path: dict[str, str], query: str) -> dict[str, Any]:
        try:
            pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
        except ValueError as exc:
            raise HttpError(400, "bad_request", f"bad query string: {exc}") from exc
        given = dict(reversed(pairs))  # the first of repeated names wins
        out: dict[str, Any] = {}
        for p in route.params:
            raw = path.get(p.name) if p.where == "path" else given.get(p.name)
            if raw is None:
                if p.required:
                    raise HttpError(400, "bad_request", f"missing parameter {p.name!r}")
                continue
            out[p.name] = p.parse(raw)
        return out

    def _authorize(self, request: Request) -> None:
        scheme, _, token = request.header("authorization").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HttpError(401, "unauthorized", "this needs 'Authorization: Bearer <token>' "
                            "(the token is in the node's data directory, file http.token)")
        if not hmac.compare_digest(token.strip().encode(), self.token):
            raise HttpError(401, "unauthorized", "wrong token")

    def _body(self, route: Route, request: Request) -> Any:
        ctype = request.header("content-type").split(";")[0].strip().lower()
        if route.raw_body and ctype == "application/octet-stream":
            return request.body
        if ctype not in ("application/json", ""):
            raise HttpError(415, "unsupported_media_type", f"send application/json, not {ctype}")
        try:
            value = json.loads(request.body)
        except (ValueError, RecursionError) as exc:
            raise HttpError(400, "bad_request", f"the body is not valid JSON: {exc}") from exc
        assert route.body is not None
        check(SCHEMAS[route.body], value)
        return value


def parse_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"HTTP address must be HOST:PORT, not {address!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def serve_http(
    node: NodeLike, address: str, *, task_status: Any = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve the API and feeds on `address` until cancelled; `started("HOST:PORT")`."""
    host, port = parse_address(address)
    if not host.startswith(_LOOPBACK):
        log.warning("HTTP API bound to %s, not loopback: anyone who can reach it reads "
                    "this node's objects (writes still need the token)", host)  # fmt: skip
    token = await trio.to_thread.run_sync(load_or_create_token, node.service.data_dir)
    app = HttpApp(node, token)
    app.server = HttpServer(app)
    await app.server.serve(host, port, task_status=task_status)
