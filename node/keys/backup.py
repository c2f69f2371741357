"""Backups of the member's key ring: a percolab-keys file (the same format as member.keys,
docs/keys.md) that is always encrypted, with its own passphrase, written only where no file
is, and read back before the command says it is done."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from node.keys import keyfile
from node.keys.keyfile import KeyFileError, KeyRing

log = logging.getLogger(__name__)


def write_backup(path: Path, ring: KeyRing, secret: str) -> None:
    """Write `ring` encrypted with `secret` (never unencrypted) to a new file `path`, mode
    0600; an existing file is never overwritten. The file is read back and opened."""
    if not isinstance(secret, str):
        raise TypeError("a backup is always encrypted: a passphrase (str) is required")
    data = keyfile.encode(ring, secret)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{path} already exists; a backup never overwrites a file") from None
    except OSError as exc:
        raise KeyFileError(f"cannot write the backup {path}: {exc.strerror}") from exc
    try:
        os.write(fd, data)
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise KeyFileError(f"cannot write the backup {path}: {exc.strerror}") from exc
    os.close(fd)
    if read_backup(path, secret).seeds != ring.seeds:
        raise KeyFileError(f"the backup {path} did not read back as written")
    log.info("key ring backed up to %s", path)


def read_backup(path: Path, secret: str) -> KeyRing:
    """The key ring in a backup file. It may sit on removable media owned by someone else,
    so no permission check; its size is bounded like any key file."""
    try:
        with path.open("rb") as f:
            data = f.read(keyfile.MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read the backup {path}: {exc.strerror}") from exc
    if not keyfile.parse(data, str(path)).encrypted:
        raise KeyFileError(f"{path} is an unencrypted key file, not a backup")
    return keyfile.decode(data, secret, str(path))
