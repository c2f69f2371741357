"""One project: summary, Markdown body, stage, needs, tags, and its threaded comments."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from rich.markup import escape
from textual import work
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Label, Markdown, Static

from tui.format import who
from tui.screens.base import PercolabScreen
from tui.screens.forms import CommentForm, TagForm
from tui.widgets.comments import CommentThread, flatten

log = logging.getLogger(__name__)


class ProjectScreen(PercolabScreen):
    """``project`` view of one id; comments pushed for it appear live, marked new."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="project_back"),
        Binding("c", "comment", "Comment", id="project_comment"),
        Binding("r", "reply", "Reply", id="project_reply"),
        Binding("t", "tag", "Tag", id="project_tag"),
    ]

    def __init__(self, project_id: str) -> None:
        super().__init__()
        self.project_id = project_id
        self.project: dict[str, Any] = {}
        self.comment_ids: set[str] = set()
        self.new_ids: set[str] = set()
        self.loaded = False

    def compose_body(self) -> Iterable[Widget]:
        with VerticalScroll(id="project-details"):
            yield Label("", id="project-title", classes="project-title")
            yield Static("", id="project-meta", classes="project-meta")
            yield Static("", id="project-summary", classes="project-summary")
            yield Static("", id="project-facts", classes="project-facts")
            yield Markdown("", id="project-body")
        yield Static("Comments", id="comments-heading", classes="section-heading")
        yield CommentThread(self.fmt, id="comments")

    @property
    def thread(self) -> CommentThread:
        return self.query_one(CommentThread)

    def reload(self) -> None:
        self.load_project()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_project(self) -> None:
        result = await self.rpc("project", id=self.project_id)
        await self.show_project(result)

    async def show_project(self, result: dict[str, Any]) -> None:
        project = result["project"]
        self.project = project
        self.project_id = str(project["id"])
        comments: list[dict[str, Any]] = list(result.get("comments", []))
        ids = {str(c["id"]) for _, c in flatten(comments)}
        if self.loaded:
            self.new_ids |= ids - self.comment_ids
        self.comment_ids = ids
        self.loaded = True
        self.sub_title = str(project.get("title", ""))
        self.query_one("#project-title", Label).update(escape(str(project.get("title", ""))))
        meta = (
            f"in [b]{escape(str(project.get('lab_name', '')))}[/b]"
            f" by [b]{escape(who(project))}[/b]"
            f" · {self.fmt.when(project.get('ts'))} · id {self.fmt.short_id(project['id'])}"
        )
        self.query_one("#project-meta", Static).update(meta)
        self.query_one("#project-summary", Static).update(escape(str(project.get("summary", ""))))
        tagged = {label for tag in result.get("tags", []) for label in tag.get("labels", [])}
        labels = sorted(tagged | set(project.get("tags") or []))
        facts = [
            f"[b]Stage:[/b] {escape(str(project.get('stage') or '—'))}",
            f"[b]Needs:[/b] {escape(', '.join(project.get('needs') or []) or '—')}",
            f"[b]Tags:[/b] {escape(' '.join('#' + t for t in labels) or '—')}",
        ]
        self.query_one("#project-facts", Static).update("\n".join(facts))
        await self.query_one("#project-body", Markdown).update(str(project.get("body") or ""))
        fresh = len(self.new_ids)
        heading = f"Comments ({len(ids)})"
        if fresh:
            heading += f"  [b reverse green] {fresh} new [/]"
        self.query_one("#comments-heading", Static).update(heading)
        self.thread.show(comments, self.new_ids)
        if self.focused is None or self.focused is self.query_one("#project-details"):
            self.thread.focus()

    def action_back(self) -> None:
        self.dismiss()

    def _after_send(self, what: str) -> Any:
        def done(result: Any) -> None:
            if result:
                self.notify(f"{what} sent")
                self.reload()

        return done

    def action_comment(self) -> None:
        context = f"on {self.project.get('title', self.project_id)}"
        self.app.push_screen(
            CommentForm({"target": self.project_id}, context=context), self._after_send("Comment")
        )

    def action_reply(self) -> None:
        parent = self.thread.current_id
        if parent is None:
            self.notify("Select a comment to reply to", severity="warning")
            return
        comment = self.thread.comments[parent]
        context = f"to {who(comment) or '?'}: {str(comment.get('body', ''))[:80]}"
        self.app.push_screen(
            CommentForm({"target": self.project_id, "parent": parent}, context=context),
            self._after_send("Reply"),
        )

    def action_tag(self) -> None:
        self.app.push_screen(
            TagForm({"target": self.project_id}, context=str(self.project.get("title", ""))),
            self._after_send("Tag"),
        )

    def object_arrived(self, view: dict[str, Any]) -> None:
        target = str(view.get("target"))
        kind = view.get("kind")
        about_us = target == self.project_id
        retracted = kind == "retraction" and (about_us or target in self.comment_ids)
        if retracted or (kind in ("comment", "tag") and about_us):
            self.reload()
