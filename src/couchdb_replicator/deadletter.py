"""Dead letters: documents the copy cannot hold, kept with the reason so nothing is lost.

A document lands here when a value does not fit its column (a string in an Integer
column, a string longer than VARCHAR(n)), when its ``type`` cannot be a table name, or when
the target refuses it for any other reason while otherwise healthy. It then has no row in
the copy (a stale row would silently differ from CouchDB), and the feed moves on. A later
revision that fits, or the document's deletion, clears the entry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from .checkpoint import utcnow
from .feed import Seq, decode_seq, encode_seq
from .state import DEAD_LETTERS
from .statements import upsert_statement

__all__ = ["DeadLetter", "DeadLetterStore"]

_CHUNK = 1000


@dataclass(frozen=True)
class DeadLetter:
    id: str
    rev: str | None
    seq: Seq
    table: str | None
    error: str
    created_at: dt.datetime | None = None


class DeadLetterStore:
    """One source's dead letters; remembers their ids so clearing costs nothing usually."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.ids: set[str] = set()

    async def load_ids(self, conn: AsyncConnection) -> None:
        rows = await conn.execute(
            sa.select(DEAD_LETTERS.c.id).where(DEAD_LETTERS.c.source == self.source)
        )
        self.ids = {r.id for r in rows}

    async def add(self, conn: AsyncConnection, letters: Iterable[DeadLetter]) -> list[str]:
        """Insert or replace entries (one per document id); returns the ids written."""
        now = utcnow()
        rows: list[dict[str, Any]] = [
            {
                "source": self.source,
                "id": letter.id,
                "rev": letter.rev,
                "seq": encode_seq(letter.seq),
                "table_name": letter.table,
                # Errors from drivers can be long (SQL text, parameters); keep the gist.
                "error": letter.error[:2000],
                "created_at": now,
            }
            for letter in letters
        ]
        if rows:
            await conn.execute(upsert_statement(conn.dialect, DEAD_LETTERS, ["source", "id"]), rows)
        return [str(r["id"]) for r in rows]

    async def clear(self, conn: AsyncConnection, ids: Iterable[str]) -> list[str]:
        """Remove the entries of documents that are now applied (or deleted)."""
        if not self.ids:
            return []  # the usual case: nothing to look up for each id of a batch
        doomed = [i for i in ids if i in self.ids]
        for start in range(0, len(doomed), _CHUNK):
            chunk = doomed[start : start + _CHUNK]
            await conn.execute(
                sa.delete(DEAD_LETTERS).where(
                    DEAD_LETTERS.c.source == self.source, DEAD_LETTERS.c.id.in_(chunk)
                )
            )
        return doomed

    def committed(self, added: Iterable[str], cleared: Iterable[str]) -> None:
        """Update the in-memory ids once the transaction that changed them committed."""
        self.ids.difference_update(cleared)
        self.ids.update(added)

    async def count(self, conn: AsyncConnection) -> int:
        return int(
            (
                await conn.execute(
                    sa.select(sa.func.count()).where(DEAD_LETTERS.c.source == self.source)
                )
            ).scalar_one()
        )

    async def list(self, conn: AsyncConnection, limit: int = 20) -> list[DeadLetter]:
        rows = await conn.execute(
            sa.select(DEAD_LETTERS)
            .where(DEAD_LETTERS.c.source == self.source)
            .order_by(DEAD_LETTERS.c.created_at.desc(), DEAD_LETTERS.c.id)
            .limit(limit)
        )
        return [
            DeadLetter(
                id=r.id,
                rev=r.rev,
                seq=decode_seq(r.seq),
                table=r.table_name,
                error=r.error,
                created_at=r.created_at,
            )
            for r in rows
        ]
