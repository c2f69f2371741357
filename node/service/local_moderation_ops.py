"""RPC methods of this node's own moderation (docs/rpc.md, "Local moderation"): `mute`,
`unmute`, `hide`, `unhide`, `block`, `unblock`, `decisions_follow`, `moderation`. Mixed into
`Service` (node/service/api.py); the settings are node/service/local_moderation.py's."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from node.identity import fingerprint
from node.service import queries
from node.service.errors import ServiceError
from node.service.living_ops import _member_ref
from node.service.local_moderation import BLOCKED, FOLLOWED, HIDDEN, MUTED, LocalModeration
from node.store import Store

# A libp2p peer id as text: base58btc (an Ed25519 one is "12D3KooW" + 44 characters).
PEER_ID_RE: Final = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{32,128}$")


def _param(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ServiceError("bad_request", f"missing parameter {name!r} (a string)")
    return value.strip()


class LocalModerationMethods:
    """The RPC side of local moderation (mixed into `Service`)."""

    store: Store

    if TYPE_CHECKING:  # Service's own

        def _views(self, txn: Any) -> queries.Views: ...

    @property
    def local_moderation(self) -> LocalModeration:
        """This node's local moderation (shared by every seat and the governance registry)."""
        return LocalModeration(self.store)

    def _member_param(self, params: Mapping[str, Any]) -> bytes:
        with self.store.read() as txn:
            return _member_ref(self._views(txn), _param(params, "member"))

    def _object_param(self, params: Mapping[str, Any]) -> bytes:
        ref = _param(params, "id").lower()
        with self.store.read() as txn:
            try:
                return queries.resolve_id(self.store, txn, ref)
            except queries.NotFound:
                if len(ref) == 64:  # not here yet: hidden when it comes
                    return bytes.fromhex(ref)
                raise

    def _peer_param(self, params: Mapping[str, Any]) -> str:
        peer = _param(params, "peer")
        if "/p2p/" in peer:  # a full address names the peer at its end
            peer = peer.rsplit("/p2p/", 1)[1].strip("/")
        if not PEER_ID_RE.match(peer):
            raise ServiceError("bad_request", f"{peer!r} is not a peer id (as `peers` lists)")
        return peer

    def m_mute(self, params: Mapping[str, Any]) -> bool:
        self.local_moderation.set(MUTED, self._member_param(params).hex(), True)
        return True

    def m_unmute(self, params: Mapping[str, Any]) -> bool:
        self.local_moderation.set(MUTED, self._member_param(params).hex(), False)
        return True

    def m_hide(self, params: Mapping[str, Any]) -> bool:
        self.local_moderation.set(HIDDEN, self._object_param(params).hex(), True)
        return True

    def m_unhide(self, params: Mapping[str, Any]) -> bool:
        self.local_moderation.set(HIDDEN, self._object_param(params).hex(), False)
        return True

    def m_block(self, params: Mapping[str, Any]) -> bool:
        self.local_moderation.set(BLOCKED, self._peer_param(params), True)
        return True

    def m_unblock(self, params: Mapping[str, Any]) -> bool:
        self.local_moderation.set(BLOCKED, self._peer_param(params), False)
        return True

    def m_decisions_follow(self, params: Mapping[str, Any]) -> bool:
        on = params.get("on", True)
        if not isinstance(on, bool):
            raise ServiceError("bad_request", "parameter 'on' must be true or false")
        with self.store.read() as txn:
            lab = queries.resolve_lab(self.store, txn, _param(params, "lab"), must_exist=False)
        self.local_moderation.set(FOLLOWED, lab.hex(), on)
        return True

    def m_moderation(self, params: Mapping[str, Any]) -> dict[str, Any]:
        s = self.local_moderation.settings()
        with self.store.read() as txn:
            views = self._views(txn)
            muted = [
                {"member": m.hex(), "name": views.member_name(m) or "",
                 "fingerprint": fingerprint(m)}
                for m in sorted(s.muted)
            ]  # fmt: skip
        return {
            "muted": muted,
            "hidden": sorted(o.hex() for o in s.hidden),
            "blocked": sorted(s.blocked),
            "decisions_followed": sorted(lab.hex() for lab in s.decisions_followed),
        }
