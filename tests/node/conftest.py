from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node.ingest.pipeline import Ingest
from node.store.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store", map_size=1 << 30)
    yield s
    s.close()


@pytest.fixture
def ingest(store: Store) -> Iterator[Ingest]:
    ing = Ingest(store)
    yield ing
    ing.close()


# A store, its ingest (checks inline: no worker processes) and a folder for members' data
# directories: the world Service tests build members in (tests/node/services.py `member`).
World = tuple[Path, Store, Ingest]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = Store(tmp_path / "store", map_size=1 << 30)
    ingest = Ingest(store, check_workers=0)
    yield tmp_path, store, ingest
    ingest.close()
    store.close()
