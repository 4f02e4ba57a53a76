"""``couchdb-replicator verify``: compare the copy with CouchDB, and repair it (CouchDB wins).

What is compared
----------------

The **default check** lists every live document's ``(id, rev)`` from ``_all_docs`` (no
bodies) and every row's ``(id, rev)`` from the copy's tables, both in id order, a chunk
(``--chunk-size``, 1,000) at a time, and merges the two lists. An id whose row holds
CouchDB's current revision, in one table only, is taken as right. Every other id — no
row, a row on the copy side only, another revision, rows in several tables, or a table
without a ``rev`` column — is looked up on both sides by key (``_all_docs`` with
``include_docs`` for the chunk's suspects, ``WHERE id IN`` on the copy, the dead-letter
table) and classified exactly as the sink would route it: by its ``type`` into a table,
through the same conversions, or into no table at all. So the default check finds rows
missing, extra (deleted in CouchDB, moved to another type, never there), stale (another
revision) and, for every id it looks up, drifted values. It does **not** read the values
of rows whose revision matches: a row changed in the copy without changing its ``rev``
is found only by ``--deep``.

``--deep`` also reads every document (``_all_docs?include_docs=true`` in chunks) and every
row whose revision matches, converts each field as the sink does
(:mod:`couchdb_replicator.values`, the inferred kinds) and compares the values.

Documents without ``type`` (or of a type ``--metadata`` does not copy) belong in no
table: the default check fetches them on every run (to see their type), so its cost grows
with their number. Dead letters (documents the copy cannot hold) are reported as such,
never as drift.

Cost and memory
---------------

One ``_all_docs`` page and one page of the copy's keys are held at a time, plus the ids
still to look up (at most a chunk): memory does not grow with the database. Reads are two
ordered scans and, for suspect ids only, lookups by key; CouchDB's next page is fetched
while the current one is compared. See :mod:`couchdb_replicator.verify_copy` for how each
backend is read in id order.

Repair
------

With ``--repair`` every finding is repaired as soon as its chunk is classified, by
:mod:`couchdb_replicator.verify_repair`: the sink's own writes, under a lock that keeps
the live replicator out for the transaction, only if CouchDB still has the revision the
repair was built from and no row holds a later revision. The checkpoint is never moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import gc
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from sqlalchemy_couchdb.dbapi import AsyncCouchDBClient, ConnectionSettings
from sqlalchemy_couchdb.dbapi.exceptions import CouchDBError
from sqlalchemy_couchdb.mapping import (
    ID_COLUMN,
    REV_COLUMN,
    document_to_row,
    is_design_document,
    table_of,
)

from .checkpoint import CheckpointStore
from .errors import ConfigurationError, ReplicatorError, SourceError
from .feed import Change
from .schema import InferredSchema, KindMismatch, MetadataSchema, Schema, TableShape, brief_error
from .sink import Sink
from .state import CHECKPOINTS, source_key
from .targets import Target, create_target_engine
from .values import PoisonValue
from .verify_copy import CopyReader, CopyRow, DeadLetterEntry
from .verify_merge import SINGLE_PRECISION, CopyKey, CouchKey, MergeJoin, Pair, same_value
from .verify_repair import CouchState, Repairer, RepairItem, couch_states
from .verify_report import DRIFT_KINDS, VerifyReport

if TYPE_CHECKING:
    from .metrics import Metrics
    from .runner import Replicator

__all__ = [
    "PeriodicVerify",
    "Verifier",
    "VerifyOptions",
    "parse_duration",
    "verify_async",
]

log = logging.getLogger(__name__)

#: How many times a repair dropped because CouchDB changed meanwhile is tried again.
_REPAIR_ROUNDS = 3
#: On PouchDB Server ``_all_docs`` stops early without an end key (even before U+0800).
_POUCHDB_END = "\uffff" * 4
#: Pages between full garbage collections (see ``_CouchPages.next``).
_COLLECT_EVERY = 5


@dataclass
class VerifyOptions:
    deep: bool = False
    repair: bool = False
    #: Ids per ``_all_docs`` page, per page of the copy, and per lookup or repair batch.
    chunk_size: int = 1000
    #: Ids listed per table and kind in the report.
    show: int = 10


Route = Literal["upsert", "skip", "poison"]


@dataclass
class _Expected:
    """The row the sink would write for a document: column key -> value."""

    values: dict[str, Any] = field(default_factory=dict)
    #: Why the copy cannot hold the document (it is the replicator's dead letter).
    poison: str | None = None
    #: A field the table has no column (or too narrow a column) for, where the sink would
    #: have made one: the row cannot equal the document.
    unheld: bool = False


class Verifier:
    """One check of a copy against its source; see the module docstring."""

    def __init__(
        self,
        source: ConnectionSettings,
        target: Target,
        schema: Schema,
        options: VerifyOptions | None = None,
        *,
        on_repaired: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.schema = schema
        self.options = options or VerifyOptions()
        self.on_repaired = on_repaired
        self.report = VerifyReport(
            source=source.redacted_url(),
            target=target.display,
            deep=self.options.deep,
            repair=self.options.repair,
            show=self.options.show,
        )
        self._key = source_key(source)
        self._reader: CopyReader | None = None
        self._client: AsyncCouchDBClient | None = None
        self._repairer: Repairer | None = None
        self._rules: dict[str, dict[str, tuple[float, int | None]]] = {}
        #: Ids that came out of the merge on one side only but are on both (the orders
        #: disagreed) and were looked up: their other half is skipped. Only such ids.
        self._split: set[str] = set()

    async def run(self) -> VerifyReport:
        started = time.monotonic()
        try:
            async with AsyncCouchDBClient(self.source) as client:
                self._client = client
                self.schema.use_source(client)
                await self._prepare()
                if self._reader is not None and self.options.repair:
                    sink = Sink(self.target, self.schema, self._key)
                    self._repairer = Repairer(
                        sink, self._reader, client, on_written=self.on_repaired
                    )
                await self._compare(client)
        except CouchDBError as exc:
            raise SourceError(
                f"CouchDB at {self.source.redacted_url()} failed: {brief_error(exc)}"
            ) from exc
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise ReplicatorError(
                f"cannot verify the target {self.target.display}: {brief_error(exc)}"
            ) from exc
        finally:
            self.report.seconds = time.monotonic() - started
        return self.report

    async def _prepare(self) -> None:
        async with self.target.engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
            checkpoint = None
            if CHECKPOINTS.name in names:
                checkpoint = await CheckpointStore(self._key).load(conn)
        if checkpoint is None:
            raise ReplicatorError(
                f"the target {self.target.display} holds no copy of "
                f"{self.source.redacted_url()} (no checkpoint for it): run "
                "`couchdb-replicator run` first"
            )
        if checkpoint.seq is None:
            log.warning("the replicator has copied nothing yet: every document shows up as missing")
        await self.schema.prepare(self.target, self._key)
        self._reader = CopyReader(self.target, self.schema, self._key, self.options.chunk_size)
        await self._reader.prepare()
        for name in self.schema.tables:
            self.report.table(name)

    # -- the merge --------------------------------------------------------------------------

    async def _compare(self, client: AsyncCouchDBClient) -> None:
        assert self._reader is not None
        size = self.options.chunk_size
        end = None if "couchdb" in await client.server_info() else _POUCHDB_END
        couch = _CouchPages(client, size, include_docs=self.options.deep, endkey=end)
        copy_pages = self._reader.ordered_keys().__aiter__()
        merge = MergeJoin()
        suspects: list[tuple[str, bool]] = []  # (id, seen on one side only)
        matched: list[tuple[CouchKey, CopyKey]] = []
        try:
            while True:
                for pair in merge.pairs():
                    self._triage(pair, suspects, matched)
                    if len(suspects) >= size:
                        await self._resolve(suspects)
                        suspects = []
                    if len(matched) >= size:
                        suspects.extend((i, False) for i in await self._compare_values(matched))
                        matched = []
                if merge.done:
                    break
                if merge.needs_couch:
                    keys, last = await couch.next()
                    merge.add_couch(keys, last=last)
                if merge.needs_copy:
                    try:
                        merge.add_copy(await anext(copy_pages))
                    except StopAsyncIteration:
                        merge.add_copy((), last=True)
            if matched:
                suspects.extend((i, False) for i in await self._compare_values(matched))
            for start in range(0, len(suspects), size):
                await self._resolve(suspects[start : start + size])
        finally:
            await couch.close()
            with contextlib.suppress(Exception):
                await copy_pages.aclose()  # type: ignore[attr-defined]
        self.report.disorder = merge.disorder

    def _triage(
        self,
        pair: Pair,
        suspects: list[tuple[str, bool]],
        matched: list[tuple[CouchKey, CopyKey]],
    ) -> None:
        """Settle a pair from its keys alone, or queue it for a closer look."""
        report = self.report
        report.rows += len(pair.rows)
        couch = pair.couch
        if couch is None:
            suspects.append((pair.id, True))
            return
        report.documents += 1
        if not pair.rows:
            if couch.doc is not None and self._route(couch.doc)[0] == "skip":
                report.not_copied += 1  # --deep has the body: no row was due
                return
            suspects.append((pair.id, True))
            return
        if len(pair.rows) == 1 and pair.rows[0].rev == couch.rev:
            if self.options.deep:
                matched.append((couch, pair.rows[0]))
            return
        if len(pair.rows) == 1 and self._has_no_rev(pair.rows[0].table) and couch.doc:
            matched.append((couch, pair.rows[0]))  # no rev to compare: the values tell
            return
        suspects.append((pair.id, False))

    def _has_no_rev(self, table: str) -> bool:
        shape = self.schema.tables.get(table)
        return shape is not None and shape.rev_key is None

    async def _compare_values(self, matched: Sequence[tuple[CouchKey, CopyKey]]) -> list[str]:
        """``--deep``: the ids among ``matched`` whose row differs from its document."""
        assert self._reader is not None
        by_table: dict[str, list[CouchKey]] = {}
        for couch, key in matched:
            by_table.setdefault(key.table, []).append(couch)
        differ: list[str] = []
        for table, docs in by_table.items():
            rows = await self._reader.rows([c.id for c in docs], tables=[table])
            shape = self.schema.tables[table]
            for couch in docs:
                found = rows.get(couch.id)
                doc = couch.doc
                if not found or doc is None or not self._row_is_document(shape, found[0], doc):
                    differ.append(couch.id)
        return differ

    # -- looking ids up ---------------------------------------------------------------------

    async def _resolve(
        self,
        suspects: Sequence[tuple[str, bool]],
        round_: int = 0,
        findings: Mapping[str, Any] | None = None,
    ) -> None:
        """Look the suspects' ids up on both sides now; report (first round) and repair."""
        assert self._reader is not None and self._client is not None
        one_sided = Counter(doc_id for doc_id, alone in suspects if alone)
        ids = list(dict.fromkeys(doc_id for doc_id, _ in suspects))
        rows = await self._reader.rows(ids)
        states, docs = await couch_states(self._client, ids, include_docs=True)
        dead = await self._reader.dead_letters(ids)
        items: list[RepairItem] = []
        for doc_id in ids:
            if doc_id in one_sided:
                if doc_id in self._split:
                    self._split.discard(doc_id)  # its other half was looked up already
                    continue
                state = states[doc_id]
                alive = not (state.deleted or state.missing)
                if one_sided[doc_id] == 1 and rows.get(doc_id) and alive:
                    self._split.add(doc_id)  # on both sides: the other half comes later
            item = self._classify(
                doc_id, states[doc_id], docs.get(doc_id), rows.get(doc_id, []), dead.get(doc_id)
            )
            if item is None:
                if round_ and findings is not None:
                    self.report.superseded += 1  # the replicator caught up meanwhile
                continue
            if round_ == 0:
                for table, kind in item.findings:
                    self.report.add(table, kind, doc_id)
            elif findings is not None:
                item.findings = findings[doc_id]  # credit what was reported
            items.append(item)
        if self._repairer is None or not items:
            return
        outcome = await self._repairer.repair(items)
        for item in outcome.repaired:
            for table, kind in item.findings:
                self.report.add_repaired(table, kind)
        for item in outcome.ahead + outcome.unholdable:
            self.report.add_unrepaired(item.id)
        if outcome.superseded:
            if round_ + 1 < _REPAIR_ROUNDS:
                again = {i.id: i.findings for i in outcome.superseded}
                await self._resolve([(i, False) for i in again], round_ + 1, again)
            else:
                self.report.superseded += len(outcome.superseded)

    def _classify(
        self,
        doc_id: str,
        state: CouchState,
        doc: dict[str, Any] | None,
        rows: list[CopyRow],
        dead: DeadLetterEntry | None,
    ) -> RepairItem | None:
        """What is wrong with one id (None: nothing), as the repair that fixes it."""
        report = self.report
        alive = not state.deleted and not state.missing and doc is not None
        if not alive or is_design_document(doc_id):
            # Deleted, never there, or a design document (never copied): no row is due.
            if not rows:
                return None
            change = Change(doc_id, state.rev, None, True, None)
            return RepairItem(change, state, [(r.table, "extra") for r in rows])
        assert doc is not None
        route, table, _problem = self._route(doc)
        expected: _Expected | None = None
        shape = self.schema.tables.get(table) if table is not None else None
        if route == "upsert" and shape is not None:
            expected = self._expect(shape, doc)
        if dead is not None or route == "poison" or (expected and expected.poison):
            # The replicator's dead letter (or about to be): reported, not drift.
            report.add_dead_letter((dead.table if dead else None) or table or "?", doc_id)
            return None
        findings: list[tuple[str, str]] = []
        own: CopyRow | None = None
        for row in rows:
            if route == "upsert" and row.table == table:
                own = row
            else:
                findings.append((row.table, "extra"))
        if route == "upsert":
            assert table is not None
            if own is None:
                findings.append((table, "missing"))
            elif shape is not None and shape.rev_key is not None and own.rev != state.rev:
                findings.append((table, "stale"))
            elif shape is not None and not self._row_is_document(shape, own, doc, expected):
                findings.append((table, "drifted"))
        elif not findings:
            report.not_copied += 1
        if not findings:
            return None
        return RepairItem(Change(doc_id, state.rev, None, False, doc), state, findings)

    # -- routing and values, as the sink does them --------------------------------------------

    def _route(self, doc: Mapping[str, Any]) -> tuple[Route, str | None, str | None]:
        """Where the sink puts a document (mirrors ``Sink._classify``)."""
        table = table_of(doc)
        if table is None:
            return "skip", None, None
        problem = self.schema.problem_with_type(table)
        if problem is not None:
            return "poison", table, problem
        if not self.schema.copies(table):
            return "skip", table, None
        return "upsert", table, None

    def _expect(self, shape: TableShape, doc: Mapping[str, Any]) -> _Expected:
        """The values the sink's converters make of ``doc`` for ``shape``'s columns."""
        expected = _Expected()
        try:
            shape.stored_id(doc["_id"])
        except PoisonValue as exc:
            expected.poison = f"id: {exc}"
            return expected
        for name, slot in shape.slots.items():
            value = doc.get(name)
            if value is not None and slot.convert is not None and type(value) is not slot.passes:
                try:
                    value = slot.convert(value)
                except KindMismatch:
                    expected.unheld = True  # the sink would widen the column first
                    continue
                except PoisonValue as exc:
                    expected.poison = f"field {name!r}: {exc}"
                    return expected
            expected.values[slot.key] = value
        if self.schema.infers:
            for name, value in document_to_row(doc).items():
                if name in (ID_COLUMN, REV_COLUMN) or value is None or name in shape.slots:
                    continue
                if self.schema.field_problem(shape, name) is None:
                    expected.unheld = True  # the sink would have added the column
        return expected

    def _row_is_document(
        self,
        shape: TableShape,
        row: CopyRow,
        doc: Mapping[str, Any],
        expected: _Expected | None = None,
    ) -> bool:
        if shape.rev_key is not None and row.rev != doc.get("_rev"):
            return False
        if expected is None:
            expected = self._expect(shape, doc)
        if expected.poison is not None or expected.unheld:
            return False
        rules = self._column_rules(shape)
        for key, value in expected.values.items():
            tolerance, scale = rules.get(key, (0.0, None))
            stored = row.values.get(key)
            # NUMERIC(p, s) keeps s decimals, rounded half-up (PostgreSQL, MySQL) or
            # half-even through a float (SQLite): within half a unit of the last place.
            if (
                scale is not None
                and isinstance(value, decimal.Decimal)
                and isinstance(stored, decimal.Decimal)
                and abs(value - stored) <= decimal.Decimal(1).scaleb(-scale) / 2
            ):
                continue
            if not same_value(value, stored, float_tolerance=tolerance):
                log.debug(
                    "%s %r: column %r holds %r, the document gives %r",
                    shape.name,
                    row.id,
                    key,
                    stored,
                    value,
                )
                return False
        return True

    def _column_rules(self, shape: TableShape) -> dict[str, tuple[float, int | None]]:
        """Per column: the float tolerance of a single-precision type, a NUMERIC's scale."""
        rules = self._rules.get(shape.name)
        if rules is None:
            rules = self._rules[shape.name] = {}
            backend = self.target.backend
            for column in shape.table.columns:
                type_ = column.type
                tolerance = 0.0
                scale = None
                if isinstance(type_, sa.Float) and not isinstance(type_, sa.Double):
                    precision = type_.precision
                    single = isinstance(type_, sa.REAL) or (
                        precision is not None and precision <= 24
                    )
                    if single or (backend == "mysql" and precision is None):
                        tolerance = SINGLE_PRECISION
                elif isinstance(type_, sa.Numeric) and type_.scale is not None:
                    scale = type_.scale
                rules[column.key] = (tolerance, scale)
        return rules


class _CouchPages:
    """``_all_docs`` in pages of ``size``, the next one fetched while this one is used."""

    def __init__(
        self,
        client: AsyncCouchDBClient,
        size: int,
        *,
        include_docs: bool,
        endkey: str | None,
    ) -> None:
        self.client = client
        self.size = size
        self.include_docs = include_docs
        self.endkey = endkey
        self._task: asyncio.Task[tuple[list[CouchKey], str | None]] | None = None
        self._start: str | None = None
        self._pages = 0

    async def _fetch(self, start: str | None) -> tuple[list[CouchKey], str | None]:
        # One row more than a page: its id starts the next page (no skip, no guessing).
        answer = await self.client.all_docs(
            startkey=start,
            endkey=self.endkey,
            limit=self.size + 1,
            include_docs=self.include_docs,
        )
        rows = answer.get("rows", [])
        following = rows[self.size]["id"] if len(rows) > self.size else None
        keys = [
            CouchKey(r["id"], r["value"]["rev"], r.get("doc"))
            for r in rows[: self.size]
            if not is_design_document(r["id"])
        ]
        return keys, following

    async def next(self) -> tuple[list[CouchKey], bool]:
        """The next page, and whether it is the last."""
        self._pages += 1
        if self._pages % _COLLECT_EVERY == 0:
            # Every httpx response is in a reference cycle (response <-> stream) and holds
            # its body: dead pages wait for a full collection, which the interpreter runs
            # ever more rarely as the check goes on. Collecting every few pages keeps the
            # check's memory the same for any size of database.
            gc.collect()
        if self._task is None:
            self._task = asyncio.create_task(self._fetch(self._start))
        keys, following = await self._task
        self._task = None
        if following is None:
            return keys, True
        self._start = following
        self._task = asyncio.create_task(self._fetch(following))
        return keys, False

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None


# -- the Python API -------------------------------------------------------------------------


async def verify_async(
    source: str,
    target: str,
    *,
    metadata: sa.MetaData | None = None,
    repair: bool = False,
    deep: bool = False,
    chunk_size: int = 1000,
    show: int = 10,
) -> VerifyReport:
    """Compare (and with ``repair`` fix) the copy at ``target`` of ``source``.

    ``report.equal`` says whether the copy matched; ``report.ok`` whether it matches now.
    """
    try:
        settings = ConnectionSettings.from_url(source)
    except Exception as exc:
        raise ConfigurationError(f"bad source URL: {exc}") from None
    schema: Schema = MetadataSchema(metadata) if metadata is not None else InferredSchema()
    copy = create_target_engine(target)
    try:
        options = VerifyOptions(deep=deep, repair=repair, chunk_size=chunk_size, show=show)
        return await Verifier(settings, copy, schema, options).run()
    finally:
        await copy.dispose()


# -- inside the daemon ----------------------------------------------------------------------

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``30s``, ``5m``, ``1h``, ``1d`` or ``500ms``; ValueError otherwise."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 1h or 90 (seconds)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[(match.group(2) or "s").lower()]
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration must be more than 0")
    return seconds


def fresh_schema(schema: Schema) -> Schema:
    """A schema of the same kind, for a check that must not share the daemon's state."""
    if isinstance(schema, MetadataSchema):
        return MetadataSchema(schema.metadata)
    return InferredSchema()


class PeriodicVerify:
    """``run --verify-every``: once the daemon has caught up, check (and with ``repair``
    fix) the copy every ``every`` seconds, and export the drift counts as metrics."""

    def __init__(self, replicator: Replicator, sink: Sink) -> None:
        options = replicator.options
        assert options.verify_every is not None
        self.replicator = replicator
        self.sink = sink
        self.every = options.verify_every
        self.repair = options.verify_repair
        self.metrics: Metrics | None = replicator.metrics
        self.last: VerifyReport | None = None

    def _written(self, ids: list[str]) -> None:
        # The sink skips the cross-table deletes for ids it never wrote during a first
        # backfill; a row the repair wrote must not be one of those.
        seen = self.sink._seen
        if seen is not None:
            seen.update(ids)

    async def run(self) -> None:
        while True:
            while not self.replicator.following:
                await asyncio.sleep(min(1.0, self.every))
            try:
                await self.check()
            except Exception:
                # A bug must not end the checks silently (the daemon goes on without them).
                log.exception("periodic verify failed; the next check runs as planned")
                if self.metrics is not None:
                    self.metrics.record_verify({}, {}, 0.0, "failed")
            await asyncio.sleep(self.every)

    async def check(self) -> VerifyReport | None:
        replicator = self.replicator
        verifier = Verifier(
            replicator.source,
            replicator.target,
            fresh_schema(replicator.schema),
            VerifyOptions(repair=self.repair),
            on_repaired=self._written,
        )
        try:
            report = await verifier.run()
        except (ReplicatorError, CouchDBError, sa.exc.SQLAlchemyError, OSError) as exc:
            log.warning("periodic verify failed: %s", exc)
            if self.metrics is not None:
                self.metrics.record_verify({}, {}, 0.0, "failed")
            return None
        self.last = report
        line = report.lines()[-1]
        if report.equal:
            log.info("periodic verify: %s (%.1f s)", line, report.seconds)
        else:
            log.warning("periodic verify: %s (%.1f s)", line, report.seconds)
        if self.metrics is not None:
            drift = {
                (name, kind): table.found[kind]
                for name, table in report.tables.items()
                for kind in DRIFT_KINDS
            }
            repaired = {
                (name, kind): table.repaired[kind]
                for name, table in report.tables.items()
                for kind in DRIFT_KINDS
            }
            outcome = "equal" if report.equal else "repaired" if report.ok else "drift"
            self.metrics.record_verify(drift, repaired, report.seconds, outcome)
        return report
