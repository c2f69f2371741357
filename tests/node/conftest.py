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
