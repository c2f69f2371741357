"""A DataTable showing one page of projects, with new rows highlighted."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from tui.format import Formatter

NEW_STYLE = "bold green"
NEW_MARK = "●"
CELL_CACHE_MAX = 4096  # rendered cells kept across pages (a page is ~200 cells)

ROW_CACHE_MAX = 512  # rendered row lines

SegmentLines = list[list[Segment]]
RowLines = tuple[SegmentLines, SegmentLines]  # DataTable's (fixed cells, scrollable cells)
NULL_STYLE = Style.null()
_JOIN = Text("\n")


def _text_key(text: Text) -> tuple[object, ...]:
    """What a cell's Text shows, hashable."""
    return (text.plain, text.style, tuple(text.spans), text.justify, text.overflow,
            text.no_wrap)  # fmt: skip


class ProjectTable(DataTable[Text]):
    """Rows are keyed by project id; ``show_page`` replaces the rows with one page."""

    DEFAULT_CSS = "ProjectTable { height: 1fr; }"

    def __init__(self, fmt: Formatter, *, show_lab: bool = True, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self.fmt = fmt
        self.show_lab = show_lab
        self.projects: dict[str, dict[str, Any]] = {}
        # Rendered cells keyed by what they show (not by row key, as DataTable's own cache
        # is, which ``clear()`` empties): a new page re-renders only the cells it has not
        # shown before. The row/column meta (for mouse clicks) is set per position.
        self._content_cache: dict[tuple[object, ...], SegmentLines] = {}
        self._meta_cache: dict[tuple[int, int], Style] = {}
        # Rendered row lines keyed the same way (contents, widths, cursor/hover on the row):
        # any row index (re-tagged with its own meta), and at their row index.
        self._row_protos: dict[tuple[object, ...], tuple[int, RowLines]] = {}
        self._row_lines: dict[tuple[object, ...], RowLines] = {}
        self._row_styles: dict[tuple[int, object], Style] = {}

    def on_mount(self) -> None:
        self.add_column(" ", key="new", width=1)
        self.add_column("Title", key="title")
        if self.show_lab:
            self.add_column("Lab", key="lab")
        self.add_column("Stage", key="stage")
        self.add_column("Author", key="author")
        self.add_column("💬", key="comments")
        self.add_column("Tags", key="tags")
        self.add_column("Active", key="activity")

    def show_page(self, items: Iterable[dict[str, Any]], new_ids: set[str]) -> None:
        keep = self.current_id
        self.clear()
        self.projects = {}
        for project in items:
            pid = str(project["id"])
            self.projects[pid] = project
            self.add_row(*self._cells(project, pid in new_ids), key=pid)
        if keep is not None and keep in self.projects:
            self.move_cursor(row=self.get_row_index(keep))

    def notify_style_update(self) -> None:
        self._content_cache.clear()
        self._row_protos.clear()
        self._row_lines.clear()
        self._row_styles.clear()
        super().notify_style_update()

    def _get_row_style(self, row_index: int, base_style: Style) -> Style:
        """DataTable's row style (a CSS component style, costly to compute), cached."""
        if row_index == -1:
            kind = -1
        elif row_index < self.fixed_rows:
            kind = -2
        elif self.zebra_stripes:
            kind = row_index % 2
        else:
            return base_style
        key = (kind, self._pseudo_class_state)
        style = self._row_styles.get(key)
        if style is None:
            style = self._row_styles[key] = super()._get_row_style(row_index, base_style)
        return style

    def _meta(self, row_index: int, column_index: int) -> Style:
        meta = self._meta_cache.get((row_index, column_index))
        if meta is None:
            meta = Style.from_meta({"row": row_index, "column": column_index})
            self._meta_cache[(row_index, column_index)] = meta
        return meta

    def _render_line_in_row(
        self,
        row_key: RowKey,
        line_no: int,
        base_style: Style,
        cursor_location: Coordinate,
        hover_location: Coordinate,
    ) -> RowLines:
        """DataTable's row line, cached by what the row shows (see ``_render_cell``)."""
        if (
            self.cursor_type != "row"
            or self.fixed_columns
            or (self._labelled_row_exists and self.show_row_labels)
        ):
            return super()._render_line_in_row(
                row_key, line_no, base_style, cursor_location, hover_location
            )
        located = self._row_locations.get(row_key)
        row_index = -1 if located is None else located  # -1: the header
        cells = self._get_row_renderables(row_index).cells
        if not all(isinstance(cell, Text) for cell in cells):
            return super()._render_line_in_row(
                row_key, line_no, base_style, cursor_location, hover_location
            )
        row = self.rows.get(row_key)
        key = (
            tuple(_text_key(cast(Text, cell)) for cell in cells),
            tuple(column.get_render_width(self) for column in self.ordered_columns),
            row_index == -1, row_index < self.fixed_rows, row_index % 2,
            row.height if row is not None else self.header_height, line_no, self.size.width,
            base_style, cursor_location.row == row_index, hover_location.row == row_index,
            self.show_cursor, self._show_hover_cursor, self._pseudo_class_state,
            self.cell_padding, self.cursor_foreground_priority,
            self.cursor_background_priority,
        )  # fmt: skip
        lines = self._row_lines.get((key, row_index))
        if lines is not None:
            return lines
        proto = self._row_protos.get(key)
        if proto is None:
            lines = super()._render_line_in_row(
                row_key, line_no, base_style, cursor_location, hover_location
            )
            if len(self._row_protos) >= ROW_CACHE_MAX:
                self._row_protos.clear()
            self._row_protos[key] = (row_index, lines)
        elif proto[0] == row_index:
            lines = proto[1]
        else:  # the same row shown at another index: set its row/column meta
            fixed, scrollable = proto[1]
            metas = [self._meta(row_index, column) for column in range(len(cells))]
            metas.append(self._meta(row_index, 0))  # the fill after the last column
            lines = fixed, [
                [Segment(text, None if control else (style or NULL_STYLE) + meta, control)
                 for text, style, control in segments]
                for meta, segments in zip(metas, scrollable, strict=True)
            ]  # fmt: skip
        if len(self._row_lines) >= ROW_CACHE_MAX:
            self._row_lines.clear()
        self._row_lines[(key, row_index)] = lines
        return lines

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> SegmentLines:
        """DataTable's cell rendering, cached by content and fast for one-line text.

        DataTable caches a rendered cell by row key, and ``clear()`` (every new page) drops
        that cache, so each page re-rendered every cell through Rich (Styled(Padding(text))
        -> Console.render_lines, ~75 µs a cell, ~200 cells a page). Here a cell is cached
        by what it shows and how (text, styles, width, cursor/hover state), and a one-line
        text that fits is rendered straight to segments; anything else goes to DataTable.
        The row/column meta that mouse clicks read is added per position.
        """
        is_header = row_index == -1
        if column_index < 0:  # a row label (none here)
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        cell = self._get_row_renderables(row_index).cells[column_index]
        row_key = self._row_locations.get_key(row_index)
        row = self.rows.get(row_key) if row_key is not None else None
        height = self.header_height if is_header else (row.height if row is not None else 0)
        if not isinstance(cell, Text) or height != 1:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        fixed = not is_header and (row_index < self.fixed_rows or column_index < self.fixed_columns)
        key = (
            _text_key(cell), is_header, fixed, base_style, width, cursor, hover, self.show_cursor,
            self._show_hover_cursor, self._pseudo_class_state, self.cell_padding,
            self.cursor_foreground_priority, self.cursor_background_priority,
        )  # fmt: skip
        lines = self._content_cache.get(key)
        if lines is None:
            if len(self._content_cache) >= CELL_CACHE_MAX:
                self._content_cache.clear()
            lines = self._render_text_cell(cell, is_header, fixed, base_style, width, cursor, hover)
            if lines is None:
                lines = super()._render_cell(
                    row_index, column_index, base_style, width, cursor, hover
                )
            self._content_cache[key] = lines
        meta = self._meta(row_index, column_index)
        return [
            [Segment(text, None if control else (style or NULL_STYLE) + meta, control)
             for text, style, control in line]
            for line in lines
        ]  # fmt: skip

    def _render_text_cell(
        self,
        cell: Text,
        is_header: bool,
        fixed: bool,
        base_style: Style,
        width: int,
        cursor: bool,
        hover: bool,
    ) -> SegmentLines | None:
        """What DataTable renders for a one-line, left/default-justified ``cell`` that fits
        in ``width`` (without the row/column meta); None for any other cell."""
        padding = self.cell_padding
        inner = width - 2 * padding
        plain = cell.plain
        if (
            cell.justify not in (None, "default")
            or "\n" in plain
            or "\t" in plain
            or cell_len(plain) > inner
        ):
            return None
        component_style, post_style = self._get_styles_to_render_cell(
            is_header,
            False,
            fixed,
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        # Text.__rich_console__ renders the text joined into one: its style becomes a span.
        segments = [seg for seg in _JOIN.join([cell]).render(self.app.console) if seg.text]
        pad = Segment(" " * padding, NULL_STYLE)
        line = [pad, *segments] if padding else segments
        if inner > cell_len(plain):
            line.append(Segment(" " * (inner - cell_len(plain)), NULL_STYLE))
        if padding:
            line.append(pad)
        return [list(Segment.apply_style(line, base_style + component_style, post_style))]

    def _cells(self, project: dict[str, Any], new: bool) -> list[Text]:
        style = NEW_STYLE if new else ""
        cells = [
            Text(NEW_MARK if new else "", style=style),
            Text(str(project.get("title", "")), style=style),
        ]
        if self.show_lab:
            cells.append(Text(str(project.get("lab_name", ""))))
        cells += [
            Text(str(project.get("stage", "") or "")),
            Text(str(project.get("author_name", "") or "")),
            Text(str(project.get("comments", 0)), justify="right"),
            Text(", ".join(project.get("tags", []) or [])[:30]),
            Text(self.fmt.when(project.get("activity") or project.get("ts"))),
        ]
        return cells

    @property
    def current_id(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:
            return None
        return None if key.value is None else str(key.value)
