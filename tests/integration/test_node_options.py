"""Node start-up edge cases: a taken HTTP port, a second node on the same data directory."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from node.cli.backend import RpcBackend, data_dir_lock
from tests.integration.nodes import PERCOLAB, NodeProc, wait_until

pytestmark = pytest.mark.slow


def test_taken_http_port_leaves_node_running_without_http(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        port = squatter.getsockname()[1]
        node = NodeProc(tmp_path / "a", "a", ["--http", f"127.0.0.1:{port}"])
        node.init()
        node.start()
        try:
            st = node.call("status")
            assert st["running"] and st["http"] is None
            assert "HTTP API not started" in (node.data_dir / "node.log").read_text()
        finally:
            assert node.stop() == 0


def test_second_node_on_same_data_dir_is_refused(tmp_path: Path) -> None:
    node = NodeProc(tmp_path / "a", "a")
    node.init()
    node.start()
    try:
        second = subprocess.run(
            [PERCOLAB, "--data-dir", str(node.data_dir), "node", "--listen",
             "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--no-http"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode != 0
        assert "already running" in second.stderr
        assert "Traceback" not in second.stderr
        assert node.call("status")["running"]
    finally:
        node.stop()


def test_a_node_waits_for_a_command_holding_the_data_dir(tmp_path: Path) -> None:
    """`percolab status` (or any command) opens the store itself while no node runs: a node
    started at that moment waits for the directory instead of exiting."""
    node = NodeProc(tmp_path / "a", "a")
    node.init()
    log = node.data_dir / "node.log"
    cmd = [PERCOLAB, "--data-dir", str(node.data_dir), "node", "--listen",
           "/ip4/127.0.0.1/tcp/0", "--no-mdns", "--no-http"]  # fmt: skip
    with data_dir_lock(node.data_dir) as free:  # what a command holds while it runs
        assert free
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def waiting() -> bool:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            return log.exists() and "waiting for it" in log.read_text()

        wait_until(waiting, 60, "the node waiting for the data directory")
    try:
        def up() -> bool:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                rpc = RpcBackend(node.data_dir / "node.sock")
            except OSError:
                return False
            try:
                return bool(rpc.call("status")["running"])
            finally:
                rpc.close()

        wait_until(up, 60, "the node up once the command let go")
    finally:
        proc.terminate()
        assert proc.wait(60) == 0


def test_tui_without_a_running_node_is_a_clear_error(tmp_path: Path) -> None:
    out = subprocess.run([PERCOLAB, "--data-dir", str(tmp_path / "none"), "tui"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 1
    assert "no node is running" in out.stderr and "Traceback" not in out.stderr
