"""The kind registration example of docs/extending.md runs, and its objects validate."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from protocols import errors, kinds

DOC = (Path(__file__).parents[2] / "docs" / "extending.md").read_text()


def test_extending_example_registers_a_working_kind() -> None:
    block = re.search(r"```python\n(.*?)```", DOC, re.S)
    assert block, "no python example in docs/extending.md"
    code = block.group(1)
    if "backing" in kinds.registered_kinds():  # the README shows the same kind
        code = code.replace('"backing"', '"backing-doc"')
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/extending.md", "exec"), namespace)
    spec = namespace["BACKING"]
    assert isinstance(spec, kinds.KindSpec)
    key = Ed25519PrivateKey.generate()
    body = {"lab": None, "target": bytes(32), "hours": 3, "note": "I can weld"}
    obj = kinds.create(key, spec.name, body, 1_767_225_600_000)
    assert kinds.validate(obj, 1_767_225_600_000) is spec
    with pytest.raises(errors.IntOutOfRange):
        kinds.create(key, spec.name, body | {"hours": 0}, 1_767_225_600_000)
