"""Node start-up edge cases: a taken HTTP port, a second node on the same data directory."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.integration.nodes import PERCOLAB, NodeProc

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


def test_tui_without_a_running_node_is_a_clear_error(tmp_path: Path) -> None:
    out = subprocess.run([PERCOLAB, "--data-dir", str(tmp_path / "none"), "tui"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 1
    assert "no node is running" in out.stderr and "Traceback" not in out.stderr
