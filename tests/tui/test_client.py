"""NodeClient against a FAKE asyncio server (framing, errors, pushes, reconnect)."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from protocols.rpc import Push
from tests.tui.fake_node import FakeNode
from tui.client import NodeClient, NodeUnavailable, RpcError

pytestmark = pytest.mark.anyio


@pytest.fixture
async def fake() -> AsyncIterator[FakeNode]:
    with tempfile.TemporaryDirectory() as tmp:
        node = FakeNode(Path(tmp) / "node.sock")
        node.add_lab("fablab")
        await node.start()
        yield node
        await node.stop()


async def test_fake_call_and_errors(fake: FakeNode) -> None:
    client = NodeClient(fake.socket_path, subscribe=False)
    await client.connect()
    labs = await client.call("lab_list")
    assert [lab["name"] for lab in labs] == ["fablab"]
    with pytest.raises(RpcError) as info:
        await client.call("project", id="ffffffff")
    assert info.value.code == "not_found"
    await client.close()
    with pytest.raises(NodeUnavailable):
        await client.call("lab_list")


async def test_fake_connect_to_missing_socket(tmp_path: Path) -> None:
    client = NodeClient(tmp_path / "absent.sock")
    with pytest.raises(NodeUnavailable):
        await client.connect()


async def test_fake_pushes_and_reconnect(fake: FakeNode) -> None:
    states: list[bool] = []
    pushed: list[Push] = []
    client = NodeClient(fake.socket_path, on_push=pushed.append, on_state=states.append,
                        min_backoff=0.02, max_backoff=0.1)
    runner = asyncio.create_task(client.run())
    iterator = client.pushes()
    assert await client.wait_connected(5)
    # `run` subscribes right after connecting; wait for it before expecting pushes.
    async with asyncio.timeout(5):
        while not fake.subscribers:
            await asyncio.sleep(0.01)
    await client.call("post", lab="fablab", title="Live")
    async with asyncio.timeout(5):
        first = await anext(iterator)
    assert first.kind == "object" and first.data["title"] == "Live"
    assert pushed and pushed[0].data["title"] == "Live"

    await fake.stop()
    async with asyncio.timeout(5):
        while states[-1] is not False:
            await asyncio.sleep(0.01)
    with pytest.raises(NodeUnavailable):
        await client.call("lab_list")
    await fake.start()
    async with asyncio.timeout(5):
        while states[-1] is not True:
            await asyncio.sleep(0.01)
    assert [lab["name"] for lab in await client.call("lab_list")] == ["fablab"]
    assert states == [True, False, True]
    await client.close()
    async with asyncio.timeout(5):
        await runner
