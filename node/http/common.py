"""Shared pieces of the HTTP API: routes and their parameters, the per-request context,
errors and the mapping of service error codes to HTTP statuses."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import trio

from node.http.server import Request, Response
from node.ingest.pipeline import Ingest
from node.service.api import Service, ServiceError
from node.service.queries import QueryError
from node.store import StoreError, StoreFull
from node.store.store import Store
from protocols import errors
from protocols.objects import SignedObject

T = TypeVar("T")
JSON = "application/json"
ATOM = "application/atom+xml; charset=utf-8"
# ServiceError / query error codes -> HTTP status; anything unlisted is the node's fault (500).
STATUS_OF_CODE = {
    "bad_request": 400,
    "ambiguous": 400,
    "unauthorized": 401,
    "not_author": 403,
    "not_steward": 403,  # a lab decision that would have no authority (docs/governance.md)
    "not_member": 403,
    "not_found": 404,
    "no_identity": 409,
    "no_change": 409,  # an edit that changes nothing (node/service/living_ops.py)
    "unknown_need": 409,  # a pledge answering a need the project does not list now
    "locked": 423,  # the member key waits for its passphrase (node/service/unlock_ops.py)
    "too_large": 413,
    "unsupported_media_type": 415,
    "invalid_object": 422,
    "store": 503,  # the store failed (damaged, read-only): node.store.StoreError
    "store_full": 507,  # the disk is full: writes fail, reads go on
}


class NodeLike(Protocol):
    """What the HTTP API needs of `node.runtime.Node` (kept structural: no import cycle)."""

    store: Store
    service: Service
    ingest: Ingest

    async def handle_rpc(self, method: str, params: dict[str, Any]) -> Any: ...

    def publish_object(self, obj: SignedObject) -> None: ...


class HttpError(Exception):
    def __init__(
        self, status: int, code: str, message: str, object_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.object_code = object_code  # for invalid_object: the verdict code


def error_for(code: str, message: str, object_code: str | None = None) -> HttpError:
    return HttpError(STATUS_OF_CODE.get(code, 500), code, message, object_code)


# Results are trees of fresh dicts and lists: no cycle check (one dict operation per container).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


def json_response(value: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:  # noqa: E501
    body = _ENCODER.encode(value).encode()
    return Response(status, body, JSON, headers or [])


def etag_of(body: bytes) -> str:
    """A strong ETag: a hash of the body, so equal bodies have equal tags across restarts."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _rendered(fn: Callable[..., Response], *args: Any) -> Response:
    response = fn(*args)
    response.headers.append(("etag", etag_of(response.body)))
    return response


@dataclass(frozen=True)
class Param:
    """A path or query parameter, checked before the handler runs (and listed in OpenAPI)."""

    name: str
    where: str = "query"  # "path" or "query"
    type: str = "string"  # "string" or "integer"
    required: bool = False
    description: str = ""
    minimum: int | None = None
    maximum: int | None = None
    enum: tuple[str, ...] = ()
    pattern: str | None = None
    max_length: int | None = None
    default: Any = None

    def parse(self, raw: str) -> Any:
        """The value of `raw` (as sent, decoded), or HttpError(400). An empty value is a value,
        and never a valid one (OpenAPI's allowEmptyValue is false): `?limit=` is refused, not
        read as the default."""
        if not raw:
            raise HttpError(400, "bad_request", f"{self.name} must not be empty")
        if self.max_length is not None and len(raw) > self.max_length:
            raise HttpError(400, "bad_request", f"{self.name} is longer than {self.max_length}")
        if self.type == "integer":
            if not re.fullmatch(r"-?[0-9]{1,12}", raw):
                raise HttpError(400, "bad_request", f"{self.name} must be an integer")
            value = int(raw)
            if self.minimum is not None and value < self.minimum:
                raise HttpError(400, "bad_request", f"{self.name} must be >= {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                raise HttpError(400, "bad_request", f"{self.name} must be <= {self.maximum}")
            return value
        if self.enum and raw not in self.enum:
            raise HttpError(400, "bad_request", f"{self.name} must be one of {list(self.enum)}")
        if self.pattern is not None and not re.fullmatch(self.pattern, raw):
            raise HttpError(400, "bad_request", f"{self.name} is malformed")
        return raw


@dataclass
class Ctx:
    """One request as a handler sees it: validated parameters and the parsed body."""

    request: Request
    node: NodeLike
    base_url: str
    params: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    limiter: trio.CapacityLimiter | None = None  # worker threads for store work (writes)
    render_limiter: trio.CapacityLimiter | None = None  # worker threads for GET responses

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking store work in a worker thread, mapping its errors to HTTP ones."""
        return await self._in_thread(self.limiter, fn, *args)

    async def render(self, fn: Callable[..., Response], *args: Any) -> Response:
        """`run` for a GET: the whole body (reads, views, JSON or Atom) and its ETag are made
        in one worker thread, one hop per request; the hash releases the GIL, so it overlaps
        the event loop's work."""
        return await self._in_thread(self.render_limiter, _rendered, fn, *args)

    async def _in_thread(
        self, limiter: trio.CapacityLimiter | None, fn: Callable[..., T], *args: Any
    ) -> T:
        try:
            return await trio.to_thread.run_sync(fn, *args, limiter=limiter)
        except ServiceError as exc:
            raise error_for(exc.code, exc.message, exc.object_code) from exc
        except QueryError as exc:
            raise error_for(exc.code, str(exc)) from exc
        except errors.ObjectError as exc:
            raise error_for("invalid_object", str(exc), exc.code) from exc
        except StoreFull as exc:  # as Service.call maps them (handlers also read directly)
            raise error_for("store_full", str(exc)) from exc
        except StoreError as exc:
            raise error_for("store", str(exc)) from exc

    def call(self, method: str, params: dict[str, Any]) -> Any:
        """`Service.call` (blocking: use inside `run`)."""
        return self.node.service.call(method, params)


Handler = Callable[[Ctx], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # e.g. "/api/v1/labs/{lab}/projects"
    handler: Handler
    summary: str
    response: str  # OpenAPI component schema of the 2xx body ("" for Atom)
    params: tuple[Param, ...] = ()
    body: str | None = None  # OpenAPI component schema of a JSON request body
    raw_body: bool = False  # also accepts application/octet-stream
    auth: bool = False
    cacheable: bool = False  # a pure function of the store: cached until the store changes
    content_type: str = JSON
    status: int = 200
    also: tuple[int, ...] = ()  # other 2xx statuses of the same `response` body
    errors: tuple[int, ...] = (400,)
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        object.__setattr__(self, "pattern", re.compile(regex + "$"))

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.lstrip("_")
