"""The node key file: created once (0600), same peer id on reload, typed error if corrupt."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from p2p.host import open_p2p_node
from p2p.identity import NodeKeyError, load_or_create_node_key, peer_id_of
from tests.p2p.helpers import LOOPBACK, Recorder, run


def test_created_with_mode_0600_and_stable_peer_id(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "node.key"
    first = load_or_create_node_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_node_key(path)
    assert peer_id_of(first) == peer_id_of(again)
    assert peer_id_of(first).startswith("12D3KooW")  # Ed25519 identity peer id
    assert [p.name for p in path.parent.iterdir()] == ["node.key"]  # no temp file left


def test_corrupt_file_raises_typed_error_with_path(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    path.write_bytes(b"\x00garbage\xff" * 3)
    os.chmod(path, 0o600)
    with pytest.raises(NodeKeyError) as info:
        load_or_create_node_key(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == b"\x00garbage\xff" * 3  # never overwritten


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    path.touch(mode=0o600)
    with pytest.raises(NodeKeyError):
        load_or_create_node_key(path)


def test_too_open_mode_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    load_or_create_node_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(NodeKeyError, match="too open"):
        load_or_create_node_key(path)


def test_node_keeps_peer_id_across_restarts(tmp_path: Path) -> None:
    ids: list[str] = []

    async def body() -> None:
        key = load_or_create_node_key(tmp_path / "node.key")
        async with open_p2p_node(key, LOOPBACK, validator=Recorder()) as node:
            ids.append(node.peer_id)
            assert node.listen_addrs()[0].endswith(f"/p2p/{node.peer_id}")

    run(body)
    run(body)
    assert ids[0] == ids[1]
