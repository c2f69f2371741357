"""FrameTimer (the screens' update timer): a tick as soon as resumed, at most one a frame."""

from __future__ import annotations

import asyncio
import time

import pytest
from textual.app import App

from tui.screens.base import FrameTimer

pytestmark = pytest.mark.anyio

FRAME = 0.1  # long, so that scheduling noise on a busy machine stays well inside the bounds


async def test_frame_timer_ticks_at_once_but_at_most_once_a_frame() -> None:
    app: App[None] = App()
    async with app.run_test():
        ticks: list[float] = []

        def tick() -> None:
            ticks.append(time.monotonic())
            timer.pause()  # as Screen._on_timer_update does

        async def next_tick(count: int) -> float:
            deadline = time.monotonic() + 5
            while len(ticks) < count:
                assert time.monotonic() < deadline, "no tick"
                await asyncio.sleep(0.002)
            return ticks[count - 1]

        timer = FrameTimer(app, FRAME, callback=tick, pause=True)
        timer._start()
        try:
            resumed = time.monotonic()
            timer.resume()
            assert await next_tick(1) - resumed < FRAME / 2  # idle: at once
            timer.resume()  # right after a tick: one frame after it
            assert await next_tick(2) - ticks[0] >= FRAME * 0.95
            await asyncio.sleep(FRAME * 1.2)  # a frame has passed since: at once again
            resumed = time.monotonic()
            timer.resume()
            assert await next_tick(3) - resumed < FRAME / 2
            await asyncio.sleep(FRAME * 1.5)
            assert len(ticks) == 3  # paused: no more ticks
        finally:
            timer.stop()
