"""The data file's checks, before LMDB maps it: a truncated or damaged `data.mdb` must be a
clear error, never a SIGBUS when a page beyond the end of the file is touched (issue 21).
Plain reads (`os.pread`), no mapping."""

from __future__ import annotations

import importlib
import os
import struct
import sys
from pathlib import Path
from typing import Any, NamedTuple

from node.store.errors import RESTORE_ADVICE, StoreDamaged, StoreError

# The data file's layout, read before LMDB maps it (LMDB's mdb.c: MDB_meta, MDB_page,
# MDB_node; 64-bit, native byte order). Two meta pages open the file; each records the page
# size, the last page in use (mm_last_pg) and the transaction that wrote it, and LMDB uses
# the one with the higher transaction id.
_MDB_MAGIC = 0xBEEFC0DE
_E = "<" if sys.byteorder == "little" else ">"
# magic, version, address, mapsize, free db (48), main db (48), last page, txnid
_META = struct.Struct(_E + "IIQQ48s48sQQ")
# md_pad (the page size, in the free db), flags, depth, branch/leaf/overflow pages,
# entries, root page
_DB = struct.Struct(_E + "IHHQQQQQ")
_U16 = struct.Struct(_E + "H")
_U64 = struct.Struct(_E + "Q")
_NODE = struct.Struct(_E + "HHHH")  # lo, hi (data size or child page), flags, key size
_P_BRANCH, _P_LEAF, _P_OVERFLOW, _P_META = 0x01, 0x02, 0x04, 0x08
_F_BIGDATA = 0x01
_P_INVALID = 2**64 - 1
_NUM_METAS = 2
_MAX_DEPTH = 32  # LMDB's cursor stack: no tree is deeper
_MIN_PAGE = 256
_CHECK_TRIES = 3  # a writer may commit while the header is read: read it again


class _Layout(NamedTuple):
    """A data format: its page header size, where node offsets start, its version."""

    header: int
    base: int
    version: int
    max_page: int
    even_keys: bool  # 1.0 pads a leaf node's key to an even length


# By the offset of the magic in the first page: LMDB 0.9 (py-lmdb's default) and 1.0.
_LAYOUTS = {
    16: _Layout(16, 0, 1, 0x8000, False),
    24: _Layout(24, 24, 3, 0x10000, True),
}


class _Meta(NamedTuple):
    flags: int
    magic: int
    version: int
    page_size: int
    free_root: int
    last_page: int
    txnid: int


def check_data_file(data: Path) -> None:
    """Refuse, before LMDB maps it, a data file that would fault: one too short for the
    pages its header says are in use (LMDB reads them through the map, and a page beyond
    the end of the file is SIGBUS), or whose header pages are not LMDB's. Raises
    StoreDamaged naming the file; a missing file is a new store."""
    try:
        fd = os.open(data, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot read {data}: {exc.strerror}") from exc
    try:
        problem, txnid = _checked_once(fd)
        for _ in range(_CHECK_TRIES):
            if problem is None or txnid is None:
                break
            # A verdict on a header that a writer replaced meanwhile is no verdict.
            again, newer = _checked_once(fd)
            if newer == txnid:
                break
            problem, txnid = again, newer
    finally:
        os.close(fd)
    if problem is not None:
        raise StoreDamaged(f"{data} is damaged ({problem}): {RESTORE_ADVICE}")


def verify_data_file(data: Path) -> list[str] | None:
    """Every structural problem of the data file, found by reading each page it uses with
    plain reads, never through a map: what `check_data_file` cannot see at open (a corrupt
    page, which LMDB may still meet with SIGBUS, SIGSEGV or an abort). Seconds per GB: for a
    process that died of a signal, or a check on request, not for every open. None when
    this py-lmdb has no offline verifier (it came with py-lmdb 3)."""
    try:
        verify: Any = importlib.import_module("lmdb.verify")  # py-lmdb >= 3
    except ImportError:
        return None
    try:
        problems: list[str] = verify.verify(str(data), subdir=False)
    except verify.VerifyError as exc:
        return [str(exc)]
    except OSError as exc:
        return [f"unreadable: {exc.strerror}"]
    return problems


def _data_file_problem(fd: int) -> tuple[str | None, int | None]:
    """What is wrong with the data file (None if nothing seen), and the transaction id of
    the header that was checked."""
    head = os.pread(fd, _META.size + 64, 0)
    if not head:
        return "empty: 0 bytes", None
    layout = next(
        (lay for off, lay in _LAYOUTS.items() if head[off : off + 4] == _magic_bytes()), None
    )
    if layout is None:
        if len(head) < _META.size + 16:
            return f"truncated: {len(head)} bytes, shorter than its header", None
        return "not an LMDB data file: its first page has no LMDB magic number", None
    if len(head) < layout.header + _META.size:
        return f"truncated: {len(head)} bytes, shorter than its header", None
    first = _meta(head, layout)
    psize = first.page_size
    if psize & (psize - 1) or not _MIN_PAGE <= psize <= layout.max_page:
        return f"its header page 0 is corrupt: page size {psize}", None
    second_raw = os.pread(fd, layout.header + _META.size, psize)
    if len(second_raw) < layout.header + _META.size:
        return f"truncated: shorter than its two header pages ({2 * psize} bytes)", None
    metas = (first, _meta(second_raw, layout))
    for i, m in enumerate(metas):
        if m.magic != _MDB_MAGIC or not m.flags & _P_META:
            return f"its header page {i} is corrupt: no LMDB magic number", None
        if m.version != layout.version:
            return f"its header page {i} is corrupt: unknown format version {m.version}", None
        if m.page_size != psize:
            return f"its header pages disagree on the page size ({psize}, {m.page_size})", None
    meta = max(metas, key=lambda m: m.txnid)
    # The size is read after the header: a writer writes its pages before the header that
    # points at them, so a concurrent commit cannot make a sound file look short.
    size = os.fstat(fd).st_size
    if size < _NUM_METAS * psize:
        return f"truncated: {size} bytes, shorter than its two header pages", meta.txnid
    pages = meta.last_page + 1
    if pages * psize <= size:
        return None, meta.txnid
    # The file may end before the last page when the final pages are free (pages that a
    # transaction took and gave back are never written: LMDB's mdb.c, MDB_meta.mm_last_pg).
    in_file = size // psize
    free = _free_pages(fd, layout, psize, meta.free_root, in_file, pages)
    if free is not None and len(free) == pages - in_file:
        return None, meta.txnid
    return f"truncated: {size} bytes, but its last page ends at byte {pages * psize}", meta.txnid


def _magic_bytes() -> bytes:
    return struct.pack(_E + "I", _MDB_MAGIC)


def _meta(raw: bytes, layout: _Layout) -> _Meta:
    flags = _U16.unpack_from(raw, layout.header - 6)[0]
    magic, version, _, _, free_db, _, last, txnid = _META.unpack_from(raw, layout.header)
    pad, _, _, _, _, _, _, root = _DB.unpack(free_db)
    return _Meta(flags, magic, version, pad, root, last, txnid)


def _checked_once(fd: int) -> tuple[str | None, int | None]:
    try:
        return _data_file_problem(fd)
    except OSError as exc:  # an I/O error reading the header
        return f"unreadable: {exc.strerror}", None


def _free_pages(
    fd: int, layout: _Layout, psize: int, root: int, lo: int, hi: int
) -> set[int] | None:
    """The pages in [lo, hi) that the free-page database lists, read with pread (each page
    it is made of must lie in the file). None if it cannot be read: a page of it beyond the
    end of the file, or one that is not a B-tree page."""
    found: set[int] = set()
    if root == _P_INVALID:
        return found
    in_file = os.fstat(fd).st_size // psize
    todo = [(root, 0)]
    visited = 0
    while todo:
        pgno, depth = todo.pop()
        visited += 1
        if not _NUM_METAS <= pgno < in_file or depth > _MAX_DEPTH or visited > in_file:
            return None
        page = os.pread(fd, psize, pgno * psize)
        flags = _U16.unpack_from(page, layout.header - 6)[0]
        lower = _U16.unpack_from(page, layout.header - 4)[0]
        n = (lower - (layout.header - layout.base)) >> 1
        if n < 0 or layout.header + 2 * n > psize:
            return None
        for i in range(n):
            node = _U16.unpack_from(page, layout.header + 2 * i)[0] + layout.base
            if node + _NODE.size > psize:
                return None
            lo16, hi16, nflags, ksize = _NODE.unpack_from(page, node)
            if flags & _P_BRANCH:
                todo.append((lo16 | hi16 << 16 | nflags << 32, depth + 1))
                continue
            if not flags & _P_LEAF:
                return None
            dsize = lo16 | hi16 << 16
            doff = node + _NODE.size + (ksize + (ksize & 1) if layout.even_keys else ksize)
            if nflags & _F_BIGDATA:
                if doff + 8 > psize:
                    return None
                ov = _U64.unpack_from(page, doff)[0]
                npages = (layout.header - 1 + dsize) // psize + 1
                if ov < _NUM_METAS or ov + npages > in_file:
                    return None
                ovpage = os.pread(fd, npages * psize, ov * psize)
                if not _U16.unpack_from(ovpage, layout.header - 6)[0] & _P_OVERFLOW:
                    return None
                ids = ovpage[layout.header : layout.header + dsize]
            elif doff + dsize <= psize:
                ids = page[doff : doff + dsize]
            else:
                return None
            # An ID list: its count, then page numbers (the count may be less than the room).
            if len(ids) < 8:
                return None
            count = min(_U64.unpack_from(ids)[0], len(ids) // 8 - 1)
            for k in range(1, count + 1):
                p = _U64.unpack_from(ids, 8 * k)[0]
                if lo <= p < hi:
                    found.add(p)
    return found
