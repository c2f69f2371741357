"""What the sync room needs of the node that runs it (node/runtime.py's Node): a Protocol,
so this room does not import the runtime that wires it."""

from __future__ import annotations

from typing import Any, Protocol

from node.ingest.pipeline import Ingest
from node.store import Store
from p2p.host import P2PNode
from protocols.objects import SignedObject


class _Follows(Protocol):
    def follows(self) -> set[bytes]: ...

    def all_follows(self) -> set[bytes]: ...


class SyncHost(Protocol):
    """What sync needs of the node that runs it (node/runtime.py's Node): a Protocol, so
    this room does not import the runtime that wires it."""

    p2p: P2PNode | None
    store: Store
    ingest: Ingest
    extra_status: list[Any]

    @property
    def service(self) -> _Follows: ...

    def publish_object(self, obj: SignedObject) -> None: ...
