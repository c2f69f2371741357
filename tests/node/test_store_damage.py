"""A damaged data file (issue 21): every open gives a StoreError naming the file and what to
do, never a signal. LMDB maps the file, so a page read beyond the end of a truncated file is
SIGBUS: each open runs in a child process, where a signal is a failed test, not a dead pytest.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lmdb
import pytest

from node.cli.process import node_exit_message
from node.ingest.pipeline import Ingest
from node.store import Store, StoreDamaged
from node.store.datafile import check_data_file, verify_data_file
from node.store.errors import RESTORE_ADVICE

from .helpers import NOW, member

PERCOLAB = Path(sys.prefix) / "bin" / "percolab"
CHILD_TIMEOUT_S = 60
# The child's exit status when the open raised a StoreError (anything else is a failure).
STORE_ERROR_EXIT = 3
OPEN_CHILD = f"""
import sys
from pathlib import Path
from node.store import Store, StoreError
try:
    store = Store(Path(sys.argv[1]))
except StoreError as exc:
    print(type(exc).__name__ + ": " + str(exc))
    sys.exit({STORE_ERROR_EXIT})
with store.read() as txn:
    print("opened, objects:", store.count(txn))
"""
MAGIC = struct.pack("=I", 0xBEEFC0DE)
PROJECTS = 300


def _layout(data: Path) -> tuple[int, int]:
    """(offset of the meta record in a meta page, page size) of an LMDB data file."""
    head = data.read_bytes()[:128]
    off = head.index(MAGIC)
    psize = struct.unpack_from("=I", head, off + 24)[0]  # mm_psize: the free db's md_pad
    return off, psize


def _newest_meta(data: Path) -> tuple[int, int]:
    """(last page in use, main db root page) by the meta page with the higher txnid."""
    raw = data.read_bytes()
    off, psize = _layout(data)
    metas = []
    for base in (off, psize + off):
        last, txnid = struct.unpack_from("=QQ", raw, base + 24 + 96)
        root = struct.unpack_from("=Q", raw, base + 24 + 48 + 40)[0]
        metas.append((txnid, last, root))
    _, last, root = max(metas)
    return last, root


def open_in_child(store_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", OPEN_CHILD, str(store_dir)],
        capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
    )  # fmt: skip


def assert_damaged(proc: subprocess.CompletedProcess[str], data: Path) -> None:
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.returncode == STORE_ERROR_EXIT, proc.stdout + proc.stderr
    assert proc.stdout.startswith("StoreDamaged: "), proc.stdout
    assert str(data) in proc.stdout
    assert RESTORE_ADVICE in proc.stdout


@dataclass(frozen=True)
class Sound:
    data_dir: Path
    objects: int  # live objects in its store


@pytest.fixture(scope="module")
def sound(tmp_path_factory: pytest.TempPathFactory) -> Sound:
    """A data directory (identity and store) with a few hundred objects."""
    data_dir = tmp_path_factory.mktemp("sound")
    env = {k: v for k, v in os.environ.items() if k != "PERCOLAB_HOME"}
    subprocess.run(
        [str(PERCOLAB), "--data-dir", str(data_dir), "init", "--unencrypted-key", "--name",
         "Tester"],
        check=True, capture_output=True, env=env, timeout=CHILD_TIMEOUT_S,
    )  # fmt: skip
    store = Store(data_dir / "store", map_size=1 << 30)
    ingest = Ingest(store, check_workers=0)
    try:
        m = member("damage")
        lab = m.lab()
        objs = [lab]
        for i in range(PROJECTS):
            p = m.project(lab, f"project {i}", "words to search for")
            objs += [p, m.comment(p, "a comment")] if i % 3 else [p, m.tag(p, "solar")]
        assert ingest.ingest([o.raw for o in objs], now=NOW).rejected == []
        with store.read() as txn:
            objects = store.count(txn)
    finally:
        ingest.close()
        store.close()
    return Sound(data_dir, objects)


@pytest.fixture
def damaged(sound: Sound, tmp_path: Path) -> Path:
    """A copy of the sound data directory, for a test to damage."""
    copy = tmp_path / "data"
    shutil.copytree(sound.data_dir, copy)
    return copy


def truncate_to(size: Callable[[int, int], int]) -> Callable[[Path], None]:
    def damage(data: Path) -> None:
        os.truncate(data, size(data.stat().st_size, _layout(data)[1]))

    return damage


def overwrite_magic(meta: int) -> Callable[[Path], None]:
    def damage(data: Path) -> None:
        off, psize = _layout(data)
        with data.open("r+b") as f:
            f.seek(meta * psize + off)
            f.write(b"\0\0\0\0")

    return damage


def zero_root_page_flags(data: Path) -> None:
    """Flip the page type of the main database's root page (read by every open) to none."""
    off, psize = _layout(data)
    _, root = _newest_meta(data)
    with data.open("r+b") as f:
        f.seek(root * psize + off - 6)  # mp_flags: the page header's last 6 bytes hold it
        f.write(b"\0\0")


DAMAGES = {
    "truncated to half": truncate_to(lambda size, _: size // 2),
    "one page short": truncate_to(lambda size, psize: size - psize),
    "truncated to 100 bytes": truncate_to(lambda *_: 100),
    "truncated to 0 bytes": truncate_to(lambda *_: 0),
    "meta 0 magic": overwrite_magic(0),
    "meta 1 magic": overwrite_magic(1),
    "root page flipped": zero_root_page_flags,
}


def test_the_sound_copy_opens(damaged: Path, sound: Sound) -> None:
    proc = open_in_child(damaged / "store")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"objects: {sound.objects}" in proc.stdout


@pytest.mark.parametrize("damage", list(DAMAGES), ids=list(DAMAGES))
def test_damaged_store_is_a_store_error(damaged: Path, damage: str) -> None:
    data = damaged / "store" / "data.mdb"
    DAMAGES[damage](data)
    assert_damaged(open_in_child(damaged / "store"), data)


@pytest.mark.parametrize("damage", ["truncated to half", "meta 0 magic"])
def test_cli_on_damaged_store_says_one_line(damaged: Path, damage: str) -> None:
    data = damaged / "store" / "data.mdb"
    DAMAGES[damage](data)
    env = {k: v for k, v in os.environ.items() if k != "PERCOLAB_HOME"}
    proc = subprocess.run(
        [str(PERCOLAB), "--data-dir", str(damaged), "list"],
        capture_output=True, text=True, env=env, timeout=CHILD_TIMEOUT_S,
    )  # fmt: skip
    assert proc.returncode > 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(data) in lines[0] and "is damaged" in lines[0]


def _make_short_but_sound(env_dir: Path, **open_kw: object) -> None:
    """Leave an LMDB file that ends before its last page, soundly: pages a transaction took
    from the end and gave back in the same transaction are never written (mdb.c:
    MDB_meta.mm_last_pg "Actually the file may be shorter if the freeDB lists the final
    pages")."""
    env = lmdb.open(str(env_dir), map_size=1 << 30, max_dbs=32, **open_kw)
    try:
        scratch = env.open_db(b"scratch")
        keys = [b"%08d" % i for i in range(3000)]
        with env.begin(write=True) as txn:
            for k in keys:
                txn.put(k, b"v" * 100, db=scratch)
        with env.begin(write=True) as txn:
            for k in keys:
                txn.delete(k, db=scratch)
        with env.begin(write=True) as txn:  # an overflow value, freed before it is written
            txn.put(b"big", b"x" * (1 << 20), db=scratch)
            txn.delete(b"big", db=scratch)
    finally:
        env.close()


def test_short_but_sound_store_opens(damaged: Path, sound: Sound) -> None:
    """No false alarm: a file that ends before its last page because its final pages are
    free is sound; LMDB never reads them."""
    store_dir = damaged / "store"
    data = store_dir / "data.mdb"
    _make_short_but_sound(store_dir)
    last, _ = _newest_meta(data)
    assert (last + 1) * _layout(data)[1] > data.stat().st_size, "the file is not short"
    proc = open_in_child(store_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"objects: {sound.objects}" in proc.stdout
    # ...but one page less than that is missing pages that are in use.
    os.truncate(data, data.stat().st_size - _layout(data)[1])
    assert_damaged(open_in_child(store_dir), data)


def _engines() -> list[int]:
    out = []
    for major in (0, 1):
        try:
            lmdb.version(lib_version=major)
        except (TypeError, lmdb.Error):  # py-lmdb < 3 has one engine, and no lib_version
            continue
        out.append(major)
    return out or [0]


@pytest.mark.parametrize("engine", _engines())
def test_check_reads_both_lmdb_formats(tmp_path: Path, engine: int) -> None:
    """LMDB 0.9 (py-lmdb's default) and 1.0 lay out their pages differently."""
    kw = {"lib_version": engine} if _engines() != [0] else {}
    _make_short_but_sound(tmp_path, **kw)
    data = tmp_path / "data.mdb"
    last, _ = _newest_meta(data)
    assert (last + 1) * _layout(data)[1] > data.stat().st_size, "the file is not short"
    check_data_file(data)  # sound: no error
    os.truncate(data, data.stat().st_size // 2)
    with pytest.raises(StoreDamaged, match="truncated"):
        check_data_file(data)


def test_verify_finds_a_corrupt_page(damaged: Path) -> None:
    """What the check at open cannot see: a leaf page near the end of the file whose node
    offset points past the end. LMDB reads it through the map (SIGBUS in a child, shown in
    the fuzzing of issue 21); the offline verifier reads it with plain reads and says so."""
    data = damaged / "store" / "data.mdb"
    if verify_data_file(data) is None:
        pytest.skip("this py-lmdb has no offline verifier (py-lmdb >= 3)")
    assert verify_data_file(data) == []
    _corrupt_last_leaf(data)
    problems = verify_data_file(data)
    assert problems and "out of bounds" in " ".join(problems)


def _corrupt_last_leaf(data: Path) -> None:
    """Point the first node of the last leaf page past the end of the file."""
    off, psize = _layout(data)
    raw = bytearray(data.read_bytes())
    pages = len(raw) // psize
    for pg in range(pages - 1, 1, -1):  # the last leaf page with nodes
        flags, lower = struct.unpack_from("=HH", raw, pg * psize + off - 6)
        if flags == 0x02 and lower > off:
            struct.pack_into("=H", raw, pg * psize + off, psize * (pages - pg) + 8)
            break
    else:
        pytest.fail("no leaf page")
    data.write_bytes(raw)


def test_a_node_dead_of_a_signal_gets_its_store_verified(damaged: Path) -> None:
    """`./run.sh` used to say "node exited at start (code -7)" with an empty log: a node that
    died of a signal at start now gets its data file verified, and the line says what is
    damaged and what to do."""
    data = damaged / "store" / "data.mdb"
    if verify_data_file(data) is None:
        pytest.skip("this py-lmdb has no offline verifier (py-lmdb >= 3)")
    sound = node_exit_message(damaged / "store", -signal.SIGBUS)
    assert sound == "the node died of SIGBUS at start; see its log"
    _corrupt_last_leaf(data)
    line = node_exit_message(damaged / "store", -signal.SIGBUS)
    assert line.startswith(f"the node died of SIGBUS: {data} is damaged (")
    assert "restore it from a backup" in line and "\n" not in line
    exited = node_exit_message(damaged / "store", 1)
    assert exited == "the node exited at start (code 1); see its log"
