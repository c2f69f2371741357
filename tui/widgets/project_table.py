"""A DataTable showing one page of projects, with new rows highlighted."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple, cast

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual._segment_tools import line_crop
from textual.geometry import Region
from textual.render import measure
from textual.strip import Strip
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from tui.format import Formatter, who
from tui.widgets.moderation import lab_name_of, marked_title

NEW_STYLE = "bold green"
NEW_MARK = "●"
CELL_CACHE_MAX = 4096  # rendered cells kept across pages (a page is ~200 cells)

ROW_CACHE_MAX = 512  # fill styles after the last column
LINE_CACHE_MAX = 1024  # finished lines (a screenful is ~40) for the same widths etc.
PASS_CACHE_MAX = 16  # sets of finished lines (by widths, styles, scroll)

SegmentLines = list[list[Segment]]
NULL_STYLE = Style.null()
_JOIN = Text("\n")


class _Settings(NamedTuple):
    """The table's reactive settings a rendered cell depends on (read once a pass)."""

    show_cursor: bool
    show_hover_cursor: bool
    pseudo_class_state: object
    cell_padding: int
    foreground_css: bool
    background_css: bool
    fixed_rows: int
    fixed_columns: int
    header_height: int


class _Pass(NamedTuple):
    """What every line of a render pass shares."""

    key: tuple[object, ...]  # (base style, x1, x2, width, widths, settings)
    base_style: Style
    settings: _Settings
    widths: tuple[int, ...]
    width: int
    cursor_row: int
    hover_row: int
    lines: dict[tuple[object, ...], Strip]  # the finished lines cached for this key


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
        # Finished lines by what every line shares (styles, widths...), then by what the
        # row shows (cells, cursor/hover on the row).
        self._strips: dict[tuple[object, ...], dict[tuple[object, ...], Strip]] = {}
        self._row_styles: dict[tuple[int, object], Style] = {}
        self._extend_styles: dict[tuple[object, ...], Style] = {}
        self._text_styles: dict[str | Style, Style | None] = {}
        self._pass: _Pass | None = None  # during render_lines

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
        page = [(str(project["id"]), project) for project in items]
        rows = [(pid, self._cells(project, pid in new_ids)) for pid, project in page]
        self.projects = dict(page)
        if self._shows(rows):
            return  # the same rows with the same cells: nothing to redraw
        keep = self.current_id
        self.clear()
        for pid, cells in rows:
            self.add_row(*cells, key=pid)
        if keep is not None and keep in self.projects:
            self.move_cursor(row=self.get_row_index(keep))

    def _shows(self, rows: list[tuple[str, list[Text]]]) -> bool:
        """Whether the table already shows exactly ``rows`` (keys, order and cells)."""
        if len(rows) != self.row_count or (rows and len(rows[0][1]) != len(self.columns)):
            return False
        for index, (pid, cells) in enumerate(rows):
            row_key = self._row_locations.get_key(index)
            if row_key is None or row_key.value != pid or row_key in self._new_rows:
                return False
            shown = self._data.get(row_key)
            if shown is None or len(shown) != len(cells):
                return False
            for old, new in zip(shown.values(), cells, strict=True):
                if not isinstance(old, Text) or _text_key(old) != _text_key(new):
                    return False
        return True

    def notify_style_update(self) -> None:
        self._content_cache.clear()
        self._text_styles.clear()
        self._strips.clear()
        self._row_styles.clear()
        self._extend_styles.clear()
        super().notify_style_update()

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """DataTable's, with one-line text cells measured directly (Rich's measure of a
        Text is the cell length of its longest line; it was ~25 µs a cell)."""
        rest: list[RowKey] = []
        columns = self.ordered_columns
        console = self.app.console
        for row_key in new_rows:
            row_index = self._row_locations.get(row_key)
            if row_index is None:
                continue
            row = self.rows.get(row_key)
            if row is None or row.label is not None or row.auto_height:
                rest.append(row_key)
                continue
            cells = self._get_row_renderables(row_index).cells
            for column, cell in zip(columns, cells, strict=False):
                if isinstance(cell, Text):  # what Text.__rich_measure__ gives as its maximum
                    width = max((cell_len(line) for line in cell.plain.splitlines()), default=0)
                else:
                    width = measure(console, cell, 1)
                if width > column.content_width:
                    column.content_width = width
        super()._update_dimensions(rest)  # the other rows, then the virtual size

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

    def _settings(self) -> _Settings:
        """What every cell's rendering depends on besides its content."""
        return _Settings(
            self.show_cursor, self._show_hover_cursor, self._pseudo_class_state,
            self.cell_padding, self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css", self.fixed_rows, self.fixed_columns,
            self.header_height,
        )  # fmt: skip

    def _current_pass(self, base_style: Style, x1: int, x2: int) -> _Pass:
        """What every line of a render pass shares (computed once in ``render_lines``)."""
        current = self._pass
        if current is not None and current.key[:3] == (base_style, x1, x2):
            return current
        settings = self._settings()
        widths = tuple(column.get_render_width(self) for column in self.ordered_columns)
        width = self.size.width
        key = (base_style, x1, x2, width, widths, settings)
        lines = self._strips.get(key)
        if lines is None:
            if len(self._strips) >= PASS_CACHE_MAX:
                self._strips.clear()
            lines = self._strips[key] = {}
        return _Pass(key, base_style, settings, widths, width, self.cursor_coordinate.row,
                     self.hover_coordinate.row, lines)  # fmt: skip

    def render_lines(self, crop: Region) -> list[Strip]:
        self._pseudo_class_state = self.get_pseudo_class_state()
        # The widget's style (walked up the DOM), the settings and column widths: once.
        scroll_x = self.scroll_offset.x
        self._pass = self._current_pass(self.rich_style, scroll_x, scroll_x + self.size.width)
        try:
            return super().render_lines(crop)
        finally:
            self._pass = None

    def render_line(self, y: int) -> Strip:
        """DataTable's (without fixed rows), with the widget style computed once a pass."""
        if self.fixed_rows:
            return super().render_line(y)
        scroll_x, scroll_y = self.scroll_offset
        if y >= (self.header_height if self.show_header else 0):
            y += scroll_y
        base_style = self._pass.base_style if self._pass is not None else self.rich_style
        return self._render_line(y, scroll_x, scroll_x + self.size.width, base_style)

    def _render_line(self, y: int, x1: int, x2: int, base_style: Style) -> Strip:
        """DataTable's line, cached by what the row shows (cells, widths, cursor/hover on
        the row, styles) rather than by DataTable's update count, which every new page
        changes; rows of one-line text cells are assembled here (see ``_render_cell``)."""
        if (
            self.cursor_type != "row"
            or self.fixed_columns
            or (self._labelled_row_exists and self.show_row_labels)
        ):
            return super()._render_line(y, x1, x2, base_style)
        current = self._current_pass(base_style, x1, x2)
        width = current.width
        try:
            row_key, _line_no = self._get_offsets(y)
        except LookupError:
            return Strip.blank(width, base_style)
        located = self._row_locations.get(row_key)
        row_index = -1 if located is None else located  # -1: the header
        row = self.rows.get(row_key)
        settings = current.settings
        height = settings.header_height if row is None else row.height
        cells = self._get_row_renderables(row_index).cells
        if height != 1 or not all(isinstance(cell, Text) for cell in cells):
            return super()._render_line(y, x1, x2, base_style)
        texts = cast("list[Text]", cells)
        cursor = current.cursor_row == row_index
        hover = current.hover_row == row_index
        keys = [_text_key(text) for text in texts]
        key = (tuple(keys), row_index, cursor, hover)
        strip = current.lines.get(key)
        if strip is not None:
            return strip
        widths = current.widths
        row_style = self._get_row_style(row_index, base_style)
        segments: list[Segment] = []
        for column_index, text in enumerate(texts):
            segments += self._cell(text, keys[column_index], row_index, column_index, row_style,
                                   widths[column_index], cursor, hover, settings)[0]  # fmt: skip
        total = sum(widths)
        extend = self._extend_style(row_index, row_style, cursor, hover, settings)
        segments.append(Segment(" " * max(0, width - total), extend))
        if x1 == 0 and x2 == width and total <= width:  # no crop, no padding: as below
            strip = Strip(Segment.simplify(segments), width)
        else:
            strip = Strip(line_crop(segments, x1, x2, width))
            strip = strip.adjust_cell_length(width, base_style).simplify()
        if len(current.lines) >= LINE_CACHE_MAX:
            current.lines.clear()
        current.lines[key] = strip
        return strip

    def _extend_style(
        self, row_index: int, row_style: Style, cursor: bool, hover: bool, settings: _Settings
    ) -> Style:
        """The style of the space after the last column (as DataTable's, with a row cursor)."""
        key = (row_index, row_style, cursor, hover, settings)
        style = self._extend_styles.get(key)
        if style is None:
            extend_style, _ = self._get_styles_to_render_cell(
                row_index == -1, False, False, hover, cursor, settings.show_cursor,
                settings.show_hover_cursor, False, False,
            )  # fmt: skip
            style = row_style + extend_style
            style += Style.from_meta({"row": row_index, "column": 0, "out_of_bounds": True})
            if len(self._extend_styles) >= ROW_CACHE_MAX:
                self._extend_styles.clear()
            self._extend_styles[key] = style
        return style

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
        if column_index < 0:  # a row label (none here)
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        cell = self._get_row_renderables(row_index).cells[column_index]
        settings = self._settings()
        if row_index == -1:
            height = settings.header_height
        else:
            row_key = self._row_locations.get_key(row_index)
            row = self.rows.get(row_key) if row_key is not None else None
            height = row.height if row is not None else 0
        if not isinstance(cell, Text) or height != 1:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        return self._cell(cell, _text_key(cell), row_index, column_index, base_style, width,
                          cursor, hover, settings)  # fmt: skip

    def _cell(
        self,
        cell: Text,
        text_key: tuple[object, ...],
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool,
        hover: bool,
        settings: _Settings,
    ) -> SegmentLines:
        """A one-line text cell (height 1), from the content cache, with its meta."""
        is_header = row_index == -1
        fixed = not is_header and (
            row_index < settings.fixed_rows or column_index < settings.fixed_columns
        )
        key = (text_key, is_header, fixed, base_style, width, cursor, hover, settings)
        lines = self._content_cache.get(key)
        if lines is None:
            if len(self._content_cache) >= CELL_CACHE_MAX:
                self._content_cache.clear()
            lines = self._render_text_cell(
                cell, is_header, fixed, base_style, width, cursor, hover, settings
            )
            if lines is None:
                lines = super()._render_cell(
                    row_index, column_index, base_style, width, cursor, hover
                )
            # joined (same style) as Strip.simplify would join them in the finished line
            lines = self._content_cache[key] = [list(Segment.simplify(line)) for line in lines]
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
        settings: _Settings,
    ) -> SegmentLines | None:
        """What DataTable renders for a one-line, left/default-justified ``cell`` that fits
        in ``width`` (without the row/column meta); None for any other cell."""
        padding = settings.cell_padding
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
            settings.show_cursor,
            settings.show_hover_cursor,
            settings.foreground_css,
            settings.background_css,
        )
        # Text.__rich_console__ renders the text joined into one: its style becomes a span.
        # Without spans that is one segment in the text's own style (cached per style).
        if cell.spans:
            segments = [seg for seg in _JOIN.join([cell]).render(self.app.console) if seg.text]
        elif not plain:
            segments = []
        elif not cell.style:
            segments = [Segment(plain)]
        else:
            segments = [Segment(plain, self._text_style(cell.style))]
        pad = Segment(" " * padding, NULL_STYLE)
        line = [pad, *segments] if padding else segments
        if inner > cell_len(plain):
            line.append(Segment(" " * (inner - cell_len(plain)), NULL_STYLE))
        if padding:
            line.append(pad)
        return [list(Segment.apply_style(line, base_style + component_style, post_style))]

    def _text_style(self, style: str | Style) -> Style | None:
        """The style Rich renders a span-less Text styled ``style`` in (see above)."""
        if style not in self._text_styles:
            probe = [seg for seg in _JOIN.join([Text("x", style=style)]).render(self.app.console)]
            self._text_styles[style] = probe[0].style
        return self._text_styles[style]

    def _cells(self, project: dict[str, Any], new: bool) -> list[Text]:
        style = NEW_STYLE if new else ""
        cells = [
            Text(NEW_MARK if new else "", style=style),
            Text(str(project.get("title", "")), style=style),
        ]
        if self.show_lab:  # with its short id when another lab's name looks the same
            cells.append(Text(lab_name_of(self.app, project, self.fmt)))
        cells += [
            Text(str(project.get("stage", "") or "")),
            Text(who(project)),
            Text(str(project.get("comments", 0)), justify="right"),
            Text(", ".join(project.get("tags", []) or [])[:30]),
            Text(self.fmt.when(project.get("activity") or project.get("ts"))),
        ]
        # A hidden or queued object's mark (shown only with "show hidden", or one's own post
        # waiting for approval).
        me = (getattr(self.app, "me", None) or {}).get("author")
        cells[1] = marked_title(project, cells[1], me)
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
