"""The member's key ring in a data directory: `member.keys` (percolab-keys, docs/keys.md), or
a legacy unencrypted `member.key` (PEM) from before, migrated when a passphrase is at hand.

The public root key is readable without the passphrase (it is in the file's header), so
commands that only read never ask for one; signing unlocks the ring once per process.
"""

from __future__ import annotations

import hmac
import logging
import unicodedata
from enum import Enum
from pathlib import Path

from node.config import CONFIG_FILE, load_config
from node.identity import (
    KEY_RING_FILE,
    MEMBER_KEY_FILE,
    IdentityError,
    load_member_key,
    make_private_dir,
)
from node.keys import keyfile, passphrase
from node.keys.keyfile import UNENCRYPTED, KeyRing, Secret, WrongPassphrase

log = logging.getLogger(__name__)


class KeyState(Enum):
    NONE = "none"
    LEGACY_PEM = "legacy-pem"  # member.key, unencrypted, from before percolab-keys
    ENCRYPTED = "encrypted"
    UNENCRYPTED = "unencrypted"  # member.keys with kdf "none", chosen explicitly


# Rings unlocked in this process, by file, with the bytes they came from (a node checks the
# passphrase at start, then signs with the same ring without a second KDF run).
_unlocked: dict[Path, tuple[bytes, KeyRing]] = {}
# The secret each of those rings was opened (or created) with: `save_ring` writes a changed
# ring (a new device key, a rotated root) under the same protection.
_secrets: dict[Path, Secret] = {}


def ring_path(data_dir: Path) -> Path:
    return data_dir / KEY_RING_FILE


def pem_path(data_dir: Path) -> Path:
    return data_dir / MEMBER_KEY_FILE


def key_state(data_dir: Path) -> KeyState:
    path = ring_path(data_dir)
    if path.is_file():
        return KeyState.ENCRYPTED if keyfile.is_encrypted(path) else KeyState.UNENCRYPTED
    return KeyState.LEGACY_PEM if pem_path(data_dir).is_file() else KeyState.NONE


def root_public(data_dir: Path) -> bytes | None:
    """The member's public key, without a passphrase; None when there is no member key."""
    state = key_state(data_dir)
    if state is KeyState.NONE:
        return None
    if state is KeyState.LEGACY_PEM:
        key = load_member_key(data_dir)
        return None if key is None else KeyRing.from_root_key(key).public_key()
    return keyfile.public_keys(ring_path(data_dir)).get(keyfile.ROOT)


def ring_public(data_dir: Path) -> bytes | None:
    """The ring's root public key, or its device key for a device-only ring (a device added
    by pairing); None when there is no member key here."""
    root = root_public(data_dir)
    if root is not None or key_state(data_dir) in (KeyState.NONE, KeyState.LEGACY_PEM):
        return root
    return keyfile.public_keys(ring_path(data_dir)).get(keyfile.DEVICE)


def unencrypted_configured(data_dir: Path) -> bool:
    """`[identity] unencrypted = true` in config.toml: this (headless) node keeps its key
    unencrypted on purpose."""
    return load_config(data_dir).unencrypted_key


def key_warning(data_dir: Path) -> str | None:
    """For `status`: a warning when the member key is stored unencrypted."""
    state = key_state(data_dir)
    if state is KeyState.UNENCRYPTED:
        return (f"the member key {ring_path(data_dir)} is stored unencrypted (chosen "
                "explicitly): anyone who can read it can sign as you")  # fmt: skip
    if state is KeyState.LEGACY_PEM:
        return (f"the member key {pem_path(data_dir)} is an unencrypted legacy file: give a "
                "passphrase (PERCOLAB_PASSPHRASE or --passphrase-file) to encrypt it")
    return None


def _load(path: Path, secret: Secret) -> KeyRing:
    data = keyfile.read_key_file(path)
    cached = _unlocked.get(path)
    if cached is not None and cached[0] == data:
        return cached[1]
    ring = keyfile.decode(data, secret, str(path))
    _unlocked[path] = (data, ring)
    _secrets[path] = secret
    return ring


def unlock(data_dir: Path, *, interactive: bool = True) -> KeyRing | None:
    """The member's key ring (None: no member key here). An encrypted ring takes the
    passphrase from passphrase.get (NoPassphrase when none is available); a legacy PEM is
    migrated when a passphrase is available without asking, or config says unencrypted."""
    state = key_state(data_dir)
    path = ring_path(data_dir)
    if state is KeyState.NONE:
        return None
    if state is KeyState.UNENCRYPTED:
        ring = _load(path, UNENCRYPTED)
    elif state is KeyState.ENCRYPTED:
        purpose = f"the member key {path}"
        secret = passphrase.get(purpose) if interactive else passphrase.non_interactive()
        if secret is None:
            raise passphrase.NoPassphrase(f"{purpose} needs a passphrase: "
                                          f"{passphrase.HOW_TO_PROVIDE}")  # fmt: skip
        try:
            ring = _load(path, secret)
        except WrongPassphrase:
            passphrase.forget()
            raise
    else:
        key = load_member_key(data_dir)
        assert key is not None
        ring = KeyRing.from_root_key(key)
        found = passphrase.non_interactive()
        target: Secret | None = found
        if target is None and unencrypted_configured(data_dir):
            target = UNENCRYPTED
        if target is not None:
            migrate(data_dir, ring, target)
        return ring
    _drop_migrated_pem(data_dir, ring)
    return ring


def migrate(data_dir: Path, ring: KeyRing, secret: Secret) -> None:
    """Write the legacy key into member.keys, read it back, and only then remove member.key."""
    path, pem = ring_path(data_dir), pem_path(data_dir)
    keyfile.save(path, ring, secret)
    _unlocked.pop(path, None)
    if _load(path, secret).seeds != ring.seeds:
        raise IdentityError(f"{path} did not read back the migrated key; {pem} is kept")
    pem.unlink()
    how = "encrypted" if secret is not UNENCRYPTED else "unencrypted, as configured"
    log.warning("member key migrated: %s now holds it (%s); %s was removed after the new "
                "file read back", path, how, pem)  # fmt: skip


def _drop_migrated_pem(data_dir: Path, ring: KeyRing) -> None:
    """A migration stopped between writing member.keys and removing member.key: finish it
    when both hold the same key; keep both (and say so) when they differ."""
    pem = pem_path(data_dir)
    if not pem.is_file():
        return
    key = load_member_key(data_dir)
    root = ring.seeds.get(keyfile.ROOT)
    if key is not None and KeyRing.from_root_key(key).seeds == {keyfile.ROOT: root}:
        pem.unlink()
        log.warning("removed %s: %s holds the same key", pem, ring_path(data_dir))
    else:
        log.warning("%s holds another key than %s; it is not used", pem, ring_path(data_dir))


def _refuse_existing(data_dir: Path) -> None:
    for existing in (ring_path(data_dir), pem_path(data_dir)):
        if existing.exists():
            raise IdentityError(f"{existing} already exists; this data directory has an "
                                "identity")  # fmt: skip


def secret_for_new_key(data_dir: Path) -> Secret:
    """The protection of a key created without an explicit choice: a passphrase available
    without asking, else unencrypted when config.toml says so, else NoPassphrase."""
    _refuse_existing(data_dir)
    found = passphrase.non_interactive()
    if found is not None:
        return found
    if unencrypted_configured(data_dir):
        return UNENCRYPTED
    raise passphrase.NoPassphrase(
        f"a new member key needs a passphrase: {passphrase.HOW_TO_PROVIDE}; or, for a headless "
        f"node, `init --unencrypted-key` or [identity] unencrypted = true in {CONFIG_FILE}"
    )


def create(data_dir: Path, secret: Secret, ring: KeyRing | None = None) -> KeyRing:
    """A new member key ring (or `ring`, restored) in `data_dir`, protected by `secret`."""
    path = ring_path(data_dir)
    _refuse_existing(data_dir)
    make_private_dir(data_dir)
    ring = ring or KeyRing.create()
    keyfile.save(path, ring, secret)
    _unlocked[path] = (path.read_bytes(), ring)
    _secrets[path] = secret
    return ring


def save_ring(data_dir: Path, ring: KeyRing) -> bool:
    """Write a changed ring (a device key added, a root rotated) over `member.keys`, under the
    secret it was unlocked with in this process. False when that is not known (a legacy
    member.key not migrated yet): the caller goes on without the change."""
    path = ring_path(data_dir)
    secret = _secrets.get(path)
    if secret is None and key_state(data_dir) is KeyState.UNENCRYPTED:
        secret = UNENCRYPTED
    if secret is None or not path.is_file():
        return False
    keyfile.save(path, ring, secret)
    _unlocked[path] = (path.read_bytes(), ring)
    return True


def unlock_with(data_dir: Path, secret: str) -> KeyRing:
    """The encrypted ring of `data_dir` opened with `secret`, a passphrase given after the
    start (the node's `unlock` RPC): WrongPassphrase when it is not the passphrase. Kept for
    the process, as a passphrase found at start is."""
    ring = _load(ring_path(data_dir), secret)
    passphrase.remember(secret)
    _drop_migrated_pem(data_dir, ring)
    return ring


def open_seat(key_dir: Path, secret: str | None) -> KeyRing | None:
    """The ring of a seat (a member of a shared machine, node/service/seats.py) opened with
    `secret`, which is always checked for an encrypted ring: a ring already unlocked in this
    process (by path) is only handed out for the secret it was opened with. The secret is
    never remembered for the process (it would be tried on another member's key).
    WrongPassphrase when it does not open; None when there is no member key in `key_dir`."""
    state = key_state(key_dir)
    if state is not KeyState.ENCRYPTED:
        return unlock(key_dir, interactive=False)  # unencrypted or legacy: nothing to check
    if not secret:
        raise WrongPassphrase(f"{ring_path(key_dir)} is encrypted: a passphrase is needed")
    path = ring_path(key_dir)
    data = keyfile.read_key_file(path)
    cached, known = _unlocked.get(path), _secrets.get(path)
    if cached is not None and cached[0] == data and isinstance(known, str) and hmac.compare_digest(
            _nfc(secret), _nfc(known)):  # fmt: skip
        return cached[1]
    ring = keyfile.decode(data, secret, str(path))  # the KDF: WrongPassphrase if not it
    _unlocked[path] = (data, ring)
    _secrets[path] = secret
    return ring


def _nfc(text: str) -> bytes:
    return unicodedata.normalize("NFC", text).encode("utf-8")
