"""A test "extension" that turns a node into the release before living projects (issue 23):
it unregisters the kinds `revision` and `pledge` and puts back version 2 of `project` (no
licence, co-authors or derives). Loaded (only) by the middle node of
tests/integration/test_mixed_release.py through its config.toml, before its store opens: to
that node revisions and pledges are opaque (stored, relayed, not shown) and a project's new
fields are kept unread, exactly as on a node of the previous release.

It edits the kind registry in place (no API does that: a release never forgets a kind); the
test process itself never imports it.
"""

from __future__ import annotations

from protocols import kinds
from protocols.fields import Choice, ListOf, ObjectRef, Text
from protocols.limits import (
    MAX_BODY_CHARS,
    MAX_NEED_CHARS,
    MAX_NEEDS,
    MAX_SUMMARY_CHARS,
    MAX_TITLE_CHARS,
)

PROJECT_V2 = kinds.KindSpec(
    "project",
    {
        "lab": ObjectRef(),
        "title": Text(MAX_TITLE_CHARS, allow_empty=False),
        "summary": Text(MAX_SUMMARY_CHARS, multiline=True),
        "body": Text(MAX_BODY_CHARS, multiline=True),
        "stage": Choice(kinds.STAGES),
        "needs": ListOf(Text(MAX_NEED_CHARS, allow_empty=False), MAX_NEEDS, unique=True),
        "cert": kinds.CERT,
    },
    lab_field="lab",
    refs=("lab", "cert"),
    version=2,
)

for _name in ("revision", "pledge", "decision"):
    kinds._REGISTRY.pop(_name, None)
kinds._REGISTRY["project"] = PROJECT_V2
