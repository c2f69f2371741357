"""Read API against a real node: every GET endpoint, paging, raw objects, errors."""

from __future__ import annotations

import base64
import socket
from typing import Any

from protocols.objects import decode, object_id, verify
from tests.http.conftest import Lab

V1 = "/api/v1"


def post_project(lab: Lab, title: str, **extra: Any) -> str:
    body = {"lab": lab.lab_id, "title": title} | extra
    r = lab.client.post(f"{V1}/projects", json=body, headers=lab.node.auth)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def check_raw(view: dict[str, Any]) -> None:
    raw = base64.b64decode(view["raw"])
    obj = decode(raw)
    assert object_id(raw).hex() == view["id"]
    assert verify(obj) and obj.author.hex() == view["author"] and obj.kind == view["kind"]


def test_labs_list_and_one_lab(lab: Lab) -> None:
    r = lab.client.get(f"{V1}/labs")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    (item,) = r.json()["items"]
    assert item["id"] == lab.lab_id and item["name"] == "Fab Lab" and item["followed"]
    check_raw(item)
    for ref in (lab.lab_id, lab.lab_id[:10], "Fab Lab", "fab lab"):
        one = lab.client.get(f"{V1}/labs/{ref}")
        assert one.status_code == 200 and one.json()["id"] == lab.lab_id
    missing = lab.client.get(f"{V1}/labs/No Such Lab")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_lab_projects_paged_newest_first(lab: Lab) -> None:
    ids = [post_project(lab, f"Paging test {i}") for i in range(7)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        r = lab.client.get(f"{V1}/labs/{lab.lab_id}/projects", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 3 and page["total"] >= 7
        for item in page["items"]:
            check_raw(item)
        seen += [p["id"] for p in page["items"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) and set(ids) <= set(seen)
    assert pages >= 3
    newest = [i for i in seen if i in ids]
    assert newest == list(reversed(ids))  # newest first
    active = lab.client.get(f"{V1}/labs/{lab.lab_id}/projects", params={"order": "active"})
    assert active.status_code == 200 and active.json()["items"]


def test_project_with_tags_and_threaded_comments(lab: Lab) -> None:
    pid = post_project(lab, "Threads", summary="about threads", tags=["threads"])
    auth = lab.node.auth
    c1 = lab.client.post(f"{V1}/comments", json={"target": pid, "body": "first"}, headers=auth)
    assert c1.status_code == 201, c1.text
    reply = {"target": pid, "parent": c1.json()["id"], "body": "a reply"}
    c2 = lab.client.post(f"{V1}/comments", json=reply, headers=auth)
    assert c2.status_code == 201, c2.text
    r = lab.client.get(f"{V1}/projects/{pid[:12]}")
    assert r.status_code == 200
    thread = r.json()
    assert thread["project"]["id"] == pid and thread["project"]["tags"] == ["threads"]
    assert [t["labels"] for t in thread["tags"]] == [["threads"]]
    (root,) = thread["comments"]
    assert root["body"] == "first" and root["replies"][0]["body"] == "a reply"
    for view in (thread["project"], thread["tags"][0], root, root["replies"][0]):
        check_raw(view)
    obj = lab.client.get(f"{V1}/objects/{c2.json()['id']}")
    assert obj.status_code == 200 and obj.json()["parent"] == c1.json()["id"]


def test_objects_by_tag_and_author(lab: Lab) -> None:
    pid = post_project(lab, "Tagged thing", tags=["by-tag-test"])
    r = lab.client.get(f"{V1}/tags/by-tag-test/objects")
    assert r.status_code == 200 and [o["id"] for o in r.json()["items"]] == [pid]
    check_raw(r.json()["items"][0])
    r = lab.client.get(f"{V1}/projects", params={"tag": "By-Tag-Test"})
    assert [p["id"] for p in r.json()["items"]] == [pid]
    tags = lab.client.get(f"{V1}/tags").json()["items"]
    assert {"label": "by-tag-test", "count": 1} in tags
    r = lab.client.get(f"{V1}/authors/{lab.author}/objects", params={"limit": 200})
    kinds = {o["kind"] for o in r.json()["items"]}
    assert r.status_code == 200 and {"profile", "lab", "project", "tag"} <= kinds
    r = lab.client.get(f"{V1}/authors/{lab.author}/objects", params={"kind": "lab"})
    assert [o["id"] for o in r.json()["items"]] == [lab.lab_id]
    r = lab.client.get(f"{V1}/projects", params={"author": lab.author, "limit": 2})
    assert len(r.json()["items"]) == 2 and r.json()["next"]
    nobody = "ab" * 32
    assert lab.client.get(f"{V1}/authors/{nobody}/objects").json() == {"items": [], "next": None}


def test_search(lab: Lab) -> None:
    pid = post_project(lab, "Bicycle generator", summary="pedal power for the workshop")
    r = lab.client.get(f"{V1}/search", params={"q": "pedal bicy"})
    assert r.status_code == 200 and [p["id"] for p in r.json()["items"]] == [pid]
    check_raw(r.json()["items"][0])
    assert lab.client.get(f"{V1}/search").status_code == 400
    assert lab.client.get(f"{V1}/search", params={"q": "x" * 101}).status_code == 400


def test_status_and_peers(lab: Lab) -> None:
    st = lab.client.get(f"{V1}/status").json()
    assert st["running"] and st["http"] == lab.node.base.removeprefix("http://")
    assert st["counts"]["lab"] == 1 and st["peer_id"]
    assert lab.client.get(f"{V1}/peers").json() == {"items": []}


def test_client_errors_are_json(lab: Lab) -> None:
    cases = {
        f"{V1}/labs/{lab.lab_id}/projects?limit=0": 400,
        f"{V1}/labs/{lab.lab_id}/projects?limit=abc": 400,
        f"{V1}/labs/{lab.lab_id}/projects?cursor=zz": 400,
        f"{V1}/labs/{lab.lab_id}/projects?order=oldest": 400,
        f"{V1}/projects/nothex!!": 400,
        f"{V1}/projects/{'0' * 64}": 404,
        f"{V1}/projects/0123": 400,
        f"{V1}/nothing": 404,
        "/": 404,
    }
    for path, status in cases.items():
        r = lab.client.get(path)
        assert r.status_code == status, (path, r.text)
        assert set(r.json()) == {"error", "message"}
    r = lab.client.delete(f"{V1}/labs")
    assert r.status_code == 405 and r.headers["allow"] == "GET"
    big = lab.client.post(f"{V1}/objects", content=b"x" * (300 * 1024), headers=lab.node.auth)
    assert big.status_code == 413 and big.json()["error"] == "too_large"
    bad = lab.client.post(f"{V1}/comments", content=b"{nope", headers=lab.node.auth)
    assert bad.status_code == 400
    deep = lab.client.post(f"{V1}/comments", content=b"[" * 100_000, headers=lab.node.auth)
    assert deep.status_code == 400
    text = lab.client.post(f"{V1}/comments", content=b"hi",
                           headers=lab.node.auth | {"content-type": "text/plain"})  # fmt: skip
    assert text.status_code == 415


def test_head_keepalive_and_broken_requests(lab: Lab) -> None:
    head = lab.client.head(f"{V1}/labs")
    assert head.status_code == 200 and head.content == b"" and head.headers["etag"]
    host, port = lab.node.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        req = f"GET {V1}/labs HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        s.sendall(req + req)  # two requests, one connection
        data = b""
        while data.count(b"HTTP/1.1 200") < 2:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"GARBAGE\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 400")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 431")
