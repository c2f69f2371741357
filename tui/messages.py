"""Textual messages the app sends to its screens about the node."""

from __future__ import annotations

from typing import Any

from textual.message import Message

# The app forwards these to its screens; they must not bubble back up to the app.


class NodeStateChanged(Message, bubble=False):
    """The control connection went up (``connected``) or down."""

    def __init__(self, connected: bool) -> None:
        super().__init__()
        self.connected = connected


class ObjectPushed(Message, bubble=False):
    """The node pushed a newly stored object (a view, see docs/rpc.md)."""

    def __init__(self, view: dict[str, Any]) -> None:
        super().__init__()
        self.view = view

    @property
    def kind(self) -> str:
        return str(self.view.get("kind", ""))


class SyncPushed(Message, bubble=False):
    """The node pushed sync progress (``status.sync`` shape)."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__()
        self.data = data


class IdentityReady(Message, bubble=False):
    """``whoami`` returned an identity (after start-up or onboarding)."""


class PairingPushed(Message, bubble=False):
    """The node pushed the state of its pairing (``pairing_status`` shape, docs/rpc.md)."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__()
        self.data = data
