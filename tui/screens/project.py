"""One project as it is now (its revisions applied): summary, Markdown body, stage, licence,
authors, needs with their pledges, lineage across labs, tags, and its threaded comments.

Keys: `e` edit (a revision), `h` history, `p` pledge (on the highlighted need), `w` withdraw
one's own highlighted pledge, `f` fork into a followed lab, `x` hide / `u` mute the author of
the highlighted comment (when the comments have the focus) or else of the project; Enter on
a lineage entry opens that project, on a need pledges on it. Revisions, pledges and forks
pushed for the project reload it. A hidden or queued project or comment (listed with "show
hidden", or one's own waiting post) carries its mark and reason."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from rich.markup import escape
from textual import on, work
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Label, Markdown, OptionList, Static

from tui.client import NodeUnavailable, RpcError
from tui.format import who
from tui.screens.base import CallFailed, PercolabScreen, rpc_client
from tui.screens.devices import ConfirmScreen
from tui.screens.edit import EditForm
from tui.screens.fork import ForkForm
from tui.screens.forms import CommentForm, TagForm
from tui.screens.history import HistoryScreen
from tui.screens.moderate import ask_hide, ask_mute
from tui.screens.pledge import PledgeForm
from tui.widgets.comments import flatten
from tui.widgets.lineage import LineageList
from tui.widgets.moderation import (
    ModeratedThread,
    hidden_params,
    lab_name_of,
    moderation_mark,
)
from tui.widgets.needs import NeedsList, group_pledges
from tui.widgets.vocab import derive_label, licence_label

log = logging.getLogger(__name__)

MAX_FACT_ORIGINS = 2  # origins named in the facts line (all are in the lineage list)


class ProjectScreen(PercolabScreen):
    """``project`` view of one id; comments pushed for it appear live, marked new."""

    BINDINGS = [
        Binding("escape", "back", "Back", id="project_back"),
        Binding("c", "comment", "Comment", id="project_comment"),
        Binding("r", "reply", "Reply", id="project_reply"),
        Binding("t", "tag", "Tag", id="project_tag"),
        Binding("e", "edit", "Edit", id="project_edit"),
        Binding("h", "history", "History", id="project_history"),
        Binding("p", "pledge", "Pledge", id="project_pledge"),
        Binding("w", "withdraw", "Withdraw pledge", id="project_withdraw", show=False),
        Binding("f", "fork", "Fork", id="project_fork"),
        Binding("x", "hide", "Hide…", id="project_hide"),
        Binding("u", "mute", "Mute author", id="project_mute", show=False),
    ]

    def __init__(self, project_id: str) -> None:
        super().__init__()
        self.project_id = project_id
        self.project: dict[str, Any] = {}
        self.comment_ids: set[str] = set()
        self.pledge_ids: set[str] = set()
        self.new_ids: set[str] = set()
        self.loaded = False

    def compose_body(self) -> Iterable[Widget]:
        with VerticalScroll(id="project-details"):
            yield Label("", id="project-title", classes="project-title")
            yield Static("", id="project-meta", classes="project-meta")
            yield Static("", id="project-moderation", classes="project-moderation")
            yield Static("", id="project-summary", classes="project-summary")
            yield Static("", id="project-facts", classes="project-facts")
            yield Markdown("", id="project-body")
            yield Static("Needs and pledges", id="needs-heading", classes="subsection-heading")
            yield NeedsList(self.fmt, id="needs")
            yield Static("Lineage", id="lineage-heading", classes="subsection-heading")
            yield LineageList(self.fmt, id="lineage")
        yield Static("Comments", id="comments-heading", classes="section-heading")
        yield ModeratedThread(self.fmt, id="comments")

    @property
    def thread(self) -> ModeratedThread:
        return self.query_one(ModeratedThread)

    def reload(self) -> None:
        self.load_project()

    @work(exclusive=True, group="load", exit_on_error=False)
    async def load_project(self) -> None:
        result = await self.rpc("project", id=self.project_id, **hidden_params(self.app))
        await self.show_project(result)
        self.mark_read()

    @work(group="mark_read", exit_on_error=False)
    async def mark_read(self) -> None:
        """What the member sees now counts as read (`mark_read`, per member on a shared
        machine). Silent: an older node answers unknown_method, and nothing is lost."""
        try:
            await rpc_client(self).call("mark_read", id=self.project_id)
        except (RpcError, NodeUnavailable) as exc:
            log.debug("mark_read: %s", exc)

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
        self.query_one("#project-meta", Static).update(self._meta(project))
        me = (getattr(self.app, "me", None) or {}).get("author")
        mark = moderation_mark(project, me)
        moderation = self.query_one("#project-moderation", Static)
        moderation.update(mark or "")
        moderation.display = mark is not None
        self.thread.me = me
        self.query_one("#project-summary", Static).update(escape(str(project.get("summary", ""))))
        tagged = {label for tag in result.get("tags", []) for label in tag.get("labels", [])}
        labels = sorted(tagged | set(project.get("tags") or []))
        facts = [
            f"[b]Stage:[/b] {escape(str(project.get('stage') or '—'))}",
            f"[b]Licence:[/b] {self._licence(project)}",
            f"[b]Needs:[/b] {escape(', '.join(project.get('needs') or []) or '—')}",
            f"[b]Tags:[/b] {escape(' '.join('#' + t for t in labels) or '—')}",
        ]
        facts += self._living_facts(project, result)
        self.query_one("#project-facts", Static).update("\n".join(facts))
        self._show_living(project, result)
        await self.query_one("#project-body", Markdown).update(str(project.get("body") or ""))
        fresh = len(self.new_ids)
        heading = f"Comments ({len(ids)})"
        if fresh:
            heading += f"  [b reverse green] {fresh} new [/]"
        self.query_one("#comments-heading", Static).update(heading)
        self.thread.show(comments, self.new_ids)
        if self.focused is None or self.focused is self.query_one("#project-details"):
            self.thread.focus()

    def _meta(self, project: dict[str, Any]) -> str:
        authors = escape(who(project))
        others = [str(c.get("name") or self.fmt.short_id(str(c.get("member", ""))))
                  for c in project.get("coauthors") or []]  # fmt: skip
        if others:
            authors += " with " + escape(", ".join(others))
        lab = escape(lab_name_of(self.app, project, self.fmt))
        meta = (f"in [b]{lab}[/b] by [b]{authors}[/b]"
                f" · {self.fmt.when(project.get('ts'))}")  # fmt: skip
        revisions = int(project.get("revisions") or 0)
        if revisions:
            meta += (f" · revised {self.fmt.when(project.get('revised_ts'))} ({revisions} "
                     f"revision{'s' if revisions != 1 else ''}, h: history)")  # fmt: skip
        return meta + f" · id {self.fmt.short_id(project['id'])}"

    @staticmethod
    def _living_facts(project: dict[str, Any], result: dict[str, Any]) -> list[str]:
        """Pledges and lineage in a line each (the lists are below the body)."""
        out = []
        pledges = len(result.get("pledges") or [])
        if pledges:
            out.append(f"[b]Pledges:[/b] {pledges} (below, under the needs they answer)")
        derives = [d for d in project.get("derives") or [] if isinstance(d, dict)]
        if derives:
            origins = [f"{d.get('how_label') or derive_label(str(d.get('how', '')))} "
                       f"{d.get('title') or 'a project not on this node'}"
                       + (f" ({d['lab_name']})" if d.get("lab_name") else "")
                       for d in derives[:MAX_FACT_ORIGINS]]  # fmt: skip
            more = len(derives) - MAX_FACT_ORIGINS
            out.append("[b]Derives:[/b] " + escape("; ".join(origins))
                       + (f" and {more} more" if more > 0 else ""))  # fmt: skip
        descendants = len((result.get("lineage") or {}).get("descendants") or [])
        if descendants:
            out.append(f"[b]Derived into:[/b] {descendants} project"
                       f"{'s' if descendants != 1 else ''} (lineage below)")  # fmt: skip
        return out

    @staticmethod
    def _licence(project: dict[str, Any]) -> str:
        licence = project.get("licence")
        if not licence:
            return "[dim]none stated[/dim]"
        text = escape(str(licence))
        label = licence_label(str(licence))
        if label != licence:
            text += f" [dim]({escape(label)})[/dim]"
        elif project.get("licence_known") is False:
            text += " [dim](not on the common SPDX list)[/dim]"
        return text

    def _show_living(self, project: dict[str, Any], result: dict[str, Any]) -> None:
        """Needs with their pledges, and the lineage (hidden when there is none)."""
        pledges = [p for p in result.get("pledges") or [] if isinstance(p, dict)]
        self.pledge_ids = {str(p.get("id")) for p in pledges}
        groups = group_pledges(list(project.get("needs") or []), result.get("needs"), pledges)
        me = getattr(self.app, "me", None) or {}
        self.needs_list.show(groups, me.get("author"))
        count = len(pledges)
        if count:
            heading = (f"Needs and pledges ({count} pledge{'s' if count != 1 else ''}) · "
                       "p: pledge, w: withdraw yours")  # fmt: skip
        elif groups:
            heading = "Needs (no pledge yet) · p, or enter on a need: pledge"
        else:
            heading = "No needs listed, no pledges yet · p: pledge (I'd use it, I can build it…)"
        self.query_one("#needs-heading", Static).update(heading)
        self.needs_list.display = bool(groups)  # needs or pledges to list
        lineage = result.get("lineage") or {}
        ancestors = list(lineage.get("ancestors") or [])
        if not ancestors:  # a node without `lineage`: the project's own derives
            ancestors = [d for d in project.get("derives") or [] if isinstance(d, dict)]
        listed = self.query_one(LineageList)
        listed.show(ancestors, list(lineage.get("descendants") or []))
        lineage_heading = self.query_one("#lineage-heading", Static)
        lineage_heading.update(f"Lineage ({listed.count}) · enter: open")
        lineage_heading.display = listed.display = listed.count > 0

    @property
    def needs_list(self) -> NeedsList:
        return self.query_one(NeedsList)

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

    def _loaded(self) -> bool:
        if not self.loaded:
            self.notify("The project is still loading", severity="warning")
        return self.loaded

    def _names(self) -> dict[str, str]:
        """member id -> name of the project's authors (for the history's co-author diffs)."""
        names = {str(c.get("member")): str(c.get("name")) for c in
                 self.project.get("coauthors") or [] if c.get("name")}  # fmt: skip
        if self.project.get("member") and self.project.get("author_name"):
            names[str(self.project["member"])] = str(self.project["author_name"])
        return names

    def action_edit(self) -> None:
        if self._loaded():
            me = (getattr(self.app, "me", None) or {}).get("author")
            self.app.push_screen(EditForm(self.project, me), self._after_send("Revision"))

    def action_history(self) -> None:
        if self._loaded():
            title = str(self.project.get("title", ""))
            self.app.push_screen(HistoryScreen(self.project_id, title, self._names()))

    def action_pledge(self, need: str | None = None) -> None:
        if not self._loaded():
            return
        if need is None and self.needs_list.has_focus:
            need = self.needs_list.current_need
        form = PledgeForm(self.project_id, list(self.project.get("needs") or []),
                          title=str(self.project.get("title", "")), need=need)  # fmt: skip
        self.app.push_screen(form, self._after_send("Pledge"))

    @on(OptionList.OptionSelected, "#needs")
    def _need_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_id is not None and event.option_id not in self.needs_list.pledges:
            self.action_pledge(self.needs_list.current_need)

    def action_withdraw(self) -> None:
        pledge = self.needs_list.current_pledge if self.needs_list.has_focus else None
        me = (getattr(self.app, "me", None) or {}).get("author")
        if pledge is None:
            self.notify("Highlight one of your pledges under the needs first",
                        severity="warning")  # fmt: skip
            return
        if me is None or pledge.get("member") != me:
            self.notify("Only the member who made a pledge can withdraw it", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.withdraw(str(pledge["id"]))

        self.app.push_screen(ConfirmScreen("Withdraw this pledge? Everyone will see it "
                                           "withdrawn.", "Withdraw"), answered)  # fmt: skip

    @work(group="withdraw", exit_on_error=False)
    async def withdraw(self, pledge_id: str) -> None:
        try:
            await self.rpc("retract", id=pledge_id)
        except CallFailed:  # already notified
            return
        self.notify("Pledge withdrawn")
        self.reload()

    def action_fork(self) -> None:
        if not self._loaded():
            return

        def forked(result: Any) -> None:
            if result:
                self.notify("Forked: the new project names this one as its origin")
                self.app.push_screen(ProjectScreen(str(result)))

        self.app.push_screen(ForkForm(self.project), forked)

    def _target(self) -> tuple[dict[str, Any], str]:
        """What `x` / `u` act on: the highlighted comment when the comments have the focus,
        else the project; and how to name it."""
        cid = self.thread.current_id if self.thread.has_focus else None
        if cid is not None:
            comment = self.thread.comments[cid]
            return comment, f"{who(comment) or '?'}'s comment"
        return self.project, f"the project “{self.project.get('title', '')}”"

    def action_hide(self) -> None:
        if self._loaded():
            view, what = self._target()
            ask_hide(self, str(view["id"]), what, self.project.get("lab"), self.reload)

    def action_mute(self) -> None:
        if not self._loaded():
            return
        view, _ = self._target()
        member = view.get("member") or view.get("author")
        if member:
            ask_mute(self, str(member), who(view) or str(member)[:8], self.reload)

    @on(OptionList.OptionSelected, "#lineage")
    def _lineage_selected(self, event: OptionList.OptionSelected) -> None:
        entry = self.query_one(LineageList).entries.get(event.option_id or "")
        if entry is None:
            return
        if not entry.get("title"):  # named by a derives record, not held here
            self.notify("That project is not on this node (its lab may not be followed "
                        "here yet)", severity="warning")  # fmt: skip
            return
        self.app.push_screen(ProjectScreen(str(event.option_id)))

    def object_arrived(self, view: dict[str, Any]) -> None:
        target = str(view.get("target"))
        kind = view.get("kind")
        about_us = target == self.project_id
        derives = {str(d.get("project")) for d in view.get("derives") or []
                   if isinstance(d, dict)}  # fmt: skip
        if (
            kind == "retraction"  # of a comment, pledge, revision… of this project or not
            or (kind in ("comment", "tag", "revision", "pledge") and about_us)
            or (kind == "project" and self.project_id in derives)  # a fork of this one
        ):
            self.reload()
