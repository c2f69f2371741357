"""Atom feed handlers (GET /feeds/...): a lab's projects, objects with a tag, a project's
comments and an author's objects, newest FEED_ENTRIES first. Links point back to the API."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from node.http import atom, data
from node.http.common import ATOM, Ctx, HttpError
from node.http.server import Response
from protocols.fields import normalize_label

# Entries per feed (newest first); older objects stay reachable through the paged API.
FEED_ENTRIES = 50
_COMMENTS = frozenset(["comment"])


def _link(ctx: Ctx, view: dict[str, Any]) -> str:
    if view["kind"] == "project":
        return f"{ctx.base_url}/api/v1/projects/{view['id']}"
    return f"{ctx.base_url}/api/v1/objects/{view['id']}"


def _feed(ctx: Ctx, feed: atom.Feed, items: list[dict[str, Any]]) -> Response:
    feed.entries = [atom.entry(v, _link(ctx, v), v.get("tags", ())) for v in items]
    feed.updated_ms = max([feed.updated_ms, *(int(v.get("updated") or v["ts"]) for v in items)])
    return Response(200, atom.render(feed), ATOM)


def _lab(ctx: Ctx) -> Response:
    lab, items = data.lab_feed(ctx.node.service, ctx.params["lab"], FEED_ENTRIES)
    feed = atom.Feed(
        id=atom.urn(f"feed:lab:{lab['id']}"),
        title=f"{lab['name']}: projects",
        subtitle=lab.get("description", ""),
        author=atom.who(lab),
        self_url=f"{ctx.base_url}/feeds/lab/{lab['id']}.atom",
        alternate_url=f"{ctx.base_url}/api/v1/labs/{lab['id']}/projects",
        updated_ms=int(lab["ts"]),
    )  # fmt: skip
    return _feed(ctx, feed, items)


def _tag(ctx: Ctx) -> Response:
    label = normalize_label(ctx.params["label"])
    if not label:
        raise HttpError(400, "bad_request", "empty tag label")
    page = data.by_label(ctx.node.service, label, FEED_ENTRIES, None, with_raw=False)
    feed = atom.Feed(
        id=atom.urn(f"feed:tag:{label}"),
        title=f"#{label}",
        self_url=f"{ctx.base_url}/feeds/tag/{quote(label, safe='')}.atom",
        alternate_url=f"{ctx.base_url}/api/v1/tags/{quote(label, safe='')}/objects",
        updated_ms=0,
    )
    return _feed(ctx, feed, page["items"])


def _project(ctx: Ctx) -> Response:
    project = data.object_view(ctx.node.service, ctx.params["id"])
    if project["kind"] != "project":
        raise HttpError(404, "not_found", f"{project['id']} is a {project['kind']}, not a project")
    pid = bytes.fromhex(project["id"])
    page = data.about(ctx.node.service, pid, FEED_ENTRIES, None, _COMMENTS, with_raw=False)
    feed = atom.Feed(
        id=atom.urn(f"feed:project:{project['id']}"),
        title=f"Comments on {project['title']}",
        subtitle=project.get("summary", ""),
        author=atom.who(project),
        self_url=f"{ctx.base_url}/feeds/project/{project['id']}.atom",
        alternate_url=f"{ctx.base_url}/api/v1/projects/{project['id']}",
        updated_ms=int(project.get("updated") or project["ts"]),  # revised, pledged on
    )  # fmt: skip
    return _feed(ctx, feed, page["items"])


def _author(ctx: Ctx) -> Response:
    hex_author = ctx.params["author"]
    author = bytes.fromhex(hex_author)
    page = data.by_author(ctx.node.service, author, FEED_ENTRIES, None, with_raw=False)
    name = data.profile_name(ctx.node.service, author) or hex_author[: atom.SHORT_ID]
    feed = atom.Feed(
        id=atom.urn(f"feed:author:{hex_author}"),
        title=f"{name} on Percolab",
        author=name,
        self_url=f"{ctx.base_url}/feeds/author/{hex_author}.atom",
        alternate_url=f"{ctx.base_url}/api/v1/authors/{hex_author}/objects",
        updated_ms=0,
    )
    return _feed(ctx, feed, page["items"])


async def lab_feed(ctx: Ctx) -> Response:
    return await ctx.render(_lab, ctx)


async def tag_feed(ctx: Ctx) -> Response:
    return await ctx.render(_tag, ctx)


async def project_feed(ctx: Ctx) -> Response:
    return await ctx.render(_project, ctx)


async def author_feed(ctx: Ctx) -> Response:
    return await ctx.render(_author, ctx)
