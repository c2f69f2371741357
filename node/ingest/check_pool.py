"""Object checks (decode, validate, verify) in worker processes, for large ingest batches.

Why processes and not threads: the store's indexing is Python and holds the GIL; decoding
and validating are Python too, and a verify thread needs the GIL back after every signature
(libsodium releases it only inside the check). With everything in one interpreter the
pipeline is bound by the GIL, not the cores. A worker has its own interpreter: it does the
whole stateless check, and the node only hashes, decodes the accepted bytes without
re-checking them (`protocols.objects.decode_checked`) and stores them.

Workers (`node/ingest/check_worker.py`) start on first use and live as long as the pool. If one
cannot be started or fails, that batch is checked inline (same verdicts, slower), the
failure is logged, and the pool tries again after RESPAWN_AFTER_S.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import msgpack

log = logging.getLogger(__name__)

# Two requests of a batch in flight per worker fit the pipe without blocking the sender
# (Linux's default pipe holds 64 KiB; a request of 500 ~1 KiB objects is ~500 KiB).
PIPE_BYTES = 1024 * 1024  # Linux's default pipe-max-size for unprivileged users
RESPAWN_AFTER_S = 60.0
WORKER_START_TIMEOUT_S = 10.0
_LEN = struct.Struct(">I")
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_SRC_ROOT = str(Path(__file__).resolve().parents[2])  # node/ingest/ -> the source root


class WorkerFailed(RuntimeError):
    pass


class Unchecked:
    """The verdict of an object no worker checked (the caller checks it inline)."""


UNCHECKED = Unchecked()


class _Worker:
    def __init__(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC_ROOT, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "node.ingest.check_worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=env, bufsize=0, close_fds=True,
        )  # fmt: skip
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = self.proc.stdout
        for pipe in (self.stdin, self.stdout):
            # Above /proc/sys/fs/pipe-max-size this fails: writes may then block, still right.
            with contextlib.suppress(OSError):
                fcntl.fcntl(pipe.fileno(), _F_SETPIPE_SZ, PIPE_BYTES)

    def send(self, now: int, raws: Sequence[bytes]) -> None:
        body = msgpack.packb([now, list(raws)], use_bin_type=True)
        frame = memoryview(_LEN.pack(len(body)) + body)
        try:
            # The pipe is unbuffered: a signal that arrives while a write waits for the
            # worker ends it early with part of the frame written (seen under py-spy; any
            # handled signal does it, SIGCHLD or SIGWINCH in the node). Write the rest.
            while frame:
                frame = frame[self.stdin.write(frame) or 0 :]
        except (OSError, ValueError) as exc:  # ValueError: the pipe was closed
            raise WorkerFailed(f"cannot send to check worker: {exc}") from exc

    def receive(self, n: int) -> list[Verdict]:
        head = self._read(_LEN.size)
        try:
            verdicts = msgpack.unpackb(self._read(_LEN.unpack(head)[0]), use_list=True)
        except ValueError as exc:
            raise WorkerFailed(f"check worker sent garbage: {exc}") from exc
        if not isinstance(verdicts, list) or len(verdicts) != n:
            raise WorkerFailed(f"check worker answered {len(verdicts)} verdicts for {n}")
        return [None if v is None else (str(v[0]), str(v[1])) for v in verdicts]

    def _read(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.stdout.read(n - len(buf))
            except (OSError, ValueError) as exc:
                raise WorkerFailed(f"check worker read failed: {exc}") from exc
            if not chunk:
                raise WorkerFailed(f"check worker exited (status {self.proc.poll()})")
            buf += chunk
        return bytes(buf)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.stdin.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stdout.close()


# None: the object is valid; else (rejection code, reason).
Verdict = tuple[str, str] | None


@dataclass
class PendingVerdicts:
    """Checks of one batch in progress; `CheckPool.collect` returns the verdicts. Parts with
    no worker (none could take them) come back as None: the caller checks those inline."""

    parts: list[tuple[_Worker | None, int, int]] = field(default_factory=list)  # worker, lo, hi


class CheckPool:
    def __init__(self, workers: int) -> None:
        self.size = workers
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()  # one ingest call at a time owns the workers
        self._owner: int | None = None  # the thread of that call
        self._failed_at = -RESPAWN_AFTER_S
        self._closed = False

    def acquire(self, wait_s: float = 0.0) -> bool:
        """Take the workers for one ingest call, waiting up to `wait_s` while another call
        has them. False: still busy, or this thread holds them already (an ingest from a
        listener of its own call: its verdicts would mix with the outer call's)."""
        me = threading.get_ident()
        if self.size <= 0 or self._owner == me:
            return False
        got = self._lock.acquire(timeout=wait_s) if wait_s > 0 else self._lock.acquire(False)
        if not got:
            return False
        self._owner = me
        return True

    def release(self) -> None:
        self._owner = None
        self._lock.release()

    def submit(self, now: int, raws: Sequence[bytes]) -> PendingVerdicts:
        """Send `raws` to the workers, split evenly (call between acquire and release)."""
        pending = PendingVerdicts()
        workers = self._ready()
        if not workers or not raws:
            pending.parts.append((None, 0, len(raws)))
            return pending
        step = -(-len(raws) // len(workers))
        for worker, lo in zip(workers, range(0, len(raws), step), strict=False):
            hi = min(lo + step, len(raws))
            if worker not in self._workers:  # an earlier part failed: all workers are gone
                pending.parts.append((None, lo, hi))
                continue
            try:
                worker.send(now, raws[lo:hi])
            except WorkerFailed as exc:
                self._fail(exc)
                pending.parts.append((None, lo, hi))
                continue
            pending.parts.append((worker, lo, hi))
        return pending

    def collect(self, pending: PendingVerdicts) -> list[Verdict | Unchecked]:
        out: list[Verdict | Unchecked] = []
        for worker, lo, hi in pending.parts:
            if worker is not None and worker in self._workers:
                try:
                    out += worker.receive(hi - lo)
                    continue
                except WorkerFailed as exc:
                    self._fail(exc)
            out += [UNCHECKED] * (hi - lo)
        return out

    def close(self) -> None:
        self._closed = True
        for worker in self._workers:
            worker.stop()
        self._workers = []

    def _ready(self) -> list[_Worker]:
        if self._workers or self._closed:
            return self._workers
        if time.monotonic() - self._failed_at < RESPAWN_AFTER_S:
            return []
        try:
            self._workers = [_Worker() for _ in range(self.size)]
        except OSError as exc:
            self._fail(WorkerFailed(f"cannot start check workers: {exc}"))
        return self._workers

    def _fail(self, exc: WorkerFailed) -> None:
        log.warning("%s; checking inline for now", exc)
        self._failed_at = time.monotonic()
        for worker in self._workers:
            worker.proc.kill()
            worker.stop()
        self._workers = []
