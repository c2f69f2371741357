"""What every corpus generator of this folder shares (living_cases.py, governance_cases.py):
check each object's verdict and each scenario before writing, the JSON layout, the file."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol


class Scenario(Protocol):
    def check(self) -> None: ...

    def render(self) -> dict[str, Any]: ...


def build(
    fmt: str, now_ms: int, cases: list[dict[str, Any]],
    verdict: Callable[[bytes], tuple[str, str | None]], scenarios: Iterable[Scenario],
) -> dict[str, Any]:  # fmt: skip
    """The corpus, after checking every case against this implementation."""
    for case in cases:
        assert verdict(bytes.fromhex(case["hex"])) == (case["verdict"], case.get("code")), case
    scs = list(scenarios)
    for s in scs:
        s.check()
    return {"format": fmt, "now_ms": now_ms, "objects": cases,
            "scenarios": [s.render() for s in scs]}  # fmt: skip


def to_json(corpus: dict[str, Any]) -> str:
    return json.dumps(corpus, indent=1, ensure_ascii=True) + "\n"


def write(out: Path, text: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="ascii")
    print(f"wrote {out}")
