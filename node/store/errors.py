"""The store's errors, and what an lmdb.Error means for a member (node/store/store.py opens
and writes; this says what went wrong and what to do)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import lmdb

# The LMDB data file in the store's directory (LMDB's own name for it).
DATA_FILE = "data.mdb"
# What to do about a damaged data file: the objects are replicated, so a peer has them.
RESTORE_ADVICE = (
    "restore it from a backup, or move it away and fetch the objects again from a peer "
    "(let the node sync, or `percolab export` there and `percolab import` here)"
)
# A generic write error (EIO) with less than this free on the disk is a full disk: LMDB
# reports a short write of its pages as EIO, and the short write itself used the space up.
LOW_DISK_BYTES = 64 * 1024**2


class StoreError(RuntimeError):
    """The store cannot be opened or is inconsistent."""


class StoreDamaged(StoreError):
    """The data file is damaged: truncated, not an LMDB file, or a corrupt page."""


class StoreFull(StoreError):
    """A write failed for lack of space (the disk, or the map). What was stored before it
    is kept and can be read."""


class StoreReadOnly(StoreError):
    """A write (or a one-off upgrade that writes) on a store opened read-only."""


_NO_ACCESS = (errno.EACCES, errno.EPERM, errno.EROFS)
# lmdb.Error for the LMDB codes that mean the file's bytes are not what LMDB wrote.
_DAMAGE_ERRORS = (
    lmdb.CorruptedError,
    lmdb.PageNotFoundError,
    lmdb.InvalidError,
    lmdb.VersionMismatchError,
)


def _errno_of(exc: BaseException) -> int | None:
    """The errno of an lmdb.Error (py-lmdb 3 has `code`; older ones only the message)."""
    code = getattr(exc, "code", None)
    if isinstance(code, int) and code > 0:
        return code
    if isinstance(exc, lmdb.ReadonlyError):
        return errno.EACCES
    if isinstance(exc, lmdb.DiskError):
        return errno.ENOSPC
    text = str(exc)
    for known in (errno.EIO, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
        if os.strerror(known) in text:
            return known
    return None


def _free_bytes(path: Path) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def store_error(exc: BaseException, path: Path, doing: str, *, opening: bool = False) -> StoreError:
    """The StoreError that says what an lmdb.Error from the store at `path` means, and what
    to do about it. A failed write transaction stored nothing: say so. `opening`: raised
    while the store opened, where a transaction gone bad (MDB_BAD_TXN) can only come from a
    corrupt page that an earlier call of it met."""
    code = _errno_of(exc)
    if isinstance(exc, lmdb.MapFullError):
        return StoreFull(
            f"the store at {path} is full (it reached its map size) and could not {doing}: "
            "nothing of that write was stored, what was stored before is kept"
        )
    free = _free_bytes(path)
    if code in (errno.ENOSPC, errno.EDQUOT) or (
        code == errno.EIO and free is not None and free < LOW_DISK_BYTES
    ):
        room = f", {free // 1024**2} MiB free" if free is not None else ""
        return StoreFull(
            f"the disk holding {path} is full{room}: could not {doing}; nothing of that write "
            "was stored, what was stored before is kept and can still be read. Free some "
            "space on that disk and try again"
        )
    if isinstance(exc, _DAMAGE_ERRORS) or (opening and isinstance(exc, lmdb.BadTxnError)):
        return StoreDamaged(f"{path / DATA_FILE} is damaged ({exc}): {RESTORE_ADVICE}")
    if code in _NO_ACCESS:
        return StoreReadOnly(
            f"no write access to the store at {path}: could not {doing} ({os.strerror(code)})"
        )
    return StoreError(f"the store at {path}: could not {doing}: {exc}")

