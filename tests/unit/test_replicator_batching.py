"""The buffer between feed and sink: batches close on size, time or idleness."""

from __future__ import annotations

import asyncio
import time

import pytest

from couchdb_replicator.batching import ChangeBuffer
from couchdb_replicator.feed import Change, FeedChunk


def change(n: int) -> Change:
    return Change(id=f"d{n}", rev="1-a", seq=n, deleted=False, doc={"_id": f"d{n}"})


def chunk(*ns: int, idle: bool = False, live: bool = False) -> FeedChunk:
    return FeedChunk(
        changes=[change(n) for n in ns], seq=ns[-1] if ns else None, idle=idle, live=live
    )


async def test_closes_on_size() -> None:
    buf = ChangeBuffer(batch_size=3, max_delay=10.0)
    for n in range(5):
        await buf.put(chunk(n))
    batch = await buf.take()
    assert batch is not None
    assert [c.id for c in batch.changes] == ["d0", "d1", "d2"]
    assert batch.seq == 2
    assert not batch.caught_up


async def test_closes_on_time() -> None:
    buf = ChangeBuffer(batch_size=100, max_delay=0.1)
    await buf.put(chunk(1))
    started = time.monotonic()
    batch = await buf.take()
    waited = time.monotonic() - started
    assert batch is not None and len(batch.changes) == 1
    assert 0.08 <= waited < 1.0


async def test_closes_at_once_when_the_feed_is_idle() -> None:
    buf = ChangeBuffer(batch_size=100, max_delay=10.0)
    await buf.put(chunk(1, 2))
    await buf.put(FeedChunk(idle=True))
    started = time.monotonic()
    batch = await buf.take()
    assert time.monotonic() - started < 0.5
    assert batch is not None and batch.caught_up and batch.seq == 2


async def test_live_changes_are_caught_up_only_when_nothing_follows() -> None:
    buf = ChangeBuffer(batch_size=2, max_delay=10.0)
    await buf.put(chunk(1, live=True))
    await buf.put(chunk(2, live=True))
    await buf.put(chunk(3, live=True))
    first = await buf.take()
    assert first is not None and not first.caught_up  # d3 waits behind it
    buf.max_delay = 0.05
    second = await buf.take()
    assert second is not None and second.caught_up and second.seq == 3


async def test_chunks_are_never_split() -> None:
    buf = ChangeBuffer(batch_size=2, max_delay=1.0)
    await buf.put(chunk(1, 2, 3))  # a page: one seq for all its rows
    batch = await buf.take()
    assert batch is not None and len(batch.changes) == 3 and batch.seq == 3


async def test_a_heartbeat_alone_is_an_empty_caught_up_batch() -> None:
    buf = ChangeBuffer(batch_size=10, max_delay=1.0)
    await buf.put(FeedChunk(idle=True))
    batch = await buf.take()
    assert batch is not None and batch.changes == [] and batch.seq is None and batch.caught_up


async def test_full_buffer_blocks_the_feed() -> None:
    buf = ChangeBuffer(batch_size=2, max_delay=0.0, capacity=2)
    await buf.put(chunk(1, 2))
    blocked = asyncio.create_task(buf.put(chunk(3)))
    await asyncio.sleep(0.05)
    assert not blocked.done()
    await buf.take()
    await asyncio.wait_for(blocked, 1.0)


async def test_close_drains_then_ends_and_raises_the_feed_error() -> None:
    buf = ChangeBuffer(batch_size=10, max_delay=0.0)
    await buf.put(chunk(1))
    await buf.close(RuntimeError("terminal"))
    batch = await buf.take()
    assert batch is not None and len(batch.changes) == 1
    with pytest.raises(RuntimeError, match="terminal"):
        await buf.take()
    assert await buf.take() is None


async def test_stop_hands_out_the_partial_batch() -> None:
    buf = ChangeBuffer(batch_size=100, max_delay=30.0)
    await buf.put(chunk(1))
    taking = asyncio.create_task(buf.take())
    await asyncio.sleep(0.05)
    await buf.stop()
    batch = await asyncio.wait_for(taking, 1.0)
    assert batch is not None and len(batch.changes) == 1
    assert await buf.take() is None


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        ChangeBuffer(0, 1.0)
    with pytest.raises(ValueError):
        ChangeBuffer(1, -1.0)
