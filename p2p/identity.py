"""The node's libp2p identity: an Ed25519 key pair persisted in one file.

File format: the libp2p protobuf encoding of the private key (``PrivateKey.serialize()``,
the same bytes go-/js-libp2p use), nothing else. The file is created atomically with mode
0600: the key is written to a temporary file in the same directory, fsync'd, then hard-linked
into place (``os.link`` never overwrites, so two processes racing to create the identity end
up agreeing on one key). Loading checks the mode is not group/world readable.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path
from typing import Any

from libp2p.crypto.ed25519 import Ed25519PrivateKey
from libp2p.crypto.keys import KeyPair, KeyType
from libp2p.crypto.serialization import deserialize_private_key
from libp2p.peer.id import ID

logger = logging.getLogger(__name__)

NODE_KEY_FILE_MODE = 0o600
MAX_NODE_KEY_FILE_BYTES = 4096


class NodeKeyError(Exception):
    """The node key file exists but cannot be used (corrupt, wrong type, bad mode)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"node key file {path}: {reason}")
        self.path = path
        self.reason = reason


def peer_id_of(key_pair: KeyPair) -> str:
    """The base58 peer id string (``12D3Koo...``) for a key pair."""
    return str(ID.from_pubkey(key_pair.public_key).to_base58())


def _decode(path: Path, raw: bytes) -> KeyPair:
    if len(raw) > MAX_NODE_KEY_FILE_BYTES:
        raise NodeKeyError(path, f"file is {len(raw)} bytes, too large for a key")
    try:
        private: Any = deserialize_private_key(raw)
    except Exception as exc:  # protobuf DecodeError, KeyError, ValueError...
        raise NodeKeyError(path, f"not a libp2p private key ({exc.__class__.__name__})") from exc
    if private.get_type() != KeyType.Ed25519:
        raise NodeKeyError(path, f"key type is {private.get_type()}, expected Ed25519")
    return KeyPair(private, private.get_public_key())


def _load(path: Path) -> KeyPair:
    try:
        st = path.stat()
        raw = path.read_bytes()
    except OSError as exc:
        raise NodeKeyError(path, f"cannot read ({exc.strerror})") from exc
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise NodeKeyError(path, f"mode {oct(st.st_mode & 0o777)} is too open, expected 0600")
    return _decode(path, raw)


def _create(path: Path) -> KeyPair:
    private = Ed25519PrivateKey.new()
    data = private.serialize()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, NODE_KEY_FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            logger.info("node key %s appeared concurrently; using it", path)
            return _load(path)
        with contextlib.suppress(OSError):
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    logger.info("created node key %s", path)
    return KeyPair(private, private.get_public_key())


def load_or_create_node_key(path: Path) -> KeyPair:
    """Load the node's Ed25519 key pair from ``path``, creating it on first use.

    The same file always yields the same peer id. Raises :class:`NodeKeyError` (with the
    path in the message) when the file exists but is corrupt or too permissive.
    """
    if path.exists():
        return _load(path)
    return _create(path)
