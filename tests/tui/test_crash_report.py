"""An unexpected exception inside the TUI ends it with exit status 70, a crash report (the
full traceback, mode 0600) in the data directory and one line on stderr naming it; never
Textual's traceback on the terminal."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from textual.binding import Binding

import tui.app
from tui.app import PercolabApp, run_app
from tui.crash import CRASH_PREFIX, EXIT_INTERNAL, crash_line


class Boom(RuntimeError):
    pass


class CrashingApp(PercolabApp):
    """The real app with a key that hits a bug (and, headless, one that hits it by itself)."""

    CSS_PATH = str(Path(tui.app.__file__).with_name("app.tcss"))  # not relative to this file
    BINDINGS = [Binding("x", "explode", "Explode")]

    def __init__(self, socket_path: Path, crash_dir: Path, *, by_itself: bool = False) -> None:
        super().__init__(socket_path, crash_dir=crash_dir)
        self.by_itself = by_itself

    def on_mount(self) -> None:
        super().on_mount()
        if self.by_itself:
            self.set_timer(0.2, self.action_explode)

    def action_explode(self) -> None:
        raise Boom("kaboom\nsecond line")


def _report(folder: Path) -> Path:
    reports = list(folder.glob(f"{CRASH_PREFIX}*.txt"))
    assert len(reports) == 1, reports
    return reports[0]


def _check_report(path: Path) -> None:
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "Traceback (most recent call last)" in text
    assert "in action_explode" in text
    assert "Boom: kaboom" in text


@pytest.mark.anyio
async def test_pilot_action_that_raises(tmp_path: Path) -> None:
    app = CrashingApp(tmp_path / "node.sock", tmp_path)
    with pytest.raises(Boom):  # run_test re-raises it, as Textual does for test frameworks
        async with app.run_test() as pilot:
            await pilot.press("x")
            await pilot.pause()
    assert app.return_code == EXIT_INTERNAL
    report = _report(tmp_path)
    _check_report(report)
    line = app.crash_message
    assert line is not None and "\n" not in line
    assert line.startswith("percolab: error: internal error in the TUI (Boom: kaboom\\nsecond")
    assert line.endswith(str(report))


def test_run_app_prints_one_line_and_exits_70(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = CrashingApp(tmp_path / "node.sock", tmp_path, by_itself=True)
    assert run_app(app, headless=True) == EXIT_INTERNAL
    out, err = capsys.readouterr()
    report = _report(tmp_path)
    _check_report(report)
    assert err.count("\n") == 1 and err.startswith("percolab: error: internal error")
    assert err.rstrip("\n").endswith(str(report))
    assert "Traceback" not in out + err


def test_unwritable_data_dir_falls_back_to_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp))
    try:
        raise Boom("kaboom")
    except Boom as exc:
        line = crash_line(exc, tmp_path / "missing")
    assert line.endswith(str(_report(temp)))
