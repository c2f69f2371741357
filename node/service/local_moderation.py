"""This node's own moderation (docs/rpc.md, "Local moderation"): muted members, objects hidden
here only, blocked peers, labs whose decisions this node follows.

Node-wide settings, not objects: nothing is signed or sent, every member of the machine (each
seat) sees the same. Kept in the store's meta table under `lmod:<what>:<key>`, read once into
a cache that every change here replaces. Every `LocalModeration(store)` of one store in a
process shares that cache, so the Service, its seat copies and the governance registry agree.

The RPC methods (`mute`, `hide`, `block`, `decisions_follow`, `moderation`...) are
node/service/local_moderation_ops.py's, mixed into `Service`.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from node.store import Store

log = logging.getLogger(__name__)

PREFIX: Final = "lmod:"
MUTED: Final = "mute"
HIDDEN: Final = "hide"
BLOCKED: Final = "block"
FOLLOWED: Final = "decisions"

OnBlocked = Callable[[frozenset[str]], None]


@dataclass(frozen=True)
class Settings:
    muted: frozenset[bytes] = frozenset()
    hidden: frozenset[bytes] = frozenset()
    blocked: frozenset[str] = frozenset()
    decisions_followed: frozenset[bytes] = frozenset()


@dataclass
class _Shared:
    """What every LocalModeration of one store shares in this process."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    change_lock: threading.Lock = field(default_factory=threading.Lock)  # one change at a time
    cached: Settings | None = None
    on_blocked: list[OnBlocked] = field(default_factory=list)


_SHARED: weakref.WeakKeyDictionary[Store, _Shared] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


class LocalModeration:
    """The node's local moderation settings, cached; thread-safe (RPC calls run in worker
    threads, the governance registry reads from any of them). Every instance made for one
    store shares the cache and the hooks, so a change through one is seen by all."""

    def __init__(self, store: Store) -> None:
        self.store = store
        with _SHARED_LOCK:
            shared = _SHARED.get(store)
            if shared is None:
                shared = _SHARED[store] = _Shared()
        self._shared = shared
        # Called (from the changing thread) with the new blocked set, after each change of
        # it: the node closes and refuses those peers' connections (node/runtime.py).
        self.on_blocked = shared.on_blocked

    # ---- reads (the interface of node/service/governance.py) ---------------------------

    def settings(self) -> Settings:
        shared = self._shared
        with shared.lock:
            if shared.cached is None:
                shared.cached = self._load()
            return shared.cached

    def muted(self) -> frozenset[bytes]:
        return self.settings().muted

    def hidden(self) -> frozenset[bytes]:
        return self.settings().hidden

    def blocked(self) -> frozenset[str]:
        return self.settings().blocked

    def decisions_followed(self) -> frozenset[bytes]:
        return self.settings().decisions_followed

    def _load(self) -> Settings:
        found: dict[str, set[str]] = {MUTED: set(), HIDDEN: set(), BLOCKED: set(), FOLLOWED: set()}
        for key, _ in self.store.meta_prefix(PREFIX):
            what, _, value = key[len(PREFIX) :].partition(":")
            if what in found and value:
                found[what].add(value)

        def ids(what: str) -> frozenset[bytes]:
            out = set()
            for value in found[what]:
                try:
                    out.add(bytes.fromhex(value))
                except ValueError:
                    log.warning("ignoring a damaged local moderation entry %s:%s", what, value)
            return frozenset(out)

        return Settings(ids(MUTED), ids(HIDDEN), frozenset(found[BLOCKED]), ids(FOLLOWED))

    # ---- changes -----------------------------------------------------------------------

    def set(self, what: str, value: str, on: bool) -> bool:
        """Add (`on`) or remove one entry; False if it was so already."""
        if what not in (MUTED, HIDDEN, BLOCKED, FOLLOWED):
            raise ValueError(f"unknown local moderation setting {what!r}")
        shared = self._shared
        with shared.change_lock:  # hooks see the blocked sets in the order they were made
            before = self.settings()
            with shared.lock:
                self.store.meta_put(f"{PREFIX}{what}:{value}", b"1" if on else None)
                shared.cached = None
            after = self.settings()
            if what == BLOCKED and after.blocked != before.blocked:
                log.info("peer %s %s here", value, "blocked" if on else "unblocked")
                for hook in list(shared.on_blocked):
                    hook(after.blocked)
        return after != before
