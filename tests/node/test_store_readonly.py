"""A store opened read-only (issue 21: "even `list` fails: reading must work read-only").

`Store(path, readonly=True)` reads and never writes: every write is a clean StoreReadOnly,
and a store that would need a one-off upgrade at open says so instead of writing. Tests run
as root, who ignores permission bits: most of them use LMDB's read-only mode directly, and
the real case (a directory the process may not write) runs as `nobody` when possible.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import lmdb
import pytest

from node.ingest.pipeline import Ingest
from node.service.api import Service
from node.store import Store, StoreError, StoreReadOnly, sync_index, word_index
from node.store.store import MAX_DBS
from protocols import kinds

from .helpers import NOW, member

NOBODY = 65534
CHILD_TIMEOUT_S = 60
# The child's report when it ran as `nobody` and the store behaved.
CHILD_OK = "read-only ok"
READONLY_CHILD = f"""
import sys
from pathlib import Path
from node.store import Store, StoreError, StoreReadOnly
from protocols import kinds
from tests.node.helpers import member

path = Path(sys.argv[1])
try:
    Store(path)
except StoreError as exc:
    print("writable open refused:", exc)
store = Store(path, readonly=True)
with store.read() as txn:
    print("objects", store.count(txn))
lab = member("late").lab()
try:
    store.write_batch([(lab, kinds.kind_spec("lab"))])
except StoreReadOnly:
    print("{CHILD_OK}")
store.close()
"""


def digest(path: Path) -> str:
    return hashlib.sha256((path / "data.mdb").read_bytes()).hexdigest()


@pytest.fixture
def made(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A closed store with some objects, and how many are live."""
    path = tmp_path / "store"
    store = Store(path, map_size=1 << 30)
    ingest = Ingest(store, check_workers=0)
    try:
        m = member("ro")
        lab = m.lab()
        objs = [lab] + [m.project(lab, f"Project {i}", "solar words") for i in range(50)]
        objs.append(m.tag(objs[1], "solar"))
        assert ingest.ingest([o.raw for o in objs], now=NOW).rejected == []
    finally:
        ingest.close()
        store.close()
    yield path, len(objs)


def raw_env(path: Path) -> lmdb.Environment:
    return lmdb.open(str(path), max_dbs=MAX_DBS, map_size=1 << 30)


def test_reads_work_and_writes_are_refused(made: tuple[Path, int], tmp_path: Path) -> None:
    path, n = made
    before = digest(path)
    store = Store(path, readonly=True)
    ingest = Ingest(store, check_workers=0)
    try:
        with store.read() as txn:
            assert store.count(txn) == n
            assert len(list(store.iter_objects(txn))) == n
        svc = Service(tmp_path, store, ingest)
        assert len(svc.call("projects", {"limit": 200})["items"]) == n - 2
        assert svc.call("search", {"query": "solar"})
        lab = member("late").lab()
        with pytest.raises(StoreReadOnly, match="read-only"):
            store.write_batch([(lab, kinds.kind_spec("lab"))])
        with pytest.raises(StoreReadOnly):
            store.meta_put("follow:x", b"1")
        with pytest.raises(StoreError):  # through the pipeline: a clean error too
            ingest.ingest([lab.raw], now=NOW)
    finally:
        ingest.close()
        store.close()
    assert digest(path) == before


@pytest.mark.parametrize(
    ("marker", "says"),
    [
        (sync_index.BUILT_MARKER, "reconciliation index"),
        (word_index.BUILT_MARKER, "search index"),
        ("orphan_tags:v1", "tags"),
    ],
)
def test_an_upgrade_that_would_write_is_one_clear_error(
    made: tuple[Path, int], marker: str, says: str
) -> None:
    """A store from before an index existed is built up at open, which writes: read-only,
    the open says so (and writes nothing); opened writable once, it reads read-only."""
    path, n = made
    env = raw_env(path)
    meta = env.open_db(b"meta")
    with env.begin(write=True) as txn:
        assert txn.delete(marker.encode(), db=meta)
    env.close()
    before = digest(path)
    with pytest.raises(StoreReadOnly, match=f"{says}.*open it once with write access"):
        Store(path, readonly=True)
    assert digest(path) == before
    Store(path).close()
    store = Store(path, readonly=True)
    with store.read() as txn:
        assert store.count(txn) == n
    store.close()


def test_a_missing_database_is_one_clear_error(made: tuple[Path, int]) -> None:
    path, _ = made
    env = raw_env(path)
    unindexed = env.open_db(b"unindexed")
    with env.begin(write=True) as txn:
        txn.drop(unindexed, delete=True)
    env.close()
    with pytest.raises(StoreReadOnly, match="create its databases unindexed"):
        Store(path, readonly=True)


def test_the_review_is_skipped_not_written(made: tuple[Path, int]) -> None:
    """A release with other rules reviews stored objects at open (a write): read-only, the
    views stay as the last writer left them."""
    path, n = made
    env = raw_env(path)
    meta = env.open_db(b"meta")
    with env.begin(write=True) as txn:
        txn.put(b"review:stamp", b"another release", db=meta)
    env.close()
    before = digest(path)
    store = Store(path, readonly=True)
    with store.read() as txn:
        assert store.count(txn) == n
    store.close()
    assert digest(path) == before


def test_no_store_read_only_is_an_error_not_a_new_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store"):
        Store(tmp_path / "nothing", readonly=True)
    assert not (tmp_path / "nothing").exists()


@pytest.fixture
def readonly_dir(made: tuple[Path, int]) -> Iterator[Path]:
    """The store, copied where `nobody` can reach it, with no write bit anywhere."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the check as another user")
    if shutil.which("setpriv") is None:
        pytest.skip("no setpriv to run the check as another user")
    top = Path(tempfile.mkdtemp(prefix="percolab-ro-"))
    try:
        top.chmod(0o755)
        store = top / "store"
        shutil.copytree(made[0], store)
        for p in (store / "data.mdb", store / "lock.mdb"):
            p.chmod(0o444)
        store.chmod(0o555)
        yield store
    finally:
        for p in (top, *top.rglob("*")):
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
        shutil.rmtree(top)


def test_a_directory_this_user_cannot_write(readonly_dir: Path, made: tuple[Path, int]) -> None:
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
         sys.executable, "-c", READONLY_CHILD, str(readonly_dir)],
        capture_output=True, text=True, cwd=repo, timeout=CHILD_TIMEOUT_S,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )  # fmt: skip
    if proc.returncode != 0 and "Permission denied" in proc.stderr and "node" not in proc.stderr:
        pytest.skip(f"`nobody` cannot run this interpreter: {proc.stderr.strip()[-200:]}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "writable open refused:" in proc.stdout
    assert f"objects {made[1]}" in proc.stdout
    assert CHILD_OK in proc.stdout
