"""How a CLI command reaches the data: through the running node's control socket when a node
holds the data directory, or by opening the store directly when none does.

Only one process opens the LMDB environment at a time (DESIGN.md): a running node holds an
exclusive flock on `node.lock`; the CLI takes the same lock for its direct access, so a node
and a CLI command never have the store open together.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from node.config import SOCKET_FILE, STORE_DIR
from node.identity import make_private_dir
from node.service.api import ServiceError
from protocols import rpc

LOCK_FILE = "node.lock"
# LMDB's files in the store directory: all must be writable to open the store for writing.
STORE_FILES = ("data.mdb", "lock.mdb")
# Errors that mean "this directory cannot be written", as opposed to "it is not there".
_NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
# How long the CLI waits for a starting node's socket before giving up.
SOCKET_WAIT_S = 10.0
RPC_TIMEOUT_S = 120.0


# Requests a bulk command (`percolab import`) keeps in flight: while the node stores one
# chunk, it checks the next (node/ingest/writer.py). Measured in-process on bench/ingest.py's
# mix, 300k objects in calls of 2048: 6.0k/s one at a time, 9.5k/s two at a time.
BULK_IN_FLIGHT = 2


class Backend(Protocol):
    def call(self, method: str, **params: Any) -> Any: ...

    def call_each(
        self, method: str, params: Sequence[dict[str, Any]], in_flight: int = BULK_IN_FLIGHT
    ) -> Iterator[Any]:
        """The results of one call per item of `params`, in order, `in_flight` at a time."""
        ...


class DataDirBusy(RuntimeError):
    pass


class DataDirError(RuntimeError):
    """The data directory cannot be created or used (a one-line error in the CLI)."""


def data_dir_writable(data_dir: Path) -> bool:
    """Whether the directory and the store's files (those that exist) can be written: if
    not, only reading commands can run, on a store opened read-only."""
    store = data_dir / STORE_DIR
    paths = [data_dir, store, *(store / name for name in STORE_FILES)]
    return all(os.access(p, os.W_OK) for p in paths if p.exists())


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data directory (mode 0700) if it is missing; DataDirError if it cannot be."""
    try:
        make_private_dir(data_dir)
    except OSError as exc:
        raise DataDirError(f"cannot create the data directory {data_dir}: {exc.strerror}") from exc


@contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[bool]:
    """Try to hold the data directory's lock; yields False if another process holds it.

    In a directory this process cannot write, an existing lock file is locked through a
    read-only descriptor (flock does not need write access); with no lock file there, no
    node can be running (a node creates it), so the directory counts as free."""
    prepare_data_dir(data_dir)
    path = data_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        if exc.errno not in _NOT_WRITABLE:
            raise DataDirError(f"cannot use {data_dir} as a data directory: "
                               f"{exc.strerror}") from exc  # fmt: skip
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            yield True
            return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class RpcBackend:
    """A blocking client of the control socket (the TUI has its own asyncio one)."""

    def __init__(self, path: Path, timeout: float = RPC_TIMEOUT_S) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.decoder = rpc.FrameDecoder()
        self.next_id = 1
        self.pending: list[rpc.Message] = []
        self.early: dict[int, rpc.Response] = {}  # responses to requests still in flight

    def close(self) -> None:
        self.sock.close()

    def call(self, method: str, **params: Any) -> Any:
        """One request and its response; every failure is a ServiceError (a one-line error
        in the CLI, never a traceback)."""
        return next(self.call_each(method, [params], in_flight=1))

    def call_each(
        self, method: str, params: Sequence[dict[str, Any]], in_flight: int = BULK_IN_FLIGHT
    ) -> Iterator[Any]:
        try:
            yield from self._call_each(method, params, in_flight)
        except rpc.RpcProtocolError as exc:
            raise ServiceError("bad_frame", str(exc)) from exc
        except OSError as exc:  # includes the socket timeout
            raise ServiceError("unavailable", f"control socket: {exc}") from exc

    def _call_each(
        self, method: str, params: Sequence[dict[str, Any]], in_flight: int
    ) -> Iterator[Any]:
        todo = iter(params)
        sent: deque[int] = deque()

        def send_next() -> None:
            p = next(todo, None)
            if p is not None:
                mid, self.next_id = self.next_id, self.next_id + 1
                self.sock.sendall(rpc.encode(rpc.Request(mid, method, p)))
                sent.append(mid)

        for _ in range(max(1, in_flight)):
            send_next()
        while sent:
            msg = self._response(sent.popleft())
            send_next()  # the node works on it while the caller handles this result
            if msg.error_code is not None:
                raise ServiceError(msg.error_code, msg.error_message or "")
            yield msg.result

    def _response(self, mid: int) -> rpc.Response:
        while True:
            if mid in self.early:
                return self.early.pop(mid)
            while self.pending:
                msg = self.pending.pop(0)
                if isinstance(msg, rpc.Response):  # pushes are not for the CLI
                    self.early[msg.id] = msg
            if mid in self.early:
                continue
            data = self.sock.recv(1 << 16)
            if not data:
                raise ServiceError("unavailable", "the node closed the control socket")
            self.pending += self.decoder.feed(data)


class LocalBackend:
    """Opens the store in this process (no node running for the data directory)."""

    def __init__(self, data_dir: Path, *, readonly: bool = False) -> None:
        from node.config import load_extensions
        from node.ingest.pipeline import Ingest
        from node.service.api import Service
        from node.store.store import Store

        load_extensions(data_dir)  # before the store opens: it indexes the kinds it knows
        self.store = Store(data_dir / STORE_DIR, readonly=readonly)
        self.ingest = Ingest(self.store)
        self.service = Service(data_dir, self.store, self.ingest)

    def close(self) -> None:
        self.ingest.close()
        self.store.close()

    def call_each(
        self, method: str, params: Sequence[dict[str, Any]], in_flight: int = BULK_IN_FLIGHT
    ) -> Iterator[Any]:
        with ThreadPoolExecutor(max(1, in_flight), thread_name_prefix="cli-call") as pool:
            todo = iter(params)
            futs: deque[Future[Any]] = deque()

            def submit_next() -> None:
                p = next(todo, None)
                if p is not None:
                    futs.append(pool.submit(lambda: self.call(method, **p)))

            for _ in range(max(1, in_flight)):
                submit_next()
            while futs:
                fut = futs.popleft()
                submit_next()
                yield fut.result()

    def call(self, method: str, **params: Any) -> Any:
        if method in ("peers", "connect"):
            raise ServiceError("no_node", f"`{method}` needs a running node (`percolab node`)")
        result = self.service.call(method, params)
        if method == "status":
            result |= {"running": False}
        return result


@contextmanager
def open_backend(data_dir: Path, *, write: bool = True) -> Iterator[Backend]:
    """A backend for one command; `write`: the command changes the store, so a read-only
    data directory (no running node to go through) is a DataDirError for it."""
    sock = data_dir / SOCKET_FILE
    with data_dir_lock(data_dir) as free:
        if free:
            readonly = not data_dir_writable(data_dir)
            if readonly and write:
                raise DataDirError(f"{data_dir} is read-only: this command writes to the "
                                   "store (reading commands work)")  # fmt: skip
            local = LocalBackend(data_dir, readonly=readonly)
            try:
                yield local
            finally:
                local.close()
            return
    deadline = time.monotonic() + SOCKET_WAIT_S
    while True:  # a node holds the directory: talk to it
        try:
            remote = RpcBackend(sock)
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                raise DataDirBusy(
                    f"a node holds {data_dir} but its control socket does not answer ({exc})"
                ) from exc
            time.sleep(0.1)
    try:
        yield remote
    finally:
        remote.close()
