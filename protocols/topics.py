"""Gossip topic names (docs/protocol.md, "Topics")."""

from __future__ import annotations

from protocols import errors
from protocols.kinds import PUBLIC_SCOPE, scope_of
from protocols.objects import decode

PUBLIC_TOPIC = "percolab/public/1"
# The verdict on a gossip message whose object belongs to another topic (a strike).
WRONG_TOPIC = "wrong_topic"
_LAB_PREFIX = "percolab/lab/"
_LAB_SUFFIX = "/1"


def lab_topic(lab: bytes) -> str:
    return f"{_LAB_PREFIX}{lab.hex()}{_LAB_SUFFIX}"


def topic_for_scope(scope: bytes) -> str:
    """Profiles and labs (the public scope) go on the public topic; the rest on their lab's."""
    return PUBLIC_TOPIC if scope == PUBLIC_SCOPE else lab_topic(scope)


def wrong_topic(topic: str, raw: bytes) -> str | None:
    """Why an object may not travel on `topic` (None if it may): an object goes on the topic
    of its scope only (docs/protocol.md §5). Bytes that do not decode are ingest's to judge."""
    try:
        obj = decode(raw)
    except errors.ObjectError:
        return None
    want = topic_for_scope(scope_of(obj.body))
    return None if want == topic else f"object of topic {want} sent on {topic}"


def lab_of_topic(topic: str) -> bytes | None:
    if topic.startswith(_LAB_PREFIX) and topic.endswith(_LAB_SUFFIX):
        try:
            lab = bytes.fromhex(topic[len(_LAB_PREFIX) : -len(_LAB_SUFFIX)])
        except ValueError:
            return None
        return lab if len(lab) == 32 else None
    return None
