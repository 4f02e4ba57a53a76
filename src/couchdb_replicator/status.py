"""``couchdb-replicator status``: where the copy stands against its source.

Read-only on both sides: the checkpoint and totals from the target's state tables, the
source's ``update_seq``, the backlog (rows of the feed after the checkpoint, counted by
CouchDB or, on PouchDB Server, by reading the feed without documents), the lag, and the
dead letters. The lag is 0 when nothing is pending; otherwise the seconds since the copy
last equalled CouchDB (``caught_up_at``) — an upper bound on how stale the copy is.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from sqlalchemy_couchdb.dbapi import AsyncCouchDBClient, ConnectionSettings
from sqlalchemy_couchdb.dbapi.exceptions import CouchDBError

from .checkpoint import Checkpoint, CheckpointStore
from .deadletter import DeadLetter, DeadLetterStore
from .errors import ReplicatorError, SourceError
from .feed import ChangesFeed, Seq
from .schema import brief_error
from .state import CHECKPOINTS, DEAD_LETTERS, source_key
from .targets import Target

__all__ = ["Status", "gather_status"]


@dataclass
class Status:
    source: str
    target: str
    checkpoint: Checkpoint | None
    update_seq: Seq
    backlog: int | None
    lag_seconds: float | None
    dead_letter_count: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        cp = self.checkpoint
        return {
            "source": self.source,
            "target": self.target,
            "checkpoint": cp.seq if cp else None,
            "checkpoint_updated_at": _iso(cp.updated_at) if cp else None,
            "caught_up_at": _iso(cp.caught_up_at) if cp else None,
            "update_seq": self.update_seq,
            "backlog": self.backlog,
            "lag_seconds": self.lag_seconds,
            "applied": cp.totals.applied if cp else 0,
            "counts": vars(cp.totals) if cp else {},
            "dead_letters": self.dead_letter_count,
            "recent_dead_letters": [
                {
                    "id": d.id,
                    "rev": d.rev,
                    "seq": d.seq,
                    "table": d.table,
                    "error": d.error,
                    "time": _iso(d.created_at),
                }
                for d in self.dead_letters
            ],
        }

    def render(self, console: Console) -> None:
        cp = self.checkpoint
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("source", self.source)
        grid.add_row("target", self.target)
        if cp is None:
            grid.add_row("checkpoint", "none: the replicator has not run into this target yet")
        else:
            grid.add_row("checkpoint", _short(cp.seq))
            grid.add_row("  updated", _iso(cp.updated_at) or "never")
        grid.add_row("update_seq", _short(self.update_seq))
        grid.add_row("backlog", "unknown" if self.backlog is None else f"{self.backlog} changes")
        grid.add_row(
            "lag",
            "unknown (never caught up)"
            if self.lag_seconds is None
            else f"{self.lag_seconds:.1f} s",
        )
        if cp is not None:
            t = cp.totals
            grid.add_row(
                "applied",
                f"{t.applied} ({t.upserted} upserted, {t.deleted} deleted)",
            )
            grid.add_row(
                "skipped",
                f"{t.skipped_untyped} without type, {t.skipped_unmapped} of unmapped types; "
                f"{t.fields_dropped} fields dropped",
            )
        grid.add_row("dead letters", str(self.dead_letter_count))
        console.print(grid)
        if self.dead_letters:
            table = Table("id", "rev", "table", "error", "time", title="recent dead letters")
            for d in self.dead_letters:
                table.add_row(d.id, d.rev or "", d.table or "", d.error, _iso(d.created_at) or "")
            console.print(table)


def _iso(value: dt.datetime | None) -> str | None:
    return value.replace(microsecond=0).isoformat() + "Z" if value is not None else None


def _short(seq: Seq) -> str:
    text = json.dumps(seq) if not isinstance(seq, str) else seq
    return text if len(text) <= 60 else text[:57] + "..."


async def gather_status(source: ConnectionSettings, target: Target) -> Status:
    """Read the state of the copy and of the source; raises ReplicatorError if unreachable."""
    key = source_key(source)
    checkpoint: Checkpoint | None = None
    dead_count = 0
    recent: list[DeadLetter] = []
    try:
        async with target.engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
            if CHECKPOINTS.name in names:
                checkpoint = await CheckpointStore(key).load(conn)
            if DEAD_LETTERS.name in names:
                letters = DeadLetterStore(key)
                dead_count = await letters.count(conn)
                recent = await letters.list(conn, limit=10)
    except sa.exc.SQLAlchemyError as exc:
        raise ReplicatorError(
            f"cannot read the target {target.display}: {brief_error(exc)}"
        ) from exc
    async with AsyncCouchDBClient(source) as client:
        feed = ChangesFeed(client)
        try:
            info = await feed.database_info()
            since = checkpoint.seq if checkpoint else None
            backlog = await feed.count_pending(since)
        except SourceError:
            raise
        except (CouchDBError, OSError) as exc:
            raise SourceError(
                f"cannot reach CouchDB at {source.redacted_url()}: {brief_error(exc)}"
            ) from exc
    lag: float | None
    if backlog == 0:
        lag = 0.0
    elif checkpoint is not None and checkpoint.caught_up_at is not None:
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        lag = max(0.0, (now - checkpoint.caught_up_at).total_seconds())
    else:
        lag = None
    return Status(
        source=source.redacted_url(),
        target=target.display,
        checkpoint=checkpoint,
        update_seq=info.get("update_seq"),
        backlog=backlog,
        lag_seconds=lag,
        dead_letter_count=dead_count,
        dead_letters=recent,
    )
