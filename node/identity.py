"""The member's identity: an Ed25519 key in the data directory, file mode 0600.

The member key signs objects. The libp2p node key (a different key, see p2p.identity) names
the machine on the network; keeping them apart lets a member move machines, or a lab run
several nodes, without mixing the two roles.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

MEMBER_KEY_FILE = "member.key"


class IdentityError(RuntimeError):
    """The key file is missing where required, unreadable or corrupt."""


def write_private_file(path: Path, data: bytes) -> None:
    """Write `data` atomically to `path` with mode 0600 (never world-readable, even briefly)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def member_key_path(data_dir: Path) -> Path:
    return data_dir / MEMBER_KEY_FILE


def load_member_key(data_dir: Path) -> Ed25519PrivateKey | None:
    path = member_key_path(data_dir)
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IdentityError(f"cannot read the member key {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise IdentityError(f"the member key {path} is corrupt: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"the member key {path} is not an Ed25519 key")
    return key


def create_member_key(data_dir: Path) -> Ed25519PrivateKey:
    path = member_key_path(data_dir)
    if path.exists():
        raise IdentityError(f"{path} already exists; this data directory has an identity")
    data_dir.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private_file(path, pem)
    return key


def fingerprint(public_key: bytes) -> str:
    """A short, human-comparable fingerprint of a public key: 4 groups of 4 base32 chars."""
    digest = base64.b32encode(hashlib.sha256(public_key).digest()).decode().lower()
    return "-".join(digest[i : i + 4] for i in range(0, 16, 4))
