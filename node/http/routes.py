"""The route table (the one list the router serves and OpenAPI describes) and the router."""

from __future__ import annotations

from urllib.parse import unquote

from node.http import feeds, governance, openapi, read, write
from node.http.common import ATOM, Ctx, Param, Route, json_response
from node.http.server import Response
from node.service.queries import MAX_PAGE
from protocols.kinds import registered_kinds

# Lab references are ids, id prefixes or names (names are at most 80 characters).
MAX_LAB_REF_CHARS = 80
# Search text; keeps every query word far below LMDB's 511-byte key limit.
MAX_QUERY_CHARS = 100
# Tag labels in paths and queries, before normalisation (a stored label is <= 48 characters).
MAX_LABEL_PARAM_CHARS = 100
MAX_CURSOR_BYTES = 256
_HEX_REF = r"[0-9a-fA-F]{8,64}"

ID = Param("id", "path", required=True, pattern=_HEX_REF, max_length=64,
           description="object id, or a unique prefix of 8+ hex characters")  # fmt: skip
LAB = Param("lab", "path", required=True, max_length=MAX_LAB_REF_CHARS,
            description="lab id, id prefix or exact name")  # fmt: skip
# A label is trimmed before use (protocols.fields.normalize_label, Python's str.strip): one
# that is all such spaces names no tag and is refused (400), so the description asks for one
# other character. Spelled out: JSON Schema's \s (ECMA-262) is not Python's (U+001C-U+001F).
NON_BLANK = (r"[\s\S]*[^\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f"
             r"\u3000][\s\S]*")
LABEL = Param("label", "path", required=True, max_length=MAX_LABEL_PARAM_CHARS,
              pattern=NON_BLANK, description="tag label")  # fmt: skip
AUTHOR = Param("author", "path", required=True, pattern="[0-9a-f]{64}", max_length=64,
               description="author public key, 64 lowercase hex characters")  # fmt: skip
LIMIT = Param("limit", type="integer", minimum=1, maximum=MAX_PAGE, default=50,
              description="items per page")  # fmt: skip
CURSOR = Param("cursor", pattern=f"(?:[0-9a-f]{{2}}){{1,{MAX_CURSOR_BYTES}}}",
               max_length=2 * MAX_CURSOR_BYTES,
               description="the `next` value of the previous page")  # fmt: skip
ORDER = Param("order", enum=("newest", "active"), default="newest",
              description="newest first, or most recently active first")  # fmt: skip
MEMBER = Param("id", "path", required=True, pattern="[0-9a-f]{64}", max_length=64,
               description="member id (its genesis root key), 64 lowercase hex characters")
SHOW_HIDDEN = Param("show_hidden", enum=("0", "1"), default="0",
                    description="1: also objects hidden (by the lab's stewards or this node) "
                    "and others' objects waiting for the lab's approval, each marked "
                    "`moderation`")  # fmt: skip
PAGE = (LIMIT, CURSOR)
LOG_CURSOR = Param("cursor", pattern="[0-9a-f]{80}", max_length=80,
                   description="the `next` value of the previous (newer) page")  # fmt: skip
BEFORE = Param("before", type="integer", minimum=0, maximum=10**9,
               description="the `next` value of the previous (newer) history page")  # fmt: skip
V1 = "/api/v1"


async def openapi_document(ctx: Ctx) -> Response:
    return json_response(openapi.build_spec(ROUTES, ctx.base_url))


ROUTES: tuple[Route, ...] = (
    Route("GET", f"{V1}/openapi.json", openapi_document, "This OpenAPI description", "OpenApi"),
    Route("GET", f"{V1}/labs", read.list_labs, "Labs known here, followed first",
          "LabList", cacheable=True),
    Route("GET", f"{V1}/labs/{{lab}}", read.get_lab, "One lab", "Lab", (LAB,),
          cacheable=True, errors=(400, 404)),
    Route("GET", f"{V1}/labs/{{lab}}/projects", read.lab_projects,
          "A lab's projects, newest (or most active) first, paged", "ProjectPage",
          (LAB, *PAGE, ORDER, SHOW_HIDDEN), cacheable=True, errors=(400, 404)),
    Route("GET", f"{V1}/labs/{{lab}}/members", governance.lab_members,
          "A lab's stewards, members, suspended members, newcomers, rules and waiting "
          "proposals, and this node's member's role", "LabMembers", (LAB,), cacheable=True,
          errors=(400, 404)),
    Route("GET", f"{V1}/labs/{{lab}}/log", governance.lab_log,
          "A lab's decisions, newest first, each with its effect, paged", "LabLog",
          (LAB, LIMIT, LOG_CURSOR), cacheable=True, errors=(400, 404)),
    Route("GET", f"{V1}/labs/{{lab}}/queue", governance.lab_queue,
          "What waits for a lab's approval: a page of objects (newest first) and every "
          "newcomer", "LabQueue", (LAB, LIMIT, CURSOR), cacheable=True, errors=(400, 404)),
    Route("POST", f"{V1}/labs/{{lab}}/decisions", governance.create_decision,
          "A decision of the lab (admit, remove, vouch, rules, endorse, approve, hide, "
          "unhide, suspend, unsuspend), signed by this node's member; 403 when it would have "
          "no authority", "Created", (LAB,), body="NewDecision", auth=True, status=201,
          errors=(400, 401, 403, 404, 409, 422)),
    Route("GET", f"{V1}/projects", read.list_projects,
          "Projects of every lab, optionally by tag or author, paged", "ProjectPage",
          (*PAGE, ORDER, SHOW_HIDDEN,
           Param("tag", max_length=MAX_LABEL_PARAM_CHARS, pattern=NON_BLANK,
                 description="tag label"),
           Param("author", pattern="[0-9a-f]{64}", description="author public key (hex)")),
          cacheable=True),
    Route("GET", f"{V1}/projects/{{id}}", read.get_project,
          "A project with its tags and threaded comments", "Thread", (ID, SHOW_HIDDEN),
          cacheable=True, errors=(400, 404)),
    Route("GET", f"{V1}/projects/{{id}}/history", read.project_history,
          "A project's revisions in replay order, with what each changed and its effect "
          "(the newest `limit` before `before`)", "History", (ID, LIMIT, BEFORE),
          cacheable=True, errors=(400, 404)),
    Route("GET", f"{V1}/projects/{{id}}/pledges", read.project_pledges,
          "The pledges on a project, newest first", "PledgeList", (ID, LIMIT),
          cacheable=True, errors=(400, 404)),
    Route("GET", f"{V1}/objects/{{id}}", read.get_object, "Any object by id", "Object", (ID,),
          cacheable=True, errors=(400, 404)),
    Route("GET", f"{V1}/tags", read.list_tags, "Tag labels, most used first", "TagCounts",
          (Param("limit", type="integer", minimum=1, maximum=1000, default=100),),
          cacheable=True),
    Route("GET", f"{V1}/tags/{{label}}/objects", read.tagged_objects,
          "Objects with a tag label, most recently tagged first, paged", "ObjectPage",
          (LABEL, *PAGE, SHOW_HIDDEN), cacheable=True),
    Route("GET", f"{V1}/authors/{{author}}/objects", read.author_objects,
          "Objects signed by an author, newest first, paged", "ObjectPage",
          (AUTHOR, *PAGE, SHOW_HIDDEN,
           Param("kind", enum=registered_kinds(), description="only this kind")),
          cacheable=True),
    Route("GET", f"{V1}/members/{{id}}", read.get_member,
          "A member: status (ok or disputed), roots with validity, devices", "Member",
          (MEMBER,), cacheable=True),
    Route("GET", f"{V1}/search", read.search,
          "Projects whose title, summary or tags contain every word", "ProjectList",
          (Param("q", required=True, max_length=MAX_QUERY_CHARS, description="search words"),
           LIMIT, SHOW_HIDDEN), cacheable=True),
    Route("GET", f"{V1}/status", read.node_status, "Node and store status", "Status"),
    Route("GET", f"{V1}/peers", read.node_peers, "Connected peers", "Peers"),
    Route("POST", f"{V1}/projects", write.create_project,
          "Post a project (signed by this node's member)", "Created", body="NewProject",
          auth=True, status=201, errors=(400, 401, 404, 409, 422)),
    Route("POST", f"{V1}/comments", write.create_comment,
          "Comment on an object (signed by this node's member)", "Created", body="NewComment",
          auth=True, status=201, errors=(400, 401, 404, 409, 422)),
    Route("POST", f"{V1}/tags", write.create_tag,
          "Tag an object (signed by this node's member)", "Created", body="NewTag",
          auth=True, status=201, errors=(400, 401, 404, 409, 422)),
    Route("POST", f"{V1}/revisions", write.create_revision,
          "Revise a project this member is an author of (the fields given that differ)",
          "Created", body="NewRevision", auth=True, status=201,
          errors=(400, 401, 403, 404, 409, 422)),
    Route("POST", f"{V1}/pledges", write.create_pledge,
          "Pledge on a project (withdraw it with a retraction)", "Created", body="NewPledge",
          auth=True, status=201, errors=(400, 401, 404, 409, 422)),
    Route("POST", f"{V1}/forks", write.create_fork,
          "Start a project in a lab from another one, naming its origin", "Created",
          body="NewFork", auth=True, status=201, errors=(400, 401, 404, 409, 422)),
    Route("POST", f"{V1}/retractions", write.create_retraction,
          "Withdraw one of this member's objects", "Created", body="NewRetraction",
          auth=True, status=201, errors=(400, 401, 403, 404, 409, 422)),
    Route("POST", f"{V1}/objects", write.submit_object,
          "Submit an object signed elsewhere (201 new, 200 already known)", "Submitted",
          body="SignedObject", raw_body=True, auth=True, status=201, also=(200,),
          errors=(400, 401, 413, 415, 422)),
    Route("GET", "/feeds/lab/{lab}.atom", feeds.lab_feed, "Atom feed of a lab's projects", "",
          (LAB,), cacheable=True, content_type=ATOM, errors=(400, 404)),
    Route("GET", "/feeds/tag/{label}.atom", feeds.tag_feed,
          "Atom feed of objects with a tag label", "", (LABEL,), cacheable=True,
          content_type=ATOM),
    Route("GET", "/feeds/project/{id}.atom", feeds.project_feed,
          "Atom feed of a project's comments", "", (ID,), cacheable=True, content_type=ATOM,
          errors=(400, 404)),
    Route("GET", "/feeds/author/{author}.atom", feeds.author_feed,
          "Atom feed of an author's objects", "", (AUTHOR,), cacheable=True,
          content_type=ATOM),
)  # fmt: skip


class Router:
    def __init__(self, routes: tuple[Route, ...]) -> None:
        self.routes = routes

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        """(route, path parameters, allowed methods of the path). `path` is still
        percent-encoded: parameters are split out first and decoded one by one."""
        allowed: list[str] = []
        lookup = "GET" if method == "HEAD" else method
        for route in self.routes:
            m = route.pattern.match(path)
            if m is None:
                continue
            allowed.append(route.method)
            if route.method == lookup:
                return route, {k: unquote(v) for k, v in m.groupdict().items()}, allowed
        return None, {}, allowed
