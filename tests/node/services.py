"""Members for Service tests over one store (the `world` fixture of tests/node/conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from node.ingest.pipeline import Ingest
from node.service.api import Service
from node.store.store import Store


def member(world: tuple[Path, Store, Ingest], name: str, **params: Any) -> Service:
    """A new member with its own data directory (unencrypted key) over the world's store."""
    tmp, store, ingest = world
    svc = Service(tmp / name, store, ingest)
    svc.call("init", {"name": name, "unencrypted": True, **params})
    return svc
