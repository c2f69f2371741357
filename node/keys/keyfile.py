"""The "percolab-keys" file: named Ed25519 seeds, encrypted with a passphrase (docs/keys.md).

Layout, version 1:

    MAGIC (13 bytes "percolab-keys") | VERSION (1 byte) | header length (u16, big-endian)
    | header (msgpack map) | body

The header names the KDF and its parameters, the salt, the AEAD and its nonce, a passphrase
check and the public keys of the seeds. Everything before the body is the AEAD's associated
data, so no header byte can change unnoticed. The body is the ChaCha20-Poly1305 ciphertext of
the plaintext (a msgpack map: seeds and extra entries). The explicit unencrypted mode (kdf
"none") keeps the same layout; its body is the plaintext followed by a SHA-256 of everything
before it (it detects damage, it protects nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import stat
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import msgpack
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from node.identity import IdentityError, write_private_file

log = logging.getLogger(__name__)

MAGIC: Final = b"percolab-keys"
VERSION: Final = 1
PREFIX_SIZE: Final = len(MAGIC) + 1 + 2  # magic, version, header length
# A key file holds a few seeds: anything larger is not one of ours.
MAX_FILE_BYTES: Final = 64 * 1024
MAX_HEADER_BYTES: Final = 4096
MAX_ENTRIES: Final = 64
MAX_NAME_CHARS: Final = 64
SEED_BYTES: Final = 32
ROOT: Final = "root"
DEVICE: Final = "device"  # a device key; alone (no root) in a device added by pairing

# Argon2id (RFC 9106 allows trading passes for memory). 64 MiB, 2 lanes (the reference
# machine's 2 cores), 6 passes: measured 0.34-0.56 s to unlock there (docs/keys.md).
KDF_ARGON2ID: Final = "argon2id"
KDF_NONE: Final = "none"
ARGON2_MEMORY_KIB: Final = 64 * 1024
ARGON2_ITERATIONS: Final = 6
ARGON2_LANES: Final = 2
SALT_BYTES: Final = 16
# What a file may ask of the KDF: a damaged or hostile file must not make us allocate
# gigabytes or spin for minutes before the AEAD says "wrong".
MIN_MEMORY_KIB: Final = 8 * 1024
MAX_MEMORY_KIB: Final = 1024 * 1024
MAX_ITERATIONS: Final = 64
MAX_LANES: Final = 16
AEAD_CHACHA: Final = "chacha20poly1305"
AEAD_NONE: Final = "none"
NONCE_BYTES: Final = 12
CHECK_BYTES: Final = 16
CHECK_LABEL: Final = b"percolab-keys/v1/passphrase-check"
DIGEST_BYTES: Final = 32
# Group and other permission bits: a key file has none.
OPEN_BITS: Final = stat.S_IRWXG | stat.S_IRWXO


class Unencrypted(Enum):
    """The sentinel type of UNENCRYPTED (a passphrase is a non-empty str)."""

    UNENCRYPTED = "unencrypted"


UNENCRYPTED: Final = Unencrypted.UNENCRYPTED
Secret = str | Unencrypted


class KeyFileError(IdentityError):
    """A key file that cannot be used; the message is one line naming the file."""


class WrongPassphrase(KeyFileError):
    pass


class CorruptKeyFile(KeyFileError):
    pass


class UnsupportedKeyFile(KeyFileError):
    pass


class UnsafeKeyFile(KeyFileError):
    """Owned by another user: refused."""


@dataclass(frozen=True)
class KeyRing:
    """Named 32-byte Ed25519 seeds ("root" and "device"; a device added by pairing holds
    "device" alone) and extra entries (a device certificate id...); entries this release
    does not know are kept as they are."""

    seeds: Mapping[str, bytes]
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if ROOT not in self.seeds and DEVICE not in self.seeds:
            raise ValueError("a key ring needs a root or a device seed")
        for name, seed in self.seeds.items():
            if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS:
                raise ValueError(f"bad seed name {name!r}")
            if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
                raise ValueError(f"seed {name!r} must be {SEED_BYTES} bytes")
        if len(self.seeds) + len(self.extra) > MAX_ENTRIES:
            raise ValueError("too many entries in a key ring")
        object.__setattr__(self, "seeds", MappingProxyType(dict(self.seeds)))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    @classmethod
    def create(cls) -> KeyRing:
        return cls({ROOT: os.urandom(SEED_BYTES)})

    @classmethod
    def from_root_key(cls, key: Ed25519PrivateKey) -> KeyRing:
        return cls({ROOT: key.private_bytes_raw()})

    def private_key(self, name: str = ROOT) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seeds[name])

    def public_key(self, name: str = ROOT) -> bytes:
        return self.private_key(name).public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def has_root(self) -> bool:
        """False for a device-only ring (docs/pairing.md): it cannot certify or revoke."""
        return ROOT in self.seeds

    def with_seed(self, name: str, seed: bytes) -> KeyRing:
        return KeyRing({**self.seeds, name: seed}, self.extra)


def _normalized(passphrase: str) -> bytes:
    """NFC, so the same passphrase typed on another system (macOS gives NFD) still opens."""
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def derive_key(passphrase: str, salt: bytes, memory_kib: int, iterations: int,
               lanes: int) -> bytes:  # fmt: skip
    kdf = Argon2id(salt=salt, length=32, iterations=iterations, lanes=lanes,
                   memory_cost=memory_kib)  # fmt: skip
    key: bytes = kdf.derive(_normalized(passphrase))
    return key


def _check_value(key: bytes) -> bytes:
    return hmac.new(key, CHECK_LABEL, hashlib.sha256).digest()[:CHECK_BYTES]


def _check_secret(secret: object) -> Secret:
    if secret is UNENCRYPTED:
        return UNENCRYPTED
    if not isinstance(secret, str):  # None, bytes...: a bug, never a silent plaintext file
        raise TypeError("a passphrase (non-empty str) or UNENCRYPTED is required")
    if not secret:
        raise KeyFileError("the passphrase must not be empty (an unencrypted key file is "
                           "only written when asked for explicitly)")  # fmt: skip
    return secret


def encode(ring: KeyRing, secret: Secret) -> bytes:
    """The bytes of a key file holding `ring`, encrypted with `secret` (a passphrase), or
    not encrypted for UNENCRYPTED."""
    secret = _check_secret(secret)
    plaintext: bytes = msgpack.packb({"seeds": dict(ring.seeds), "extra": dict(ring.extra)},
                              use_bin_type=True)  # fmt: skip
    header: dict[str, Any] = {"public": {n: ring.public_key(n) for n in ring.seeds}}
    if secret is UNENCRYPTED:
        header |= {"kdf": KDF_NONE, "aead": AEAD_NONE}
        prefix = _prefix(header)
        return prefix + plaintext + hashlib.sha256(prefix + plaintext).digest()
    salt, nonce = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES)
    params = {"m": ARGON2_MEMORY_KIB, "t": ARGON2_ITERATIONS, "p": ARGON2_LANES}
    key = derive_key(secret, salt, ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_LANES)
    header |= {"kdf": KDF_ARGON2ID, "kdf_params": params, "salt": salt, "aead": AEAD_CHACHA,
               "nonce": nonce, "check": _check_value(key)}  # fmt: skip
    prefix = _prefix(header)
    return prefix + ChaCha20Poly1305(key).encrypt(nonce, plaintext, prefix)


def _prefix(header: dict[str, Any]) -> bytes:
    raw: bytes = msgpack.packb(header, use_bin_type=True)
    return MAGIC + bytes([VERSION]) + len(raw).to_bytes(2, "big") + raw


@dataclass(frozen=True)
class Parsed:
    """A key file's header, checked; `body` not yet opened."""

    header: Mapping[str, Any]
    prefix: bytes
    body: bytes

    @property
    def encrypted(self) -> bool:
        return bool(self.header["kdf"] != KDF_NONE)

    @property
    def public(self) -> Mapping[str, bytes]:
        return MappingProxyType(self.header["public"])


def parse(data: bytes, where: str) -> Parsed:
    """The header of key file bytes; KeyFileError (naming `where`) for anything else."""

    def corrupt(why: str) -> CorruptKeyFile:
        return CorruptKeyFile(f"the key file {where} is damaged ({why}); restore it from a "
                              "backup (`percolab identity restore`)")  # fmt: skip

    if len(data) > MAX_FILE_BYTES:
        raise corrupt(f"{len(data)} bytes, more than any key file")
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            raise corrupt("truncated")
        raise corrupt("not a percolab-keys file")
    if len(data) < PREFIX_SIZE:
        raise corrupt("truncated")
    version = data[len(MAGIC)]
    if version != VERSION:
        raise UnsupportedKeyFile(f"the key file {where} is percolab-keys version {version}; "
                                 f"this release reads version {VERSION} (upgrade percolab)")
    size = int.from_bytes(data[len(MAGIC) + 1 : PREFIX_SIZE], "big")
    if size > MAX_HEADER_BYTES:
        raise corrupt("header too large")
    if len(data) < PREFIX_SIZE + size:
        raise corrupt("truncated")
    prefix, body = data[: PREFIX_SIZE + size], data[PREFIX_SIZE + size :]
    try:
        header = msgpack.unpackb(prefix[PREFIX_SIZE:], raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError) as exc:  # fmt: skip
        raise corrupt(f"unreadable header: {type(exc).__name__}") from None
    why = _header_problem(header)
    if why:
        raise corrupt(why)
    return Parsed(header, prefix, body)


def _is_bytes(value: object, size: int | None = None) -> bool:
    return isinstance(value, bytes) and (size is None or len(value) == size)


def _header_problem(h: object) -> str | None:
    """Why a decoded header is not a valid version-1 header, or None."""
    if not isinstance(h, dict):
        return "header is not a map"
    public = h.get("public")
    if not isinstance(public, dict) or not (_is_bytes(public.get(ROOT), SEED_BYTES)
                                            or _is_bytes(public.get(DEVICE), SEED_BYTES)):
        return "no root public key"
    if len(public) > MAX_ENTRIES or not all(
        isinstance(k, str) and _is_bytes(v, SEED_BYTES) for k, v in public.items()
    ):
        return "bad public keys"
    if h.get("kdf") == KDF_NONE:
        return None if h.get("aead") == AEAD_NONE else "bad AEAD name"
    if h.get("kdf") != KDF_ARGON2ID:
        return f"unknown KDF {str(h.get('kdf'))[:20]!r}"
    params = h.get("kdf_params")
    if not isinstance(params, dict):
        return "no KDF parameters"
    m, t, p = params.get("m"), params.get("t"), params.get("p")
    ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (m, t, p))
    if not ok or not (MIN_MEMORY_KIB <= m <= MAX_MEMORY_KIB and 1 <= t <= MAX_ITERATIONS  # type: ignore[operator]
                      and 1 <= p <= MAX_LANES and m >= 8 * p):  # type: ignore[operator]  # fmt: skip
        return "KDF parameters out of range"
    if h.get("aead") != AEAD_CHACHA:
        return "bad AEAD name"
    salt = h.get("salt")
    if not (_is_bytes(salt) and 16 <= len(salt) <= 64):  # type: ignore[arg-type]
        return "bad salt"
    if not _is_bytes(h.get("nonce"), NONCE_BYTES) or not _is_bytes(h.get("check"), CHECK_BYTES):
        return "bad nonce or check"
    return None


def decode(data: bytes, secret: Secret, where: str) -> KeyRing:
    """The key ring in key file bytes. An encrypted file needs its passphrase (`secret`);
    an unencrypted one opens with any `secret`. KeyFileError for anything else."""
    parsed = parse(data, where)
    h = parsed.header

    def corrupt(why: str) -> CorruptKeyFile:
        return CorruptKeyFile(f"the key file {where} is damaged ({why}); restore it from a "
                              "backup (`percolab identity restore`)")  # fmt: skip

    if not parsed.encrypted:
        if len(parsed.body) < DIGEST_BYTES:
            raise corrupt("truncated")
        plaintext, digest = parsed.body[:-DIGEST_BYTES], parsed.body[-DIGEST_BYTES:]
        if not hmac.compare_digest(hashlib.sha256(parsed.prefix + plaintext).digest(), digest):
            raise corrupt("checksum mismatch")
    else:
        if secret is UNENCRYPTED or not isinstance(secret, str) or not secret:
            raise WrongPassphrase(f"{where} is encrypted: a passphrase is needed")
        params = h["kdf_params"]
        key = derive_key(secret, h["salt"], params["m"], params["t"], params["p"])
        if not hmac.compare_digest(_check_value(key), h["check"]):
            raise WrongPassphrase(f"wrong passphrase for {where}")
        try:
            plaintext = ChaCha20Poly1305(key).decrypt(h["nonce"], parsed.body, parsed.prefix)
        except InvalidTag:
            raise corrupt("authentication failed: truncated or altered") from None
    return _ring_of(plaintext, parsed.public, corrupt)


def _ring_of(plaintext: bytes, public: Mapping[str, bytes], corrupt: Any) -> KeyRing:
    try:
        content = msgpack.unpackb(plaintext, raw=False, strict_map_key=True)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError) as exc:  # fmt: skip
        raise corrupt(f"unreadable content: {type(exc).__name__}") from None
    if not isinstance(content, dict) or not isinstance(content.get("seeds"), dict):
        raise corrupt("no seeds")
    extra = content.get("extra", {})
    if not isinstance(extra, dict):
        raise corrupt("bad extra entries")
    try:
        ring = KeyRing(content["seeds"], extra)
    except (ValueError, TypeError) as exc:
        raise corrupt(str(exc)) from None
    if dict(public) != {n: ring.public_key(n) for n in ring.seeds}:
        raise corrupt("public keys do not match the seeds")
    return ring


# ---- files ---------------------------------------------------------------------------------


def check_permissions(path: Path) -> None:
    """Refuse a key file owned by another user; take group/other bits off one of ours (a
    warning: the CLI shows it on stderr). FileNotFoundError passes through."""
    st = path.stat()
    if st.st_uid != os.geteuid():
        raise UnsafeKeyFile(f"the key file {path} belongs to another user (uid {st.st_uid}); "
                            "refusing to use it")  # fmt: skip
    if st.st_mode & OPEN_BITS:
        old = stat.S_IMODE(st.st_mode)
        os.chmod(path, old & ~OPEN_BITS)
        log.warning("fixed permissions of %s: it was mode %04o (readable by others), now %04o",
                    path, old, old & ~OPEN_BITS)  # fmt: skip


def read_key_file(path: Path) -> bytes:
    """A key file's bytes, after the permission check; KeyFileError if unreadable."""
    try:
        check_permissions(path)
        with path.open("rb") as f:
            return f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc.strerror}") from exc


def load(path: Path, secret: Secret) -> KeyRing:
    return decode(read_key_file(path), secret, str(path))


def save(path: Path, ring: KeyRing, secret: Secret) -> None:
    """Write `ring` to `path` (atomic, mode 0600), then read it back: a file that would not
    open again is never left in place of a good one unnoticed."""
    data = encode(ring, secret)
    write_private_file(path, data)
    if path.read_bytes() != data:
        raise KeyFileError(f"the key file {path} did not read back as written")


def is_encrypted(path: Path) -> bool:
    """Whether the key file at `path` needs a passphrase (its header only)."""
    return parse(read_key_file(path), str(path)).encrypted


def public_keys(path: Path) -> Mapping[str, bytes]:
    """The public keys a key file's header names (no passphrase needed)."""
    return parse(read_key_file(path), str(path)).public
