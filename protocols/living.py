"""Living projects (issue 23, docs/protocol.md §3.3): the project's revisable fields, and the
kinds `revision` and `pledge`.

This module declares fields and vocabularies; protocols/kinds.py registers the kinds (it
imports this module, never the reverse: no import circle). The view (which revisions take
effect, the visible project) is protocols/project_history.py.

- project, schema version 3: optional `licence`, `coauthors` and `derives` beside the fields
  of version 2; every field of `PROJECT_FIELDS` is *revisable*.
- `revision`: a co-author changes fields of a project (`set`), naming the heads it saw
  (`supersedes`): the history of a project is a DAG every node replays the same way.
- `pledge`: anyone offers something to a project ("I can build it"), optionally answering one
  of its needs. Withdrawn with an ordinary retraction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from protocols import identity
from protocols.fields import (
    Choice,
    Field,
    Licence,
    ListOf,
    ObjectRef,
    Record,
    Text,
    Token,
)
from protocols.limits import (
    MAX_BODY_CHARS,
    MAX_COAUTHORS,
    MAX_DERIVE_NOTE_CHARS,
    MAX_DERIVES,
    MAX_LICENCE_CHARS,
    MAX_NEED_CHARS,
    MAX_NEEDS,
    MAX_PLEDGE_NOTE_CHARS,
    MAX_REVISION_NOTE_CHARS,
    MAX_SET_FIELDS,
    MAX_SUMMARY_CHARS,
    MAX_SUPERSEDES,
    MAX_TITLE_CHARS,
)

STAGES = ("idea", "design", "prototype", "testing", "running", "done", "paused")
REVISION_KIND = "revision"
PLEDGE_KIND = "pledge"

# How a project derives from another (`derives[].how`). Any other token `[a-z]{1,16}` is valid
# and shown as itself: a new relation must not make older nodes hide projects.
DERIVE_HOWS: dict[str, str] = {
    "fork": "forked from",
    "remix": "remixes",
    "built": "built the design of",
    "inspired": "inspired by",
}
# What a pledge offers (`type`); an unknown type is valid and shown as itself.
PLEDGE_TYPES: dict[str, str] = {
    "use": "I'd use it",
    "build": "I can build it",
    "lend": "I can lend",
    "give": "I can give",
    "fund": "I can fund",
    "teach": "I can teach",
    "host": "I can host",
}

DERIVE = Record(
    {
        "project": ObjectRef(),
        "how": Token(),
        "note": Text(MAX_DERIVE_NOTE_CHARS, required=False),
    }
)

# The project's revisable fields with the project's own rules (required as in a project:
# title..needs since version 1, the three others optional since version 3).
PROJECT_FIELDS: dict[str, Field] = {
    "title": Text(MAX_TITLE_CHARS, allow_empty=False),
    "summary": Text(MAX_SUMMARY_CHARS, multiline=True),
    "body": Text(MAX_BODY_CHARS, multiline=True),
    "stage": Choice(STAGES),
    "needs": ListOf(Text(MAX_NEED_CHARS, allow_empty=False), MAX_NEEDS, unique=True),
    "licence": Licence(MAX_LICENCE_CHARS, required=False),
    "coauthors": ListOf(identity.KEY, MAX_COAUTHORS, unique=True, required=False),
    "derives": ListOf(DERIVE, MAX_DERIVES, unique_key="project", required=False),
}
REVISABLE: tuple[str, ...] = tuple(PROJECT_FIELDS)
# The value of a revisable field a project does not state (versions 1 and 2 had no licence,
# co-authors or derives).
DEFAULTS: Mapping[str, Any] = {"licence": "", "coauthors": [], "derives": []}

# A revision's `set`: field name -> new value. The revisable fields are checked with the
# project's rules; other names are kept, unread (a later release may make more fields
# revisable) and have no effect.
SET = Record(
    {n: dataclasses.replace(f, required=False) for n, f in PROJECT_FIELDS.items()},  # type: ignore[type-var]
    min_entries=1,
    max_entries=MAX_SET_FIELDS,
)

REVISION_FIELDS: dict[str, Field] = {
    "lab": ObjectRef(nullable=True),
    "target": ObjectRef(),
    "supersedes": ListOf(ObjectRef(), MAX_SUPERSEDES, min_items=1, unique=True),
    "set": SET,
    "note": Text(MAX_REVISION_NOTE_CHARS, required=False),
    "cert": identity.CERT,
}
PLEDGE_FIELDS: dict[str, Field] = {
    "lab": ObjectRef(nullable=True),
    "target": ObjectRef(),
    "type": Token(),
    "need": Text(MAX_NEED_CHARS, required=False),
    "note": Text(MAX_PLEDGE_NOTE_CHARS, required=False, multiline=True),
    "cert": identity.CERT,
}
# Body fields of kinds that reference other objects, fetched by id when missing (the node's
# reference resolver reads single ids only: a revision's `supersedes` and a project's
# `derives` are lists, so they are not refs; ProjectHistory.unresolved names what a project's
# history still waits for).
REVISION_REFS = ("target", "cert")
PLEDGE_REFS = ("target", "cert")


def project_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """The revisable fields of a (valid) project body, the defaults for those it omits."""
    return {n: body[n] if n in body else DEFAULTS[n] for n in REVISABLE}


def revisable_changes(body: Mapping[str, Any]) -> dict[str, Any]:
    """The known revisable fields of a (valid) revision body's `set`, values as on the wire."""
    changes = body.get("set")
    if not isinstance(changes, dict):
        return {}
    return {n: v for n, v in changes.items() if n in PROJECT_FIELDS}


def pledge_label(kind: str) -> str:
    """How a pledge type is shown: this release's label, or the token itself."""
    return PLEDGE_TYPES.get(kind, kind)


def derive_label(how: str) -> str:
    return DERIVE_HOWS.get(how, how)
