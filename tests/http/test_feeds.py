"""Atom feeds: parsed by feedparser, stable ids, new comments appear, conditional GET."""

from __future__ import annotations

import re
from typing import Any
from xml.etree import ElementTree

import feedparser

from tests.http.conftest import Lab

V1 = "/api/v1"
ATOM_NS = "{http://www.w3.org/2005/Atom}"


def feed(lab: Lab, path: str) -> Any:
    r = lab.client.get(path)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/atom+xml")
    root = ElementTree.fromstring(r.content)  # well-formed XML
    assert root.tag == f"{ATOM_NS}feed"
    for el in ("id", "title", "updated"):  # RFC 4287 4.1.1: required feed elements
        assert root.find(f"{ATOM_NS}{el}") is not None
    for entry in root.iter(f"{ATOM_NS}entry"):
        for el in ("id", "title", "updated", "author"):
            assert entry.find(f"{ATOM_NS}{el}") is not None
    parsed = feedparser.parse(r.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


def api_link(entry: Any) -> str:
    (link,) = [x for x in entry.links if x.rel == "alternate"]
    assert link.type == "application/json"
    return str(link.href)


def post(lab: Lab, path: str, body: dict[str, Any]) -> str:
    r = lab.client.post(f"{V1}/{path}", json=body, headers=lab.node.auth)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_lab_feed(lab: Lab) -> None:
    pid = post(lab, "projects", {"lab": lab.lab_id, "title": "Feed <&> project",
                                 "summary": "escaped & fine", "tags": ["feeds"]})  # fmt: skip
    parsed = feed(lab, f"/feeds/lab/{lab.lab_id}.atom")
    assert parsed.feed.title == "Fab Lab: projects"
    first = parsed.entries[0]
    assert first.id == f"urn:percolab:{pid}" and first.title == "Feed <&> project"
    assert first.author == "Ada" and first.summary == "escaped & fine"
    assert api_link(first) == f"{lab.node.base}{V1}/projects/{pid}"
    assert [t.term for t in first.tags] == ["feeds"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first.updated)
    by_name = feed(lab, "/feeds/lab/Fab Lab.atom")
    assert [e.id for e in by_name.entries] == [e.id for e in parsed.entries]
    assert lab.client.get("/feeds/lab/Nowhere.atom").status_code == 404


def test_tag_and_author_feeds(lab: Lab) -> None:
    pid = post(lab, "projects", {"lab": lab.lab_id, "title": "Tagged for feeds"})
    post(lab, "tags", {"target": pid, "labels": ["feed-tag"]})
    parsed = feed(lab, "/feeds/tag/feed-tag.atom")
    assert [e.id for e in parsed.entries] == [f"urn:percolab:{pid}"]
    assert feed(lab, "/feeds/tag/unused-tag.atom").entries == []
    by_author = feed(lab, f"/feeds/author/{lab.author}.atom")
    assert by_author.feed.title == "Ada on Percolab"
    ids = [e.id for e in by_author.entries]
    assert f"urn:percolab:{pid}" in ids and f"urn:percolab:{lab.lab_id}" in ids
    assert lab.client.get("/feeds/author/xyz.atom").status_code == 400


def test_new_comment_appears_in_project_feed_and_etag(lab: Lab) -> None:
    pid = post(lab, "projects", {"lab": lab.lab_id, "title": "Commented"})
    path = f"/feeds/project/{pid}.atom"
    assert feed(lab, path).entries == []
    first = lab.client.get(path)
    etag = first.headers["etag"]
    again = lab.client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert lab.client.get(path, headers={"If-None-Match": '"other", ' + etag}).status_code == 304
    assert lab.client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    cid = post(lab, "comments", {"target": pid, "body": "A new comment in the feed"})
    changed = lab.client.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    parsed = feed(lab, path)
    (entry,) = parsed.entries
    assert entry.id == f"urn:percolab:{cid}" and entry.title.startswith("Ada: A new comment")
    assert api_link(entry) == f"{lab.node.base}{V1}/objects/{cid}"
    stable = feed(lab, path)
    assert stable.entries[0].id == entry.id and stable.feed.updated == parsed.feed.updated
    # The JSON API answers conditional GETs too.
    labs = lab.client.get(f"{V1}/labs")
    r = lab.client.get(f"{V1}/labs", headers={"If-None-Match": labs.headers["etag"]})
    assert r.status_code == 304
    assert lab.client.get(f"/feeds/project/{lab.lab_id}.atom").status_code == 404
