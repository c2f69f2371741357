"""One view registry per store (node/service/living.py's project histories,
node/service/governance.py's lab authorities): made at the first `attach`, fed by every ingest
that attaches it, and shared by every Service over that store. A bare store (a tool, a test)
gets one made on demand and not kept (`of_store`).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from node.ingest.pipeline import Ingest
from node.service.members import Members
from node.service.members import attach as attach_members
from node.service.members import of_store as members_of_store
from node.store.store import Store


class _Listens(Protocol):
    def listen(self, ingest: Ingest) -> None: ...


R = TypeVar("R", bound=_Listens)


class PerStore(Generic[R]):
    """The registries of one kind, by store."""

    def __init__(self, make: Callable[[Store, Members], R]) -> None:
        self._make = make
        self._attached: weakref.WeakKeyDictionary[Store, R] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def attach(self, store: Store, ingest: Ingest, members: Members | None = None) -> R:
        """The store's registry (made at the first call), listening to `ingest`."""
        with self._lock:
            found = self._attached.get(store)
            if found is None:
                found = self._make(store, members or attach_members(store, ingest))
                self._attached[store] = found
            found.listen(ingest)
        return found

    def of_store(self, store: Store, members: Members | None = None) -> R:
        """The store's attached registry; for a bare store one made now and not kept."""
        found = self._attached.get(store)
        if found is None:
            found = self._make(store, members if members is not None else members_of_store(store))
        return found
