"""An emulated camera inside the gateway process (kind = "emulator"), no HTTP in between."""

from __future__ import annotations

import asyncio
import time

from ..media.channel import Channel
from .base import Source
from .frames import FrameLoop


class EmulatedSource(Source):
    """Feeds a channel from a pre-rendered frame loop at the configured rate."""

    def __init__(self, channel: Channel) -> None:
        super().__init__(channel)
        assert channel.config.emulator is not None
        self.params = channel.config.emulator
        self._frames: FrameLoop | None = None

    async def session(self) -> None:
        """Deliver frames on a fixed grid; with `stall_after`, go silent after that many."""
        p = self.params
        if self._frames is None:
            self._frames = await asyncio.to_thread(
                lambda: FrameLoop(
                    camera=p.camera,
                    label=self.channel.name,
                    width=p.width,
                    height=p.height,
                    fps=p.fps,
                    quality=p.quality,
                    restart_interval=p.restart_interval,
                    video_loss=p.video_loss,
                    subsampling=p.subsampling,
                )
            )
        frames = self._frames
        period = 1.0 / p.fps
        start = time.monotonic()
        n = sent = 0
        while True:
            if p.stall_after and sent >= p.stall_after:
                await asyncio.Event().wait()  # connected but silent; the watchdog ends it
            self.deliver(frames.frame(sent, time.time()))
            n += 1
            sent += 1
            delay = start + n * period - time.monotonic()
            if delay < -1.0:  # fell far behind (suspended host): restart the grid
                start, n = time.monotonic(), 0
            await asyncio.sleep(max(0.0, delay))
