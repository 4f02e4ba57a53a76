"""Between the feed and the sink: a bounded buffer that hands out batches.

A batch closes when it holds ``batch_size`` changes, when ``max_delay`` seconds have passed
since its first change arrived, or as soon as the feed says it is idle (nothing more is
coming, so waiting would only add lag). A batch is *caught up* when its last chunk was
idle or streamed live and nothing is buffered behind it. Chunks are never split: a page
of the normal feed carries one position for all its rows. The buffer holds at most
``capacity`` changes; beyond that the feed waits, so a slow target slows the reading
instead of filling memory.
"""

from __future__ import annotations

import asyncio
from collections import deque

from .feed import FeedChunk
from .sink import Batch

__all__ = ["ChangeBuffer"]


class ChangeBuffer:
    """Chunks in from the feed task, batches out to the sink."""

    def __init__(self, batch_size: int, max_delay: float, capacity: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_delay < 0:
            raise ValueError("max_delay must not be negative")
        self.batch_size = batch_size
        self.max_delay = max_delay
        self.capacity = capacity if capacity is not None else 4 * batch_size
        self._chunks: deque[FeedChunk] = deque()
        self._count = 0
        self._cond = asyncio.Condition()
        self._closed = False
        self._stopped = False
        self._error: BaseException | None = None

    @property
    def buffered(self) -> int:
        """Changes waiting in the buffer."""
        return self._count

    async def put(self, chunk: FeedChunk) -> None:
        """Add a chunk; waits while the buffer is full."""
        async with self._cond:
            while self._count >= self.capacity and not (self._closed or self._stopped):
                await self._cond.wait()
            if self._closed or self._stopped:
                return
            self._chunks.append(chunk)
            self._count += len(chunk.changes)
            self._cond.notify_all()

    async def close(self, error: BaseException | None = None) -> None:
        """The feed ended (``error``: it failed); batches drain, then ``take`` ends."""
        async with self._cond:
            self._closed = True
            self._error = error
            self._cond.notify_all()

    async def stop(self) -> None:
        """Stop now: the batch being collected is handed out, the rest is dropped."""
        async with self._cond:
            self._stopped = True
            self._cond.notify_all()

    async def take(self) -> Batch | None:
        """The next batch; None when the feed ended (or the buffer stopped) and all is out.

        A batch may have no changes and no seq: the feed only reported that it is idle.
        Raises the feed's error once everything before it was handed out.
        """
        loop = asyncio.get_running_loop()
        async with self._cond:
            while not self._chunks:
                if self._stopped or self._closed:
                    if self._error is not None and not self._stopped:
                        error, self._error = self._error, None
                        raise error
                    return None
                await self._cond.wait()
            deadline = loop.time() + self.max_delay
            batch = Batch(changes=[], seq=None)
            live = False
            while True:
                while self._chunks and len(batch.changes) < self.batch_size:
                    chunk = self._chunks.popleft()
                    self._count -= len(chunk.changes)
                    batch.changes.extend(chunk.changes)
                    if chunk.seq is not None:
                        batch.seq = chunk.seq
                    batch.caught_up = chunk.idle
                    live = chunk.live
                self._cond.notify_all()  # room for the feed
                if (
                    len(batch.changes) >= self.batch_size
                    or batch.caught_up
                    or self._closed
                    or self._stopped
                ):
                    break
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(self._cond.wait(), remaining)
                except TimeoutError:
                    break
            batch.caught_up = (batch.caught_up or live) and not self._chunks
            return batch
