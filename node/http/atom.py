"""Atom (RFC 4287) documents from object views. Pure: views in, bytes out.

Every entry's id is `urn:percolab:<object id>` (objects are immutable, so its id is stable
forever); `published` is the object's own time, and so is `updated` but for a project, whose
revisions and pledges update its entry (the view's `updated`; the entry shows the current
project, its licence as `rights`). The feed's `updated` is its newest entry's `updated`, so an
unchanged feed renders to the same bytes and the same ETag.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Any
from xml.sax.saxutils import escape, quoteattr

# Characters XML 1.0 forbids (object text already refuses most control characters).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_PLAIN = re.compile("[^&<>\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]*")
# An attribute value `quoteattr` would put in double quotes unchanged.
_PLAIN_ATTR = re.compile('[^&<>"\t\n\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]*')
DAY_MS = 86_400_000
_EPOCH = date(1970, 1, 1)
# Zero-padded fields of rfc3339 (a table lookup is a third of formatting each one).
_TWO_DIGITS = [f"{n:02d}" for n in range(60)]
_MILLIS = [f".{n:03d}Z" for n in range(1000)]
# Entry titles made from free text (comments) are cut to this many characters.
MAX_TITLE_CHARS = 80
SHORT_ID = 12
GENERATOR = "Percolab"


@dataclass
class Feed:
    id: str
    title: str
    self_url: str
    alternate_url: str
    updated_ms: int
    subtitle: str = ""
    author: str = GENERATOR
    entries: list[str] = field(default_factory=list)  # rendered <entry> elements


def urn(oid: str) -> str:
    return f"urn:percolab:{oid}"


@lru_cache(maxsize=1024)
def _day(days: int) -> str:
    return (_EPOCH + timedelta(days=days)).isoformat()


def rfc3339(ts_ms: int) -> str:
    """UTC with milliseconds, e.g. 2025-01-31T12:00:00.000Z (integer arithmetic and tables: a
    feed formats 50 of them, and datetime's strftime was a fifth of rendering one)."""
    days, ms = divmod(ts_ms, DAY_MS)
    secs, ms = divmod(ms, 1000)
    hours, secs = divmod(secs, 3600)
    mins, secs = divmod(secs, 60)
    two = _TWO_DIGITS
    return f"{_day(days)}T{two[hours]}:{two[mins]}:{two[secs]}{_MILLIS[ms]}"


def _text(value: str) -> str:
    if _PLAIN.fullmatch(value):  # the common case: nothing to escape or replace
        return value
    return escape(_NOT_XML.sub("\ufffd", value))


def _attr(value: str) -> str:
    if _PLAIN_ATTR.fullmatch(value):  # the common case, as quoteattr would quote it
        return f'"{value}"'
    return quoteattr(_NOT_XML.sub("\ufffd", value))


def _clip(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_TITLE_CHARS else line[: MAX_TITLE_CHARS - 1] + "…"


def who(view: dict[str, Any]) -> str:
    return str(view.get("author_name") or view["author"][:SHORT_ID])


def title_of(view: dict[str, Any]) -> str:
    kind = view["kind"]
    if kind == "project":
        return str(view["title"])
    if kind == "comment":
        return f"{who(view)}: {_clip(view['body'])}"
    if kind in ("lab", "profile"):
        return f"{kind.capitalize()}: {view['name']}"
    if kind == "tag":
        return "Tagged " + " ".join("#" + label for label in view["labels"])
    if kind == "retraction":
        return f"Withdrawal of {view['target'][:SHORT_ID]}"
    return f"{kind} {view['id'][:SHORT_ID]}"


def content_of(view: dict[str, Any]) -> str:
    kind = view["kind"]
    if kind == "project":
        parts = [view.get("summary", ""), view.get("body", "")]
        if view.get("needs"):
            parts.append("Needs: " + ", ".join(view["needs"]))
        if view.get("licence"):
            parts.append("Licence: " + view["licence"])
        return "\n\n".join(p for p in parts if p)
    if kind == "comment":
        return str(view["body"])
    if kind == "lab":
        return str(view.get("description", ""))
    if kind == "profile":
        return str(view.get("about", ""))
    return title_of(view)


def entry(view: dict[str, Any], link: str, categories: Sequence[str] = ()) -> str:
    """One <entry> for an object view; `link` is its JSON representation in the API."""
    when = rfc3339(int(view["ts"]))
    # A project's revisions and pledges update its entry (its id stays the project's).
    updated = rfc3339(int(view["updated"])) if view.get("updated") else when
    cats = "".join(f"<category term={_attr(c)}/>" for c in categories)
    rights = f"<rights>{_text(view['licence'])}</rights>" if view.get("licence") else ""
    return (
        f"<entry><id>{urn(view['id'])}</id><title type=\"text\">{_text(title_of(view))}</title>"
        f"<published>{when}</published><updated>{updated}</updated>"
        f"<author><name>{_text(who(view))}</name>"
        f"<uri>urn:percolab:author:{view['author']}</uri></author>"  # hex: nothing to escape
        f"<link rel=\"alternate\" type=\"application/json\" href={_attr(link)}/>{cats}"
        f"<content type=\"text\">{_text(content_of(view))}</content>{rights}</entry>"
    )


def render(feed: Feed) -> bytes:
    subtitle = f"<subtitle>{_text(feed.subtitle)}</subtitle>" if feed.subtitle else ""
    head = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<id>{_text(feed.id)}</id><title type=\"text\">{_text(feed.title)}</title>{subtitle}"
        f"<updated>{rfc3339(feed.updated_ms)}</updated>"
        f"<author><name>{_text(feed.author)}</name></author>"
        f"<link rel=\"self\" type=\"application/atom+xml\" href={_attr(feed.self_url)}/>"
        f"<link rel=\"alternate\" type=\"application/json\" href={_attr(feed.alternate_url)}/>"
        f"<generator>{GENERATOR}</generator>"
    )
    return (head + "".join(feed.entries) + "</feed>\n").encode()
