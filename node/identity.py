"""The member's identity: an Ed25519 key in the data directory, file mode 0600.

The member key signs objects. The libp2p node key (a different key, see p2p.identity) names
the machine on the network; keeping them apart lets a member move machines, or a lab run
several nodes, without mixing the two roles.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

MEMBER_KEY_FILE = "member.key"  # the legacy unencrypted PEM (node.keys.member migrates it)
# The member's key ring, encrypted with a passphrase (node.keys, docs/keys.md).
KEY_RING_FILE = "member.keys"
# The libp2p key a node creates at its first start (the same name as node.runtime's
# NODE_KEY_FILE, kept here so the CLI need not import the runtime to look for it).
NODE_KEY_FILE = "node.key"
# The data directory holds the member key and the store: its owner only.
PRIVATE_DIR_MODE = 0o700
# Group and other permission bits, none of which a data directory should have.
SHARED_BITS = stat.S_IRWXG | stat.S_IRWXO


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


def make_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) with mode 0700 for the last one; an existing
    directory is left as it is (the node tightens it at start, `tighten_private_dir`)."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE)
    except FileExistsError:
        if not path.is_dir():
            raise
    # mkdir's mode went through the umask; a umask never adds bits, but be exact.
    os.chmod(path, PRIVATE_DIR_MODE)


def tighten_private_dir(path: Path) -> int | None:
    """Take group and other permissions off a directory this user owns; returns the old mode
    when it changed (for a log line), else None. Files inside are then out of others' reach
    whatever their own modes (LMDB creates data.mdb 0644)."""
    st = path.stat()
    if st.st_uid != os.geteuid() or not st.st_mode & SHARED_BITS:
        return None
    old = stat.S_IMODE(st.st_mode)
    os.chmod(path, old & ~SHARED_BITS)
    return old


def holds_identity(data_dir: Path) -> bool:
    """A member key or a node key: `init` or `node` ran here (anything else is a new or
    mistyped directory)."""
    names = (KEY_RING_FILE, MEMBER_KEY_FILE, NODE_KEY_FILE)
    return any((data_dir / name).is_file() for name in names)


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
    make_private_dir(data_dir)
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
