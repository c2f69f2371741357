from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.http.helpers import RunningNode, percolab, start_node


@dataclass
class Lab:
    node: RunningNode
    client: httpx.Client
    lab_id: str
    author: str


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One node per test module: member "Ada", lab "Fab Lab" (followed), HTTP on a free port."""
    data_dir: Path = tmp_path_factory.mktemp("http-node")
    who = json.loads(percolab(data_dir, "--json", "init", "--unencrypted-key", "--name",
                              "Ada").stdout)
    lab_id = json.loads(percolab(data_dir, "--json", "lab", "create", "Fab Lab",
                                 "--place", "Berlin").stdout)["id"]  # fmt: skip
    node = start_node(data_dir)
    try:
        with node.client() as client:
            yield Lab(node, client, lab_id, who["author"])
    finally:
        node.stop()
