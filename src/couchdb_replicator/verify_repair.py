"""Repair for ``verify --repair``: make rows equal to CouchDB without racing the replicator.

A repair writes what the sink would write for the document's current revision (the sink's
own planning and SQL: an upsert into the document's table and deletes from every other
table, or deletes only for a deleted document), never touches the checkpoint, and applies
each document only after checking, inside the writing transaction:

1. **The copy's tables are locked against writers** for the transaction — SQLite
   ``BEGIN IMMEDIATE``; PostgreSQL ``LOCK TABLE … IN SHARE ROW EXCLUSIVE MODE NOWAIT``
   (readers go on; a busy table makes the attempt back off and retry, so the repair never
   waits while holding a lock the replicator needs); MySQL/MariaDB ``LOCK TABLES … WRITE``
   (all at once, so no lock cycle). A replicator batch waits for the repair, or the repair
   for the batch; they never interleave.
2. **CouchDB still has the revision the repair is built from** (one ``_all_docs`` request
   for the batch, made under the lock). If the document changed, the repair of it is
   dropped: the change is in the feed, so the replicator applies it.
3. **No row of the document holds a later revision generation** (``N`` of ``N-hash``) than
   CouchDB's: such a row is left as it is and reported.

Documents the copy cannot hold (a value its column refuses) are not repaired here: the
replicator makes them dead letters.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from sqlalchemy_couchdb.dbapi import AsyncCouchDBClient

from .errors import TargetUnavailable
from .feed import Change
from .schema import brief_error
from .sink import Sink
from .verify_copy import CopyReader
from .verify_merge import may_replace

__all__ = ["CouchState", "RepairItem", "RepairOutcome", "Repairer", "couch_states"]

log = logging.getLogger(__name__)

#: How long a repair batch keeps trying to get its locks before giving up.
LOCK_PATIENCE = 60.0
#: SQLSTATEs and MySQL error numbers that mean "another transaction holds it; try again".
_PG_RETRY = {"55P03", "40001", "40P01"}
_MYSQL_RETRY = {1205, 1213}
_SQLITE_BUSY, _SQLITE_LOCKED = 5, 6


@dataclass(frozen=True, slots=True)
class CouchState:
    """What CouchDB holds for an id: a live revision, a deletion, or nothing."""

    rev: str | None
    deleted: bool = False

    @property
    def missing(self) -> bool:
        return self.rev is None


@dataclass(slots=True)
class RepairItem:
    """One document to make right, the CouchDB state it is built from, and the findings
    (table, kind) it settles."""

    change: Change
    basis: CouchState
    findings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.change.id


@dataclass
class RepairOutcome:
    repaired: list[RepairItem] = field(default_factory=list)
    #: CouchDB changed the document after it was read: verify it again.
    superseded: list[RepairItem] = field(default_factory=list)
    #: A row holds a later revision than CouchDB's: left as it is.
    ahead: list[RepairItem] = field(default_factory=list)
    #: The sink would make these dead letters: left to the replicator.
    unholdable: list[RepairItem] = field(default_factory=list)


async def couch_states(
    client: AsyncCouchDBClient, ids: Sequence[str], *, include_docs: bool = False
) -> tuple[dict[str, CouchState], dict[str, dict[str, Any]]]:
    """CouchDB's state of ``ids`` (one ``POST _all_docs``) and, with ``include_docs``,
    the live documents."""
    states: dict[str, CouchState] = {}
    docs: dict[str, dict[str, Any]] = {}
    if not ids:
        return states, docs
    answer = await client.all_docs(keys=list(ids), include_docs=include_docs)
    for row in answer.get("rows", []):
        key = row.get("key")
        if not isinstance(key, str):
            continue
        value = row.get("value")
        if row.get("error") or not isinstance(value, dict):
            states[key] = CouchState(None)
            continue
        deleted = bool(value.get("deleted"))
        states[key] = CouchState(value.get("rev"), deleted)
        doc = row.get("doc")
        if not deleted and isinstance(doc, dict):
            docs[key] = doc
    for doc_id in ids:
        states.setdefault(doc_id, CouchState(None))
    return states, docs


class Repairer:
    """Applies :class:`RepairItem` batches; see the module docstring."""

    def __init__(
        self,
        sink: Sink,
        reader: CopyReader,
        client: AsyncCouchDBClient,
        *,
        on_written: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.sink = sink
        self.reader = reader
        self.client = client
        self.target = sink.target
        self.on_written = on_written

    async def repair(self, items: Sequence[RepairItem]) -> RepairOutcome:
        outcome = RepairOutcome()
        if not items:
            return outcome
        # The sink's own planning: routing by type, the column conversions, and any
        # CREATE/ALTER the rows need (in transactions of their own, as the sink does).
        planned = {p.change.id: p for p in await self.sink._plan([i.change for i in items])}
        todo: list[RepairItem] = []
        for item in items:
            if planned[item.id].action == "poison":
                outcome.unholdable.append(item)
            else:
                todo.append(item)
        if not todo:
            return outcome
        deadline = asyncio.get_running_loop().time() + LOCK_PATIENCE
        attempt = 0
        while True:
            try:
                async with self._locked() as conn:
                    decided = await self._decide(conn, todo)
                    ready = decided.repaired
                    if ready:
                        await self.sink._write(conn, [planned[i.id] for i in ready], None)
                break
            except sa.exc.DBAPIError as exc:
                if not _lock_conflict(exc):
                    raise
                attempt += 1
                if asyncio.get_running_loop().time() > deadline:
                    raise TargetUnavailable(
                        f"verify --repair could not lock the copy's tables for "
                        f"{LOCK_PATIENCE:.0f} s: {brief_error(exc)}"
                    ) from exc
                delay = random.uniform(0, min(1.0, 0.02 * 2**attempt))
                log.debug("repair: tables busy (%s); retrying in %.2f s", brief_error(exc), delay)
                await asyncio.sleep(delay)
        outcome.repaired.extend(decided.repaired)
        outcome.superseded.extend(decided.superseded)
        outcome.ahead.extend(decided.ahead)
        if self.on_written is not None and decided.repaired:
            self.on_written([i.id for i in decided.repaired if planned[i.id].action == "upsert"])
        return outcome

    async def _decide(self, conn: AsyncConnection, items: Sequence[RepairItem]) -> RepairOutcome:
        """Under the lock: which items still stand (see the module docstring, 2 and 3)."""
        ids = [i.id for i in items]
        current = await self.reader.revs(conn, ids)
        now, _ = await couch_states(self.client, ids)
        decided = RepairOutcome()
        for item in items:
            state = now[item.id]
            if state != item.basis:
                decided.superseded.append(item)
            elif not all(may_replace(rev, state.rev) for rev in current.get(item.id, {}).values()):
                decided.ahead.append(item)
            else:
                decided.repaired.append(item)
        return decided

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction that holds the copy's tables against writers."""
        backend = self.target.backend
        engine = self.target.engine
        quote = engine.dialect.identifier_preparer.quote
        names = [quote(name) for name in sorted(self.sink.schema.tables)]
        async with engine.connect() as conn:
            if backend == "mysql":
                await conn.exec_driver_sql("SET SESSION lock_wait_timeout = 10")
                await conn.exec_driver_sql("LOCK TABLES " + ", ".join(f"{n} WRITE" for n in names))
                try:
                    yield conn
                    await conn.commit()
                except BaseException:
                    await conn.rollback()
                    raise
                finally:
                    try:
                        await conn.exec_driver_sql("UNLOCK TABLES")
                        await conn.commit()
                    except sa.exc.DBAPIError:
                        await conn.invalidate()
                return
            if backend == "sqlite":
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif names:
                await conn.exec_driver_sql(
                    f"LOCK TABLE {', '.join(names)} IN SHARE ROW EXCLUSIVE MODE NOWAIT"
                )
            try:
                yield conn
                await conn.commit()
            except BaseException:
                await conn.rollback()
                raise


def _lock_conflict(exc: sa.exc.DBAPIError) -> bool:
    """Whether the error says another transaction holds what we want (retry later)."""
    orig = exc.orig
    for candidate in (orig, getattr(orig, "__cause__", None)):
        if candidate is None:
            continue
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if state in _PG_RETRY:
            return True
        code = getattr(candidate, "sqlite_errorcode", None)
        if isinstance(code, int) and code & 0xFF in (_SQLITE_BUSY, _SQLITE_LOCKED):
            return True
        args = getattr(candidate, "args", ())
        if args and isinstance(args[0], int) and args[0] in _MYSQL_RETRY:
            return True
    return False
