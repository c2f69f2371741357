"""The TUI's crash boundary: an unexpected exception inside the app ends it with the
terminal restored, one line on stderr naming a crash report (the full traceback, mode 0600,
in the node's data directory or else the temp directory) and exit status EXIT_INTERNAL.
The one-line form and the report writer are the CLI's too (node/cli/errors.py calls them: the
TUI may not import node, the CLI already imports the TUI).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

EXIT_INTERNAL = 70  # a bug: one line names the crash report (EX_SOFTWARE, sysexits.h)
CRASH_PREFIX = "crash-"
# The error line echoes the exception's message: bound it (as node/cli/errors.py does).
MAX_ERROR_CHARS = 400
_ESCAPED_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})


def one_line(text: str) -> str:
    """`text` as one printable, bounded line (controls and line separators escaped)."""
    if len(text) > MAX_ERROR_CHARS:
        half = MAX_ERROR_CHARS // 2
        text = f"{text[:half]} … {text[-half:]}"
    return "".join(
        c.encode("unicode_escape").decode("ascii")
        if unicodedata.category(c) in _ESCAPED_CATEGORIES else c
        for c in text
    )  # fmt: skip


def write_crash_report(
    exc: BaseException, folder: Path | None, *, program: str = "percolab TUI",
    argv: Sequence[str] | None = None,
) -> Path:  # fmt: skip
    """The traceback and what led to it (`argv`, default sys.argv) in
    `crash-<UTC time>-<pid>.txt` (mode 0600: the arguments may be private) in `folder`, or
    the temp directory when that is unusable. Raises OSError when neither can be written."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    name = f"{CRASH_PREFIX}{stamp}-{os.getpid()}.txt"
    text = (
        f"{program} crash report, {stamp}\n"
        f"python {sys.version.split()[0]} on {sys.platform}\n"
        f"argv: {[*(sys.argv if argv is None else argv)]!r}\n\n"
        + "".join(traceback.format_exception(exc))
    )
    last: OSError | None = None
    for where in [d for d in (folder, Path(tempfile.gettempdir())) if d is not None]:
        path = where / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as err:
            last = err
            continue
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as f:
            f.write(text)
        return path
    assert last is not None
    raise last


def crash_line(exc: BaseException, folder: Path | None) -> str:
    """Write the crash report of `exc`; the one line to print about it."""
    what = f"{type(exc).__name__}: {exc}"
    try:
        report = write_crash_report(exc, folder)
    except OSError as err:
        reason = f"{err.strerror or err}: {err.filename}" if err.filename else str(err)
        return one_line(f"percolab: error: internal error in the TUI ({what}); no crash "
                        f"report could be written ({reason})")  # fmt: skip
    return one_line(f"percolab: error: internal error in the TUI ({what}); this is a bug, "
                    f"please report it with {report}")  # fmt: skip


def report(line: str, stream: TextIO | None = None) -> None:
    print(line, file=stream if stream is not None else sys.stderr, flush=True)
