"""Small text helpers shared by screens: short ids, relative times, list fields.

``Formatter(redact=True)`` replaces every volatile value (ids, times, addresses) by a fixed
placeholder so snapshot tests of screens are deterministic.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

REDACTED = "··"


def split_list(text: str) -> list[str]:
    """Comma-separated user input -> a clean list (no blanks, order kept, no duplicates)."""
    out: list[str] = []
    for part in text.split(","):
        item = part.strip()
        if item and item not in out:
            out.append(item)
    return out


def join_list(items: Iterable[str]) -> str:
    return ", ".join(items)


def who(view: Mapping[str, Any]) -> str:
    """The author to show for an object view: its member's name, marked when the object
    speaks for no member (a revoked or uncertified device key, docs/identity.md), when the
    member's identity is disputed (competing rotations), or when its certificate has not
    arrived yet."""
    name = str(view.get("author_name") or "")
    attribution = view.get("attribution")
    if attribution == "unattributed":
        return f"unattributed key {str(view.get('author', ''))[:8]}"
    if attribution == "disputed":
        return f"{name or '?'} ⚠ disputed identity"
    if attribution == "pending":
        return f"{name or '?'} (certificate pending)"
    return name


def ago(ts_ms: int, now_ms: int) -> str:
    """A compact relative time: 'just now', '5m ago', '3h ago', '2d ago', or a date."""
    delta = max(0, (now_ms - ts_ms) // 1000)
    if delta < 45:
        return "just now"
    if delta < 3600:
        return f"{max(1, delta // 60)}m ago"
    if delta < 86400:
        return f"{delta // 3600}h ago"
    if delta < 30 * 86400:
        return f"{delta // 86400}d ago"
    return time.strftime("%Y-%m-%d", time.localtime(ts_ms / 1000))


class Formatter:
    """Formats volatile values; with ``redact`` every one of them becomes a placeholder."""

    def __init__(self, redact: bool = False, clock: Callable[[], float] = time.time) -> None:
        self.redact = redact
        self.clock = clock

    def when(self, ts_ms: int | None) -> str:
        if self.redact:
            return REDACTED
        if not ts_ms:
            return ""
        return ago(int(ts_ms), int(self.clock() * 1000))

    def short_id(self, hex_id: str | None, width: int = 8) -> str:
        if self.redact:
            return REDACTED
        return (hex_id or "")[:width]

    def volatile(self, text: str) -> str:
        """Any other value that changes from run to run (peer ids, addresses)."""
        return REDACTED if self.redact else text
