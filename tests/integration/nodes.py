"""Real `percolab node` processes on loopback for integration tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from node.cli.backend import RpcBackend
from node.service.api import ServiceError

PERCOLAB = str(Path(sys.executable).with_name("percolab"))
START_TIMEOUT_S = 30.0


def wait_until(pred: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
    """Poll `pred` until it returns a truthy value; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def cli(data_dir: Path, *args: str, check: bool = True) -> Any:
    """Run the real console script; returns parsed --json output."""
    proc = subprocess.run(
        [PERCOLAB, "--data-dir", str(data_dir), *args, "--json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if check and proc.returncode != 0:
        raise AssertionError(f"percolab {' '.join(args)} failed: {proc.stderr.strip()}")
    return json.loads(proc.stdout) if proc.stdout.strip() else None


class NodeProc:
    def __init__(
        self, data_dir: Path, name: str, extra: list[str] | None = None, *,
        prefix: list[str] | None = None, listen: str = "/ip4/127.0.0.1/tcp/0",
        env: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.data_dir, self.name = data_dir, name
        self.extra = extra or []
        self.prefix = prefix or []  # e.g. ["ip", "netns", "exec", NS]
        self.listen = listen
        # Variables set (over the inherited environment) for the node process only.
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self._rpc: RpcBackend | None = None

    def init(self) -> None:
        if not (self.data_dir / "member.keys").exists():
            cli(self.data_dir, "init", "--unencrypted-key", "--name", self.name)

    def start(self, bootstrap: list[str] | None = None) -> NodeProc:
        args = [*self.prefix, PERCOLAB, "--data-dir", str(self.data_dir), "node", "--listen",
                self.listen, *self.extra]  # fmt: skip
        if "--http" not in args:
            args.append("--no-http")
        if "--mdns" in args:
            args.remove("--mdns")
        else:
            args.append("--no-mdns")
        for b in bootstrap or []:
            args += ["--bootstrap", b]
        env = {**os.environ, **self.env} if self.env else None
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
        )
        sock = self.data_dir / "node.sock"

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise AssertionError(f"node {self.name} exited: {err[-2000:]}")
            if not sock.exists():
                return False
            try:
                self._rpc = RpcBackend(sock, timeout=60)
            except OSError:
                return False
            return True

        wait_until(up, START_TIMEOUT_S, f"node {self.name} to start")
        return self

    @property
    def rpc(self) -> RpcBackend:
        assert self._rpc is not None, "node not started"
        return self._rpc

    def call(self, method: str, **params: Any) -> Any:
        return self.rpc.call(method, **params)

    def find(self, oid: str) -> Any:
        """`show` of an object, or None while it has not arrived here."""
        try:
            return self.call("show", id=oid)
        except ServiceError as exc:
            if exc.code == "not_found":
                return None
            raise

    def addr(self) -> str:
        return str(self.call("status")["addrs"][0])

    def peer_id(self) -> str:
        return str(self.call("status")["peer_id"])

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self._rpc is not None:
            self._rpc.close()
            self._rpc = None
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None
        return code

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)


@contextmanager
def node_group(tmp: Path, names: list[str], extra: list[str] | None = None) -> Iterator[list[NodeProc]]:  # noqa: E501
    nodes = [NodeProc(tmp / n, n, extra) for n in names]
    try:
        for n in nodes:
            n.init()
        yield nodes
    finally:
        for n in nodes:
            n.stop()


