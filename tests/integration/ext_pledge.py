"""A test extension: the kind "ext.pledge" (a member offers something to a project).

Loaded by the outer nodes of tests/integration/test_mixed_release.py through their data
directory's config.toml (`[node] extensions = ["tests.integration.ext_pledge"]`), and by the
test process itself so that it can sign pledges with `protocols.kinds.create`. The middle node
does not load it: to that release the kind is unknown, its objects opaque.

The kind is not called plain "pledge": the conformance corpus (tests/conformance) uses that
name for its *unknown* kind, and a kind registered in the pytest process stays registered for
the tests that run after this one.
"""

from __future__ import annotations

from protocols.fields import Choice, ObjectRef, Text
from protocols.kinds import KindSpec, register_kind

PLEDGE_KIND = "ext.pledge"
OFFERS = ("hours", "tools", "materials", "space")
MAX_NOTE_CHARS = 500

PLEDGE = register_kind(
    KindSpec(
        PLEDGE_KIND,
        {
            "lab": ObjectRef(nullable=True),
            "target": ObjectRef(),
            "offer": Choice(OFFERS),
            "note": Text(MAX_NOTE_CHARS, multiline=True),
        },
        lab_field="lab",
        target_field="target",
        refs=("target",),
    )
)
