"""The checkpoint store: how far the copy has read each source's feed.

The seq is kept as the JSON text of what the server sent and given back unchanged —
never compared or parsed (CouchDB's seqs are opaque strings, PouchDB Server's integers).
:meth:`CheckpointStore.advance` runs inside the sink's batch transaction, so the copy and
the position it reflects always move together: a crash replays at most one batch.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .feed import Seq, decode_seq, encode_seq
from .state import CHECKPOINTS

__all__ = ["BatchCounts", "Checkpoint", "CheckpointStore", "utcnow"]


def utcnow() -> dt.datetime:
    """Naive UTC, the form stored in every backend's DATETIME."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass
class BatchCounts:
    """What one batch did; added to the running totals in the checkpoint row."""

    upserted: int = 0
    deleted: int = 0
    skipped_untyped: int = 0
    skipped_unmapped: int = 0
    fields_dropped: int = 0
    dead_lettered: int = 0

    @property
    def applied(self) -> int:
        return self.upserted + self.deleted

    def add(self, other: BatchCounts) -> None:
        self.upserted += other.upserted
        self.deleted += other.deleted
        self.skipped_untyped += other.skipped_untyped
        self.skipped_unmapped += other.skipped_unmapped
        self.fields_dropped += other.fields_dropped
        self.dead_lettered += other.dead_lettered


@dataclass
class Checkpoint:
    """One source's row: the seq reached (None: from the start) and the totals."""

    source: str
    seq: Seq
    updated_at: dt.datetime | None
    caught_up_at: dt.datetime | None
    totals: BatchCounts


class CheckpointStore:
    """Reads and advances one source's checkpoint row."""

    def __init__(self, source: str) -> None:
        self.source = source

    async def load(self, conn: AsyncConnection) -> Checkpoint | None:
        row = (
            await conn.execute(sa.select(CHECKPOINTS).where(CHECKPOINTS.c.source == self.source))
        ).first()
        if row is None:
            return None
        return Checkpoint(
            source=self.source,
            seq=decode_seq(row.seq),
            updated_at=row.updated_at,
            caught_up_at=row.caught_up_at,
            totals=BatchCounts(
                upserted=row.upserted,
                deleted=row.deleted,
                skipped_untyped=row.skipped_untyped,
                skipped_unmapped=row.skipped_unmapped,
                fields_dropped=row.fields_dropped,
                dead_lettered=row.dead_lettered,
            ),
        )

    async def ensure(self, conn: AsyncConnection) -> Checkpoint:
        """The source's row, inserted (at the start of the feed) when missing."""
        found = await self.load(conn)
        if found is not None:
            return found
        await conn.execute(
            sa.insert(CHECKPOINTS).values(
                source=self.source,
                seq=None,
                upserted=0,
                deleted=0,
                skipped_untyped=0,
                skipped_unmapped=0,
                fields_dropped=0,
                dead_lettered=0,
            )
        )
        return Checkpoint(self.source, None, None, None, BatchCounts())

    async def advance(
        self,
        conn: AsyncConnection,
        seq: Seq,
        counts: BatchCounts,
        *,
        caught_up: bool = False,
    ) -> None:
        """Move the checkpoint to ``seq`` and add ``counts`` (inside the batch transaction)."""
        now = utcnow()
        c = CHECKPOINTS.c
        values: dict[str, object] = {
            "seq": encode_seq(seq),
            "updated_at": now,
            "upserted": c.upserted + counts.upserted,
            "deleted": c.deleted + counts.deleted,
            "skipped_untyped": c.skipped_untyped + counts.skipped_untyped,
            "skipped_unmapped": c.skipped_unmapped + counts.skipped_unmapped,
            "fields_dropped": c.fields_dropped + counts.fields_dropped,
            "dead_lettered": c.dead_lettered + counts.dead_lettered,
        }
        if caught_up:
            values["caught_up_at"] = now
        result = await conn.execute(
            sa.update(CHECKPOINTS).where(c.source == self.source).values(values)
        )
        if result.rowcount == 0:
            # The row was removed under us (someone reset the copy): recreate it.
            await self.ensure(conn)
            await conn.execute(sa.update(CHECKPOINTS).where(c.source == self.source).values(values))

    async def mark_caught_up(self, conn: AsyncConnection) -> None:
        """Record that nothing was pending after the last commit (no seq change)."""
        await conn.execute(
            sa.update(CHECKPOINTS)
            .where(CHECKPOINTS.c.source == self.source)
            .values(caught_up_at=utcnow())
        )
