"""FAKE node for TUI development: an asyncio Unix-socket server speaking protocols/rpc.py.

It keeps canned, in-memory data and implements the methods of docs/rpc.md loosely. Tests that
use it are named ``test_fake_*``; the real-node tests (``test_real_*``) are the ones that count.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
from pathlib import Path
from typing import Any

from protocols.rpc import FrameDecoder, Push, Request, Response, encode

_counter = itertools.count(1)
BASE_TS = 1_700_000_000_000


def _id(seed: str) -> str:
    return hashlib.sha256(f"{seed}-{next(_counter)}".encode()).hexdigest()


class FakeError(Exception):
    """An error answer with a code of the real node's (e.g. ``not_author``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


REVISABLE = ("title", "summary", "body", "stage", "needs", "licence", "coauthors")
PLEDGE_LABELS = {"use": "I'd use it", "build": "I can build it", "lend": "I can lend",
                 "give": "I can give", "fund": "I can fund", "teach": "I can teach",
                 "host": "I can host"}


class FakeNode:
    def __init__(self, socket_path: Path, *, identity: bool = True) -> None:
        self.socket_path = socket_path
        self.server: asyncio.AbstractServer | None = None
        self.subscribers: set[asyncio.StreamWriter] = set()
        self.writers: set[asyncio.StreamWriter] = set()
        self.ts = BASE_TS
        self.me: dict[str, Any] | None = None
        self.labs: dict[str, dict[str, Any]] = {}
        self.projects: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, dict[str, Any]] = {}
        self.tags: list[dict[str, Any]] = []
        self.revisions: dict[str, list[dict[str, Any]]] = {}  # project id -> history entries
        self.pledges: dict[str, dict[str, Any]] = {}
        self.names: dict[str, str] = {"b" * 64: "Bob"}
        if identity:
            self.me = {"author": "a" * 64, "name": "Alice", "about": "", "fingerprint": "ab:cd"}

    def tick(self) -> int:
        self.ts += 60_000
        return self.ts

    # -- server ---------------------------------------------------------------------------

    async def start(self) -> None:
        self.server = await asyncio.start_unix_server(self._serve, str(self.socket_path))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for writer in list(self.writers):
                writer.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()
            self.server = None
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
        self.subscribers.clear()
        self.writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        self.writers.add(writer)
        try:
            while data := await reader.read(65536):
                for msg in decoder.feed(data):
                    assert isinstance(msg, Request)
                    try:
                        result = self.handle(msg.method, msg.params, writer)
                        out = Response(msg.id, result)
                    except KeyError as exc:
                        out = Response(msg.id, None, "not_found", str(exc))
                    except ValueError as exc:
                        out = Response(msg.id, None, "bad_request", str(exc))
                    except FakeError as exc:
                        out = Response(msg.id, None, exc.code, str(exc))
                    writer.write(encode(out))
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.subscribers.discard(writer)
            self.writers.discard(writer)

    def push(self, view: dict[str, Any]) -> None:
        for writer in list(self.subscribers):
            writer.write(encode(Push("object", view)))

    # -- data -----------------------------------------------------------------------------

    def _author(self) -> tuple[str, str]:
        if self.me is None:
            raise ValueError("no identity")
        return self.me["author"], self.me["name"]

    def add_lab(self, name: str, description: str = "", place: str = "",
                followed: bool = True, author: tuple[str, str] = ("b" * 64, "Bob")) -> str:
        lid = _id(name)
        self.labs[lid] = {"id": lid, "kind": "lab", "author": author[0], "author_name": author[1],
                          "ts": self.tick(), "name": name, "description": description,
                          "place": place, "followed": followed}
        return lid

    def add_project(self, lab: str, title: str, *, body: str = "", summary: str = "",
                    stage: str = "idea", needs: list[str] | None = None,
                    tags: list[str] | None = None,
                    author: tuple[str, str] = ("b" * 64, "Bob")) -> dict[str, Any]:
        lab_id = self._lab_id(lab)
        pid, ts = _id(title), self.tick()
        project = {"id": pid, "kind": "project", "author": author[0], "author_name": author[1],
                   "ts": ts, "lab": lab_id, "lab_name": self.labs[lab_id]["name"],
                   "title": title, "summary": summary, "body": body, "stage": stage,
                   "needs": needs or [], "tags": tags or [], "comments": 0, "activity": ts,
                   "member": author[0], "attribution": "member", "licence": "",
                   "licence_known": False, "coauthors": [], "derives": [],
                   "revised_ts": None, "revisions": 0, "pledges": 0}
        self.projects[pid] = project
        return project

    def add_comment(self, target: str, body: str, parent: str | None = None,
                    author: tuple[str, str] = ("b" * 64, "Bob")) -> dict[str, Any]:
        project = self.projects[self._resolve(target, self.projects)]
        cid, ts = _id(body), self.tick()
        comment = {"id": cid, "kind": "comment", "author": author[0], "author_name": author[1],
                   "ts": ts, "target": project["id"], "parent": parent, "body": body}
        self.comments[cid] = comment
        project["comments"] += 1
        project["activity"] = ts
        return comment

    def _resolve(self, ref: str, table: dict[str, Any]) -> str:
        hits = [k for k in table if k.startswith(ref)]
        if len(hits) != 1:
            raise KeyError(ref)
        return hits[0]

    def _lab_id(self, ref: str) -> str:
        for lid, lab in self.labs.items():
            if lab["name"] == ref:
                return lid
        return self._resolve(ref, self.labs)

    def _lab_view(self, lab: dict[str, Any]) -> dict[str, Any]:
        count = sum(1 for p in self.projects.values() if p["lab"] == lab["id"])
        return {**lab, "projects": count}

    def _thread(self, target: str, parent: str | None) -> list[dict[str, Any]]:
        out = []
        for c in sorted(self.comments.values(), key=lambda c: c["ts"]):
            if c["target"] == target and c["parent"] == parent:
                out.append({**c, "replies": self._thread(target, c["id"])})
        return out

    def handle(self, method: str, p: dict[str, Any], writer: asyncio.StreamWriter) -> Any:
        if method == "subscribe":
            self.subscribers.add(writer)
            return True
        if method == "whoami":
            return self.me
        if method in ("init", "profile_set"):
            if not p.get("name"):
                raise ValueError("name required")
            self.me = {"author": "a" * 64, "name": p["name"], "about": p.get("about", ""),
                       "fingerprint": "ab:cd"}
            return self.me if method == "init" else _id("profile")
        if method == "status":
            addr = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWFake"
            return {"peer_id": "12D3KooWFake", "addrs": [addr],
                    "peers": 0, "topics": [], "counts": {"project": len(self.projects)},
                    "objects": len(self.projects), "digest": "00" * 32,
                    "sync": {"active": False, "peers": 0, "missing": 0, "fetched": 0}}
        if method == "peers":
            return []
        if method == "lab_list":
            labs = [self._lab_view(lab) for lab in self.labs.values()]
            return sorted(labs, key=lambda lab: (not lab["followed"], lab["name"]))
        if method == "lab_create":
            lid = self.add_lab(p["name"], p.get("description", ""), p.get("place", ""),
                               author=self._author())
            self.push(self._lab_view(self.labs[lid]))
            return lid
        if method in ("lab_follow", "lab_unfollow"):
            self.labs[self._lab_id(p["lab"])]["followed"] = method == "lab_follow"
            return True
        if method == "projects":
            return self._projects(p)
        if method in ("project", "show"):
            pid = self._resolve(p["id"], self.projects)
            tags = [t for t in self.tags if t["target"] == pid]
            comments = self._thread(pid, None)
            pledges = self._pledges_of(pid)
            needs = [{"need": n, "pledges": [x for x in pledges if x.get("need") == n]}
                     for n in self.projects[pid]["needs"]]
            return {"kind": "project", "project": self.projects[pid], "tags": tags,
                    "comments": comments, "pledges": pledges, "needs": needs,
                    "lineage": self._lineage(pid)}
        if method in ("edit", "history", "pledge", "pledges", "fork", "lineage", "retract"):
            return getattr(self, f"_m_{method}")(p)
        if method == "post":
            project = self.add_project(p["lab"], p["title"], body=p.get("body", ""),
                                       summary=p.get("summary", ""), stage=p.get("stage", ""),
                                       needs=p.get("needs"), tags=p.get("tags"),
                                       author=self._author())
            self.push(project)
            return project["id"]
        if method == "comment":
            comment = self.add_comment(p["target"], p["body"], p.get("parent"), self._author())
            self.push(comment)
            return comment["id"]
        if method == "tag":
            return self.add_tag(p["target"], p["labels"], self._author())["id"]
        if method == "tags":
            counts: dict[str, int] = {}
            for t in self.tags:
                for label in t["labels"]:
                    counts[label] = counts.get(label, 0) + 1
            for project in self.projects.values():
                for label in project["tags"]:
                    counts[label] = counts.get(label, 0) + 1
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            return [{"label": k, "count": n} for k, n in ranked[: p.get("limit", 100)]]
        if method == "search":
            q = p["query"].lower()
            return [x for x in self.projects.values()
                    if q in (x["title"] + " " + x["summary"] + " " + x["body"]).lower()]
        if method == "connect":
            return True
        raise ValueError(f"unknown method {method}")

    def add_tag(self, target: str, labels: list[str],
                author: tuple[str, str] = ("b" * 64, "Bob")) -> dict[str, Any]:
        pid = self._resolve(target, self.projects)
        tag = {"id": _id("tag"), "kind": "tag", "author": author[0], "author_name": author[1],
               "ts": self.tick(), "target": pid, "labels": labels}
        self.tags.append(tag)
        project = self.projects[pid]
        project["tags"] = sorted(set(project["tags"]) | set(labels))
        self.push(tag)
        return tag

    def _projects(self, p: dict[str, Any]) -> dict[str, Any]:
        items = list(self.projects.values())
        if p.get("lab"):
            lid = self._lab_id(p["lab"])
            items = [x for x in items if x["lab"] == lid]
        if p.get("tag"):
            items = [x for x in items if p["tag"] in x["tags"]]
        key = "activity" if p.get("order") == "active" else "ts"
        items.sort(key=lambda x: (x[key], x["id"]), reverse=True)
        start = int(p.get("cursor") or 0)
        limit = int(p.get("limit", 50))
        page = items[start : start + limit]
        nxt = str(start + limit) if start + limit < len(items) else None
        return {"items": page, "next": nxt, "total": len(items)}

    # -- living projects (docs/rpc.md: edit, history, pledge, pledges, fork, lineage) -------

    def _edit(self, pid: str, member: str, changes: dict[str, Any], note: str = "") -> str:
        project = self.projects[pid]
        authors = {project["member"], *(c["member"] for c in project["coauthors"])}
        if member not in authors:
            raise FakeError("not_author", "this member is not an author of the project now")
        diff: dict[str, dict[str, Any]] = {}
        for name, new in changes.items():
            if name == "coauthors":
                new = [{"member": self._member(m), "name": self.names.get(self._member(m))}
                       for m in new]
                old_ids = [c["member"] for c in project["coauthors"]]
                if [c["member"] for c in new] != old_ids:
                    diff[name] = {"old": old_ids, "new": [c["member"] for c in new]}
            elif project.get(name) != new:
                diff[name] = {"old": project.get(name), "new": new}
            project[name] = new
        if not diff:
            raise FakeError("no_change", "nothing changes")
        history = self.revisions.setdefault(pid, [])
        rid, ts = _id("revision"), self.tick()
        heads = [history[-1]["id"]] if history else [pid]
        history.append({"index": len(history), "id": rid, "ts": ts, "member": member,
                        "author_name": self.names.get(member), "supersedes": heads,
                        "changes": diff, "note": note, "effect": "applied"})
        project["revisions"] = len(history)
        project["revised_ts"] = ts
        self.push({"id": rid, "kind": "revision", "target": pid, "ts": ts, "author": member,
                   "member": member})
        return rid

    def _member(self, ref: str) -> str:
        for member, name in self.names.items():
            if ref in (member, name):
                return member
        raise FakeError("not_found", f"no member {ref}")

    def _m_edit(self, p: dict[str, Any]) -> str:
        pid = self._resolve(p["id"], self.projects)
        changes = {k: p[k] for k in REVISABLE if k in p}
        return self._edit(pid, self._author()[0], changes, p.get("note", ""))

    def _m_history(self, p: dict[str, Any]) -> dict[str, Any]:
        pid = self._resolve(p["id"], self.projects)
        entries = self.revisions.get(pid, [])
        end = len(entries) if p.get("before") is None else int(p["before"])
        start = max(0, end - int(p.get("limit", 100)))
        return {"project": pid, "heads": [entries[-1]["id"] if entries else pid],
                "total": len(entries), "entries": entries[start:end],
                "next": start if start > 0 else None}

    def add_pledge(self, target: str, kind: str, need: str | None = None, note: str = "",
                   author: tuple[str, str] = ("b" * 64, "Bob")) -> dict[str, Any]:
        pid = self._resolve(target, self.projects)
        pledge: dict[str, Any] = {
            "id": _id("pledge"), "kind": "pledge", "author": author[0],
            "author_name": author[1], "member": author[0], "attribution": "member",
            "ts": self.tick(), "target": pid, "type": kind,
            "type_label": PLEDGE_LABELS.get(kind, kind), "need": need, "note": note,
        }
        self.pledges[pledge["id"]] = pledge
        self.projects[pid]["pledges"] = len(self._pledges_of(pid))
        self.push(pledge)
        return pledge

    def _pledges_of(self, pid: str) -> list[dict[str, Any]]:
        return [x for x in self.pledges.values() if x["target"] == pid]

    def _m_pledge(self, p: dict[str, Any]) -> str:
        if not p.get("type"):
            raise ValueError("a pledge needs a type")
        return str(self.add_pledge(p["id"], p["type"], p.get("need"), p.get("note", ""),
                                   self._author())["id"])

    def _m_pledges(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        if p.get("id"):
            return self._pledges_of(self._resolve(p["id"], self.projects))
        return list(self.pledges.values())

    def _m_retract(self, p: dict[str, Any]) -> str:
        pledge = self.pledges.pop(self._resolve(p["id"], self.pledges))
        self.projects[pledge["target"]]["pledges"] = len(self._pledges_of(pledge["target"]))
        rid = _id("retraction")
        self.push({"id": rid, "kind": "retraction", "target": pledge["id"], "ts": self.tick()})
        return rid

    def _m_fork(self, p: dict[str, Any]) -> str:
        origin = self.projects[self._resolve(p["id"], self.projects)]
        fork = self.add_project(p["lab"], p.get("title") or origin["title"],
                                body=origin["body"], summary=origin["summary"],
                                stage=origin["stage"], needs=list(origin["needs"]),
                                author=self._author())
        fork["derives"] = [{"project": origin["id"], "how": p.get("how", "fork"),
                            "note": p.get("note", ""), "title": origin["title"],
                            "lab_name": origin["lab_name"]}]
        self.push(fork)
        return str(fork["id"])

    def _lineage(self, pid: str) -> dict[str, list[dict[str, Any]]]:
        project = self.projects[pid]
        descendants = [{"project": x["id"], "how": d["how"], "note": d["note"],
                        "title": x["title"], "lab_name": x["lab_name"], "depth": 1}
                       for x in self.projects.values() for d in x["derives"]
                       if d["project"] == pid]
        return {"ancestors": list(project["derives"]), "descendants": descendants}

    def _m_lineage(self, p: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        return self._lineage(self._resolve(p["id"], self.projects))
