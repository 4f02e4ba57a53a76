"""The sink: applies a batch of changes and its checkpoint in one target transaction.

Per batch:

1. Keep the last change of each document id (the feed may repeat an id).
2. Decide each change: a tombstone deletes; a document without ``type`` is skipped and
   counted (``skipped_untyped``), as is one whose type has no table under ``--metadata``
   (``skipped_unmapped``); a ``type`` that cannot be a table, or a value its column cannot
   hold, makes a dead letter; everything else is upserted into its type's table.
3. In one transaction: delete every id of the batch from each table that must not hold it
   (a tombstone from all of them; a document whose type changed from its old table —
   the copy needs no id→table index for that), upsert the rows by ``id`` with
   executemany, record and clear dead letters, and advance the checkpoint. During the
   first backfill into an empty copy, ids the run has not written yet are known to be in
   no table: the deletes are skipped for them, and their rows are inserted rather than
   upserted (PostgreSQL's ``COPY`` on asyncpg, a plain ``INSERT`` elsewhere).

If that transaction fails while the target is healthy, some document is at fault: the
batch is retried change by change and the one that fails becomes a dead letter. If the
target is not healthy, :class:`~couchdb_replicator.errors.TargetUnavailable` is raised
and nothing moved: the caller retries the same batch later. Applying a batch twice
leaves the copy as applying it once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from sqlalchemy_couchdb.mapping import table_of

from .checkpoint import BatchCounts, Checkpoint, CheckpointStore
from .deadletter import DeadLetter, DeadLetterStore
from .errors import ReplicatorError, TargetUnavailable
from .feed import Change, Seq
from .schema import KindMismatch, Schema, TableShape, brief_error
from .state import CHECKPOINTS, DEAD_LETTERS, create_state_tables
from .targets import Target
from .values import PoisonValue

__all__ = ["TARGET_ERRORS", "Batch", "BatchResult", "Plan", "Sink"]

log = logging.getLogger(__name__)

#: What a target that went away raises (besides SQLAlchemy's own errors).
TARGET_ERRORS: tuple[type[BaseException], ...] = (
    sa.exc.SQLAlchemyError,
    OSError,
    TimeoutError,
)

_HEALTH_TIMEOUT = 15.0
#: Key in a pooled connection's ``info``: the sink's schema change count when that
#: connection's cached table types were last dropped (see ``Sink._copy``).
_COPY_SCHEMA_CHANGES = "couchdb_replicator.copy_schema_changes"
_ROWS_PER_SLICE = 250
#: Past this many ids a first backfill stops remembering them (about 100 bytes each).
_SEEN_LIMIT = 5_000_000

Action = Literal["upsert", "delete", "skip_untyped", "skip_unmapped", "poison"]


@dataclass
class Batch:
    """Changes to apply together and the feed position they bring the copy to."""

    changes: list[Change]
    seq: Seq
    #: The feed had nothing more to send after this batch: once committed, the copy
    #: equalled CouchDB (recorded as ``caught_up_at``).
    caught_up: bool = False


@dataclass
class Plan:
    """A batch with each change decided and its rows built: ready to write.

    Planning is the sink's CPU work; the runner plans the next batch while the target
    writes this one (see :meth:`Sink.plan`).
    """

    batch: Batch
    items: list[_Item]
    #: The sink's count of schema changes when planned: rows built before a table or
    #: column changed are built again.
    schema_changes: int


class _CopyFailed(sa.exc.SQLAlchemyError):
    """PostgreSQL's COPY of new rows failed (the driver's error is the cause)."""

    def __init__(self, table: str, cause: BaseException) -> None:
        super().__init__(f"COPY into {table!r} failed: {brief_error(cause)}")
        self.table = table


class _SchemaChangeNeeded(Exception):
    """Planning ahead met a document that needs a new table or column."""


@dataclass
class _Written:
    """What one transaction did, counted only once it committed."""

    counts: BatchCounts = field(default_factory=BatchCounts)
    letters: list[DeadLetter] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)
    upserted_ids: list[str] = field(default_factory=list)


@dataclass
class BatchResult:
    counts: BatchCounts
    dead_letters: list[DeadLetter] = field(default_factory=list)
    cleared: int = 0
    seconds: float = 0.0
    change_by_change: bool = False
    added: list[str] = field(default_factory=list)
    cleared_ids: list[str] = field(default_factory=list)

    def merge(self, written: _Written) -> None:
        self.counts.add(written.counts)
        self.dead_letters.extend(written.letters)
        self.added.extend(written.added)
        self.cleared_ids.extend(written.cleared)


@dataclass(slots=True)
class _Item:
    change: Change
    action: Action
    table: str | None = None
    row: tuple[Any, ...] | None = None
    error: str | None = None
    dropped: int = 0


class Sink:
    """Applies batches to one target for one source; see the module docstring."""

    def __init__(self, target: Target, schema: Schema, source: str) -> None:
        self.target = target
        self.schema = schema
        self.source = source
        self.checkpoints = CheckpointStore(source)
        self.dead_letters = DeadLetterStore(source)
        self._copied_types: set[str] = set()
        #: During a first backfill into an empty copy, the ids written so far. A
        #: document the run has not written cannot have a row in any table yet, so
        #: the per-table deletes (one index probe per id and table, a round trip each
        #: on a server) are only needed for ids in here. None: always delete.
        self._seen: set[str] | None = None
        #: Tables created, altered or restored so far (see :class:`Plan`).
        self._schema_changes = 0
        #: New rows go in with COPY (asyncpg on PostgreSQL), except into these tables,
        #: where it failed once (a column type without a binary codec, say).
        engine = target.engine
        self._copies = engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg"
        self._copy_refused: set[str] = set()

    async def start(self) -> Checkpoint:
        """Create the state tables and the copy's tables; the checkpoint to resume from."""
        await create_state_tables(self.target.engine)
        await self.schema.prepare(self.target, self.source)
        async with self.target.engine.begin() as conn:
            checkpoint = await self.checkpoints.ensure(conn)
            await self.dead_letters.load_ids(conn)
            if checkpoint.seq is None and not await self._any_rows(conn):
                self._seen = set()
        return checkpoint

    async def _any_rows(self, conn: AsyncConnection) -> bool:
        for shape in self.schema.tables.values():
            if (await conn.execute(sa.select(shape.table.c[shape.id_key]).limit(1))).first():
                return True
        return False

    def _may_hold(self, ids: Sequence[str]) -> list[str]:
        """The ids that may have a row somewhere in the copy (see ``_seen``)."""
        seen = self._seen
        return list(ids) if seen is None else [i for i in ids if i in seen]

    def _saw(self, written: _Written) -> None:
        seen = self._seen
        if seen is None:
            return
        seen.update(written.upserted_ids)
        if len(seen) > _SEEN_LIMIT:
            self._seen = None  # from now on, always look in every table

    # -- planning (no I/O except schema changes) --------------------------------------------

    def _classify(self, change: Change) -> _Item:
        if change.deleted:
            return _Item(change, "delete")
        doc = change.doc
        if doc is None:
            # Without the document there is nothing to copy; CouchDB sends it with
            # include_docs unless the document vanished meanwhile (a later row deletes it).
            return _Item(change, "skip_untyped")
        table = table_of(doc)
        if table is None:
            return _Item(change, "skip_untyped")
        if table in self._copied_types:
            return _Item(change, "upsert", table=table)
        problem = self.schema.problem_with_type(table)
        if problem is not None:
            return _Item(change, "poison", table=table, error=problem)
        if not self.schema.copies(table):
            return _Item(change, "skip_unmapped", table=table)
        if table in self.schema.tables:
            # Its table exists: the verdict cannot change any more (a backfill asks
            # this once per document, with a handful of distinct types).
            self._copied_types.add(table)
        return _Item(change, "upsert", table=table)

    async def plan(self, batch: Batch, *, change_schema: bool = True) -> Plan | None:
        """Decide each change of ``batch`` and build its rows, writing nothing.

        With ``change_schema=False`` (planning ahead while another batch is being
        written) a batch that needs a new table or column is not planned (None): DDL
        must wait for that transaction to end.
        """
        before = self._schema_changes
        try:
            items = await self._plan(batch.changes, change_schema=change_schema)
        except _SchemaChangeNeeded:
            return None
        if not change_schema and self._schema_changes != before:
            return None  # a table changed under the plan: plan again when it is used
        return Plan(batch, items, self._schema_changes)

    async def _plan(self, changes: Sequence[Change], *, change_schema: bool = True) -> list[_Item]:
        # The last change of each id wins (a later key overwrites an earlier value).
        latest = {change.id: change for change in changes}
        items = [self._classify(c) for c in latest.values()]
        groups: dict[str, list[_Item]] = {}
        for item in items:
            if item.action == "upsert":
                assert item.table is not None
                groups.setdefault(item.table, []).append(item)
        for table, group in groups.items():
            await self._build_rows(table, group, change_schema=change_schema)
        return items

    async def _evolve(self, table: str, docs: list[Any], *, allowed: bool) -> dict[str, str]:
        if not allowed:
            raise _SchemaChangeNeeded(table)
        # Counted before and after: a plan made while the change was under way is stale.
        self._schema_changes += 1
        try:
            return await self.schema.evolve(table, docs)
        except TARGET_ERRORS as exc:
            # The schema's own error handling met the outage again (it looks up what a
            # failed ALTER left): the batch waits for the target like a failed write.
            await self._require_healthy(exc)
            raise
        finally:
            self._schema_changes += 1

    async def _build_rows(self, table: str, group: list[_Item], *, change_schema: bool) -> None:
        schema = self.schema
        if table not in schema.tables:
            failures = await self._evolve(
                table, [i.change.doc for i in group if i.change.doc], allowed=change_schema
            )
            await self._poison_or_unavailable(group, failures)
        for attempt in range(2):
            shape = schema.tables.get(table)
            if shape is None:
                return  # every document was made a dead letter by evolve
            final = attempt == 1 or not schema.infers
            needs_schema = False
            for start in range(0, len(group), _ROWS_PER_SLICE):
                if self._rows_for(shape, group[start : start + _ROWS_PER_SLICE], final=final):
                    needs_schema = True
                    break
                # Let the feed task read the next page meanwhile: the server then
                # prepares it while this batch is written.
                await asyncio.sleep(0)
            if not needs_schema:
                return
            failures = await self._evolve(
                table,
                [i.change.doc for i in group if i.action == "upsert" and i.change.doc],
                allowed=change_schema,
            )
            await self._poison_or_unavailable(group, failures)

    def _rows_for(self, shape: TableShape, group: list[_Item], *, final: bool) -> bool:
        """Build rows; True when the inferred schema must change first (and not final)."""
        for item in group:
            if item.action != "upsert":
                continue
            assert item.change.doc is not None
            try:
                row, missing = shape.row(item.change.doc)
            except KindMismatch as exc:
                if not final:
                    return True
                item.action, item.error = "poison", f"field {getattr(exc, 'field', '?')!r}: {exc}"
                continue
            except PoisonValue as exc:
                item.action, item.error = "poison", str(exc)
                continue
            if (
                missing
                and self.schema.infers
                and not final
                and any(self.schema.field_problem(shape, name) is None for name in missing)
            ):
                return True
            if missing:
                shape.note_dropped(missing)
            item.row, item.dropped = row, len(missing)
        return False

    async def _poison_or_unavailable(self, group: list[_Item], failures: dict[str, str]) -> None:
        if not failures:
            return
        # A failed CREATE/ALTER says nothing about the documents if the target is down.
        await self._require_healthy(RuntimeError(next(iter(failures.values()))))
        for item in group:
            reason = failures.get(item.change.id)
            if reason is not None and item.action == "upsert":
                item.action, item.error = "poison", reason

    # -- writing ----------------------------------------------------------------------------

    async def apply(self, batch: Batch, plan: Plan | None = None) -> BatchResult:
        """Apply a batch and move the checkpoint to ``batch.seq``, atomically.

        ``plan``: the batch planned earlier (:meth:`plan`); planned again here if the
        schema changed since.
        """
        started = time.perf_counter()
        if plan is not None and plan.batch is batch and plan.schema_changes == self._schema_changes:
            items = plan.items
        else:
            items = await self._plan(batch.changes)
        result = BatchResult(counts=BatchCounts())
        try:
            async with self.target.engine.begin() as conn:
                written = await self._write(conn, items, batch.seq, insert_new=True)
                await self.checkpoints.advance(
                    conn, batch.seq, written.counts, caught_up=batch.caught_up
                )
            result.merge(written)
            self._saw(written)
        except TARGET_ERRORS as exc:
            await self._require_healthy(exc)
            await self._require_tables()
            if isinstance(exc, _CopyFailed):
                log.warning("%s; new rows of that table are inserted from now on", exc)
                self._copy_refused.add(exc.table)
            log.warning(
                "a batch of %d changes failed (%s); retrying it change by change",
                len(items),
                brief_error(exc),
            )
            result = BatchResult(counts=BatchCounts(), change_by_change=True)
            await self._write_singly(items, batch, result)
        self.dead_letters.committed(result.added, result.cleared_ids)
        result.cleared = len(result.cleared_ids)
        result.seconds = time.perf_counter() - started
        return result

    async def _write(
        self,
        conn: AsyncConnection,
        items: Sequence[_Item],
        batch_seq: Seq,
        *,
        insert_new: bool = False,
    ) -> _Written:
        """Delete, upsert and (un)dead-letter ``items`` in the open transaction.

        ``insert_new``: rows of ids known to be in no table (see ``_seen``) are inserted,
        not upserted. Should one exist after all, the batch fails and is written again
        change by change, with upserts.

        Returns what was done; the caller counts it once the transaction committed.
        """
        written = _Written()
        counts = written.counts
        destination: dict[str, str | None] = {}
        rows: dict[str, list[tuple[Any, ...]]] = {}
        fresh: dict[str, list[tuple[Any, ...]]] = {}
        seen = self._seen if insert_new else None
        for item in items:
            change = item.change
            if item.action == "upsert" and item.row is not None:
                assert item.table is not None
                destination[change.id] = item.table
                into = rows if seen is None or change.id in seen else fresh
                into.setdefault(item.table, []).append(item.row)
                counts.upserted += 1
                counts.fields_dropped += item.dropped
                continue
            destination[change.id] = None
            if item.action == "delete":
                counts.deleted += 1
            elif item.action == "skip_untyped":
                counts.skipped_untyped += 1
            elif item.action == "skip_unmapped":
                counts.skipped_unmapped += 1
            else:
                counts.dead_lettered += 1
                written.letters.append(self._letter(item, batch_seq))
        held = self._may_hold(list(destination))
        for name, shape in self.schema.tables.items():
            elsewhere = [doc_id for doc_id in held if destination[doc_id] != name]
            for sql, parameters in shape.delete.batches(shape.stored_ids(elsewhere)):
                await conn.exec_driver_sql(sql, parameters)
        for name, table_rows in rows.items():
            upsert = self.schema.tables[name].upsert
            await conn.exec_driver_sql(upsert.sql, upsert.parameters(table_rows))
        for name, table_rows in fresh.items():
            shape = self.schema.tables[name]
            if self._copies and name not in self._copy_refused:
                await self._copy(conn, shape, table_rows)
            else:
                upsert = shape.upsert
                await conn.exec_driver_sql(upsert.insert_sql, upsert.parameters(table_rows))
        written.upserted_ids = [doc_id for doc_id, table in destination.items() if table]
        written.added = await self.dead_letters.add(conn, written.letters)
        written.cleared = await self.dead_letters.clear(
            conn, (i.change.id for i in items if i.action != "poison")
        )
        return written

    async def _copy(
        self, conn: AsyncConnection, shape: TableShape, rows: list[tuple[Any, ...]]
    ) -> None:
        """Load rows known to be new with PostgreSQL's COPY, in the batch's transaction.

        A first backfill is mostly such rows: COPY costs the server half the CPU of an
        INSERT per row, and the replicator a third less. The rows are the upsert's
        parameter rows, already in the form asyncpg encodes.
        """
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        if raw.info.get(_COPY_SCHEMA_CHANGES) != self._schema_changes:
            # asyncpg encodes COPY rows by the column types it cached for the table; after
            # a column was widened they are stale, and binary COPY stores whatever bytes
            # it is sent, unchecked: the wrong type would make wrong values, silently.
            await driver.reload_schema_state()
            raw.info[_COPY_SCHEMA_CHANGES] = self._schema_changes
        if not driver.is_in_transaction():
            # SQLAlchemy's asyncpg adapter begins its transaction with the first statement.
            await conn.exec_driver_sql("SELECT 1")
        table = shape.table
        try:
            await driver.copy_records_to_table(
                table.name,
                schema_name=table.schema,
                columns=[table.c[key].name for key in shape.upsert.keys],
                records=rows,
            )
        except Exception as exc:
            raise _CopyFailed(table.name, exc) from exc

    @staticmethod
    def _letter(item: _Item, batch_seq: Seq) -> DeadLetter:
        change = item.change
        return DeadLetter(
            id=change.id,
            rev=change.rev,
            seq=change.seq if change.seq is not None else batch_seq,
            table=item.table,
            error=item.error or "unknown error",
        )

    async def _write_singly(
        self, items: Sequence[_Item], batch: Batch, result: BatchResult
    ) -> None:
        """Each change in its own transaction; one the target refuses is a dead letter.

        A crash in here replays the whole batch from the unchanged checkpoint: every
        step is idempotent, so that is harmless.
        """
        engine = self.target.engine
        for item in items:
            try:
                async with engine.begin() as conn:
                    written = await self._write(conn, [item], batch.seq)
            except TARGET_ERRORS as exc:
                await self._require_healthy(exc)
                await self._require_tables()
                item.action, item.row = "poison", None
                item.error = f"the target refused the change: {brief_error(exc)}"
                try:
                    # Its rows go too: the copy holds no stale version of a dead letter.
                    async with engine.begin() as conn:
                        written = await self._write(conn, [item], batch.seq)
                except TARGET_ERRORS as again:
                    # Even removing its old rows fails (say, a foreign key refers to
                    # them): keep them and record why.
                    await self._require_healthy(again)
                    written = _Written()
                    written.counts.dead_lettered = 1
                    written.letters.append(self._letter(item, batch.seq))
                    async with engine.begin() as conn:
                        written.added = await self.dead_letters.add(conn, written.letters)
            result.merge(written)
            self._saw(written)
        async with engine.begin() as conn:
            await self.checkpoints.advance(
                conn, batch.seq, result.counts, caught_up=batch.caught_up
            )

    async def mark_caught_up(self) -> None:
        async with self.target.engine.begin() as conn:
            await self.checkpoints.mark_caught_up(conn)

    # -- health -------------------------------------------------------------------------

    async def healthy(self) -> bool:
        """Whether the target answers a trivial query now."""
        try:
            async with asyncio.timeout(_HEALTH_TIMEOUT):
                async with self.target.engine.connect() as conn:
                    await conn.execute(sa.text("SELECT 1"))
        except TARGET_ERRORS:
            return False
        return True

    async def _require_tables(self) -> None:
        """A batch failed on a healthy target: make sure no table was dropped under us.

        Rows the target refuses become dead letters, but a table someone dropped would
        turn every document into one. Instead the table is created again and the batch
        retried (its old rows are gone: ``verify --repair`` restores them); the
        replicator's own state tables gone is an error: the checkpoint went with them.
        """
        async with self.target.engine.connect() as conn:
            present = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        lost_state = [t.name for t in (CHECKPOINTS, DEAD_LETTERS) if t.name not in present]
        if lost_state:
            raise ReplicatorError(
                f"the replicator's table(s) {', '.join(lost_state)} were dropped from "
                f"{self.target.display}: the checkpoint is lost; drop the copy's tables and "
                "run again to copy everything anew"
            )
        missing = {name for name in self.schema.tables if name not in present}
        if missing:
            log.warning(
                "table(s) %s were dropped from the target: creating them again (their rows "
                "are lost until `couchdb-replicator verify --repair`)",
                ", ".join(sorted(missing)),
            )
            self._schema_changes += 1
            try:
                await self.schema.restore(missing)
            finally:
                self._schema_changes += 1
            self._seen = None  # rows may now be anywhere a repair puts them
            raise TargetUnavailable(
                f"table(s) {', '.join(sorted(missing))} disappeared from the target"
            )

    async def _require_healthy(self, cause: BaseException) -> None:
        if not await self.healthy():
            raise TargetUnavailable(
                f"the target {self.target.display} is unavailable: {brief_error(cause)}"
            ) from cause
