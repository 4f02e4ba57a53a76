"""Statement execution: a translated plan turned into CouchDB requests.

Every statement runs as a sans-IO generator (see :mod:`.io`), so the sync and async
cursors share it. Reads page through ``_find`` and hand rows to the cursor page by page;
writes go through ``_bulk_docs`` in chunks; UPDATE and DELETE write with the revision
they read and, on a 409, re-read the document, re-check the WHERE and try again, so no
update is lost to a concurrent writer.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import sql
from ..mapping import (
    ID_COLUMN,
    TYPE_FIELD,
    decode_integer_id,
    document_to_row,
)
from ..sql import FindRequest
from .catalog import IndexDef
from .cursor import Outcome
from .exceptions import (
    BadRequest,
    Conflict,
    OperationalError,
    PreconditionFailed,
    ProgrammingError,
    error_class,
)
from .io import Header, Io, Rows
from .operations import DEFAULT_FIND_PAGE, BulkResult, FindPager, bulk_chunks, match_bulk_results
from .values import encode_parameters

if TYPE_CHECKING:
    from .connection import _ConnectionState

__all__ = ["UnenforcedConstraintWarning", "execute_statement", "sample_columns"]

#: Rounds of re-read and re-apply after 409 conflicts before giving up.
CONFLICT_ROUNDS = 100
#: Documents read to infer the columns of a table that was never declared.
SAMPLE_SIZE = 1000
_MIN_PAGE = 100


class UnenforcedConstraintWarning(UserWarning):
    """A UNIQUE, FOREIGN KEY or CHECK constraint that CouchDB cannot enforce was declared."""


def execute_statement(
    conn: _ConnectionState,
    operation: str,
    parameter_sets: Sequence[Mapping[str, Any] | Sequence[Any] | None],
) -> Io[Outcome]:
    if not isinstance(operation, str):
        raise ProgrammingError(f"a statement must be SQL text, not {type(operation).__name__}")
    plan = sql.compile_sql(operation)
    params = [encode_parameters(p) for p in parameter_sets] or [{}]
    if isinstance(plan, sql.SelectPlan):
        if len(params) > 1:
            raise ProgrammingError("executemany() cannot run a SELECT")
        return (yield from _select(conn, plan, params[0]))
    if isinstance(plan, sql.InsertPlan):
        return (yield from _insert(conn, plan, params))
    if isinstance(plan, sql.UpdatePlan | sql.DeletePlan):
        return (yield from _update_or_delete(conn, plan, params))
    if isinstance(plan, sql.CreateTablePlan):
        return (yield from _create_table(conn, plan))
    if isinstance(plan, sql.DropTablePlan):
        return (yield from _drop_table(conn, plan))
    if isinstance(plan, sql.CreateIndexPlan):
        return (yield from _create_index(conn, plan))
    if isinstance(plan, sql.DropIndexPlan):
        dropped = yield from conn.catalog.drop_index(plan.name, plan.table)
        if not dropped and not plan.if_exists:
            raise ProgrammingError(f"no such index: {plan.name!r}")
        return Outcome()
    raise ProgrammingError(f"cannot execute a {type(plan).__name__}")


# -- reading ---------------------------------------------------------------------------------


def _pager(conn: _ConnectionState, request: FindRequest, wanted: int | None) -> FindPager:
    """Pages of one request; reading stops when the run is done, not at a fixed cap.

    ``request.limit`` is the size of the first page that can answer the query when the
    selector is exact; it is no cap, because CouchDB's ICU equality can still return a
    document the client's exact WHERE drops, and then the next page must be read.
    """
    page_size = DEFAULT_FIND_PAGE
    if request.limit is not None:
        page_size = max(1, min(page_size, request.limit))
    elif wanted is not None:
        # A small LIMIT still reads generous pages: the client-side WHERE may drop rows.
        page_size = min(page_size, max(wanted, _MIN_PAGE))
    return FindPager(
        conn.settings.database or "",
        request.selector,
        fields=request.fields,
        sort=request.sort,
        use_index=request.use_index,
        page_size=page_size,
        skip=request.skip,
    )


class _IndexRefused(Exception):
    """A ``_find`` planned with the cached indexes was refused before any row was read."""


def _find_page(call: Any, request: FindRequest, replan: bool) -> Io[Any]:
    """One page of a ``_find``; see :class:`_IndexRefused` for when ``replan`` is set.

    The planner chose ``use_index``/``sort`` from the indexes this process knows; another
    process may have dropped one since (CouchDB then answers 400 ``no_usable_index``,
    PouchDB Server a 400 without a code). The caller forgets the indexes and plans the
    statement again, once.
    """
    try:
        return (yield call)
    except BadRequest as err:
        if replan and (request.use_index is not None or request.sort is not None):
            raise _IndexRefused from err
        raise


def _read_all(
    conn: _ConnectionState, requests: Iterable[FindRequest], *, replan: bool = False
) -> Io[dict[str, Any]]:
    """Every document the requests select, by id (a document two requests share once)."""
    docs: dict[str, Any] = {}
    for request in requests:
        pager = _pager(conn, request, None)
        while (call := pager.next_call()) is not None:
            for doc in pager.accept((yield from _find_page(call, request, replan))):
                docs.setdefault(doc["_id"], doc)
    return docs


def _integer_ids(table: str, docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Documents of a table whose ``id`` column is INTEGER, with ``_id`` read as an int."""
    return [{**doc, "_id": decode_integer_id(table, doc["_id"])} for doc in docs]


def _integer_id(conn: _ConnectionState, table: str | None) -> Io[bool]:
    if table is None:
        return False
    return (yield from conn.catalog.integer_id(table))


def _select(conn: _ConnectionState, plan: sql.SelectPlan, params: Any) -> Io[Outcome]:
    try:
        return (yield from _select_once(conn, plan, params, replan=True))
    except _IndexRefused:
        conn.catalog.invalidate()
        return (yield from _select_once(conn, plan, params, replan=False))


def _select_once(
    conn: _ConnectionState, plan: sql.SelectPlan, params: Any, *, replan: bool
) -> Io[Outcome]:
    indexes = yield from conn.catalog.mango_indexes()
    integer_id = yield from _integer_id(conn, plan.table)
    star = None
    if plan.columns is None and plan.table is not None:  # SELECT *
        declared = yield from conn.catalog.declared_columns(plan.table)
        star = [c.name for c in declared] if declared is not None else None
    bound = plan.bind(params, indexes, integer_id=integer_id, star_columns=star)
    run = bound.start()
    if run.columns is not None:
        yield Header(run.columns)
    for i, request in enumerate(bound.requests):
        if run.done:
            break
        pager = _pager(conn, request, run.wanted())
        while not run.done and (call := pager.next_call()) is not None:
            docs = pager.accept((yield from _find_page(call, request, replan)))
            if integer_id and plan.table is not None:
                docs = _integer_ids(plan.table, docs)
            rows = run.feed(i, docs)
            if rows:
                replan = False  # rows were handed out: no second plan can take them back
                yield Rows(rows)
    rows = run.finish()
    if run.columns is not None:
        yield Header(run.columns)
    if rows:
        yield Rows(rows)
    return Outcome()


def sample_columns(conn: _ConnectionState, table: str) -> Io[list[dict[str, Any]]]:
    """Columns of an undeclared table: the union of fields over a bounded sample."""
    page = yield conn.client._find({TYPE_FIELD: {"$eq": table}}, limit=SAMPLE_SIZE)
    if not page.docs:
        return []
    seen: dict[str, set[str]] = {}
    for doc in page.docs:
        for column, value in document_to_row(doc).items():
            kinds = seen.setdefault(column, set())
            if value is not None:
                kinds.add(_json_type_name(value))
    return [
        {
            "name": column,
            "type": kinds.pop() if len(kinds) == 1 else ("JSON" if kinds else "NULL"),
            "nullable": column != ID_COLUMN,
        }
        for column, kinds in seen.items()
    ]


def _json_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "INTEGER"
    if isinstance(value, float):
        return "FLOAT"
    if isinstance(value, str):
        return "VARCHAR"
    return "JSON"


# -- writing ---------------------------------------------------------------------------------


def _describe_failures(failed: Sequence[BulkResult], limit: int = 5) -> str:
    shown = ", ".join(f"{r.id!r} ({r.error}: {r.reason})" for r in failed[:limit])
    more = f" and {len(failed) - limit} more" if len(failed) > limit else ""
    return shown + more


def _raise_for_failures(
    what: str, failed: Sequence[BulkResult], written: int, *, partial_note: str
) -> None:
    """Raise the typed error of the first failed document, naming every failed id."""
    if not failed:
        return
    first = failed[0]
    cls = error_class(409 if first.error == "conflict" else 400, first.error, first.reason)
    raise cls(
        f"{what}: {len(failed)} document(s) were not written: {_describe_failures(failed)}."
        f" {written} other(s) were {partial_note}",
        error=first.error,
        reason=first.reason,
        doc_id=first.id,
    )


def _insert(conn: _ConnectionState, plan: sql.InsertPlan, params: list[Any]) -> Io[Outcome]:
    integer_id = yield from _integer_id(conn, plan.table)
    docs = plan.documents_many(params, integer_id=integer_id)
    what = f"INSERT into {plan.table}"
    if len(docs) == 1:
        # One row, one request: PUT with the id (given or generated here).
        try:
            answer = yield conn.client._create(docs[0])
        except Conflict as err:
            raise Conflict(
                f"{what}: a row with id {docs[0]['_id']!r} already exists",
                status=409,
                error="conflict",
                database=err.database,
                doc_id=docs[0]["_id"],
            ) from err
        written = [{**docs[0], "_rev": answer["rev"]}]
    else:
        written = []
        failed: list[BulkResult] = []
        for chunk in bulk_chunks(docs):
            results = match_bulk_results(chunk, (yield conn.client._bulk(chunk, True)))
            for doc, result in zip(chunk, results, strict=True):
                if result.ok:
                    # The document was built for this statement alone: record its rev in it.
                    doc["_rev"] = result.rev
                    written.append(doc)
                else:
                    failed.append(result)
        _raise_for_failures(
            what, failed, len(written), partial_note="stored (CouchDB bulk writes are not atomic)"
        )
    if integer_id:
        written = _integer_ids(plan.table, written)
    if plan.returning_columns:
        yield Header(plan.returning_columns)
        yield Rows([plan.returning_row(doc) for doc in written])
    return Outcome(rowcount=len(written), lastrowid=written[-1]["_id"], wrote=True)


def _update_or_delete(
    conn: _ConnectionState, plan: sql.UpdatePlan | sql.DeletePlan, params: list[Any]
) -> Io[Outcome]:
    indexes = yield from conn.catalog.mango_indexes()
    integer_id = yield from _integer_id(conn, plan.table)
    total = 0
    returning: list[tuple[Any, ...]] = []
    for p in params:
        bound = plan.bind(p, indexes, integer_id=integer_id)
        try:
            candidates = yield from _read_all(conn, bound.requests, replan=True)
        except _IndexRefused:  # nothing of this parameter set was written yet
            conn.catalog.invalidate()
            indexes = yield from conn.catalog.mango_indexes()
            bound = plan.bind(p, indexes, integer_id=integer_id)
            candidates = yield from _read_all(conn, bound.requests)
        if integer_id:
            candidates = {
                i: {**d, "_id": decode_integer_id(plan.table, i)} for i, d in candidates.items()
            }
        todo = {i: d for i, d in candidates.items() if bound.matches(d)}
        count, rows = yield from _write_matching(conn, plan, bound, todo, integer_id)
        total += count
        returning.extend(rows)
    if plan.returning_columns:
        yield Header(plan.returning_columns)
        yield Rows(returning)
    return Outcome(rowcount=total, wrote=total > 0)


def _write_matching(
    conn: _ConnectionState,
    plan: sql.UpdatePlan | sql.DeletePlan,
    bound: sql.BoundUpdate | sql.BoundDelete,
    todo: dict[str, dict[str, Any]],
    integer_id: bool,
) -> Io[tuple[int, list[tuple[Any, ...]]]]:
    """Write the matching documents; on 409 re-read, re-check and retry (bounded).

    ``todo`` maps each ``_id`` (as stored) to the document as SQL sees it (for a table
    with an INTEGER ``id``, ``_id`` read as an int); writes go back with the stored id.
    """
    is_update = isinstance(bound, sql.BoundUpdate)
    verb = "UPDATE" if is_update else "DELETE FROM"
    count = 0
    rows: list[tuple[Any, ...]] = []
    for _ in range(CONFLICT_ROUNDS):
        if not todo:
            return count, rows
        writes: list[dict[str, Any]] = []
        seen: dict[str, dict[str, Any]] = {}
        for doc_id, doc in todo.items():
            seen[doc_id] = doc
            if isinstance(bound, sql.BoundUpdate):
                writes.append({**bound.apply(doc), "_id": doc_id})
            else:
                writes.append({"_id": doc_id, "_rev": doc["_rev"], "_deleted": True})
        conflicted: list[str] = []
        failed: list[BulkResult] = []
        for chunk in bulk_chunks(writes):
            results = match_bulk_results(chunk, (yield conn.client._bulk(chunk, True)))
            for doc, result in zip(chunk, results, strict=True):
                if result.ok:
                    count += 1
                    # RETURNING: the new row of an UPDATE, the deleted row of a DELETE.
                    before = seen[doc["_id"]]
                    row_doc = {**(doc if is_update else before), "_id": before["_id"]}
                    rows.append(bound.returning_row({**row_doc, "_rev": result.rev}))
                elif result.error == "conflict":
                    conflicted.append(result.id)
                else:
                    failed.append(result)
        _raise_for_failures(
            f"{verb} {plan.table}", failed, count, partial_note="written (no transactions)"
        )
        todo = {}
        if conflicted:
            # Someone changed these since we read them: read again and re-check the WHERE.
            answer = yield conn.client._all_docs(
                keys=conflicted,
                startkey=None,
                endkey=None,
                include_docs=True,
                limit=None,
                skip=0,
                descending=False,
                inclusive_end=True,
            )
            for row in answer.get("rows", []):
                doc = row.get("doc")
                if doc and integer_id:
                    doc = {**doc, "_id": decode_integer_id(plan.table, doc["_id"])}
                if doc and bound.matches(doc):
                    todo[row["id"]] = doc
    raise OperationalError(
        f"{verb} {plan.table}: {len(todo)} row(s) kept changing under concurrent writers "
        f"after {CONFLICT_ROUNDS} attempts; {count} row(s) were written"
    )


# -- DDL ---------------------------------------------------------------------------------------


def _create_table(conn: _ConnectionState, plan: sql.CreateTablePlan) -> Io[Outcome]:
    with contextlib.suppress(PreconditionFailed):  # the database exists: the usual case
        yield conn.client._create_database(None)
    declared = yield from conn.catalog.declared_tables()
    if plan.table in declared and not plan.if_not_exists:
        raise ProgrammingError(f"table {plan.table!r} already exists")
    if plan.unenforced:
        warnings.warn(
            f"CREATE TABLE {plan.table}: CouchDB does not enforce "
            f"{'; '.join(plan.unenforced)} (declared, not checked)",
            UnenforcedConstraintWarning,
            stacklevel=2,
        )
    yield from conn.catalog.declare_table(plan.table, plan.columns, plan.primary_key)
    yield from conn.catalog.ensure_type_index()
    return Outcome()


def _drop_table(conn: _ConnectionState, plan: sql.DropTablePlan) -> Io[Outcome]:
    exists = yield from conn.catalog.has_table(plan.table)
    if not exists:
        if plan.if_exists:
            return Outcome()
        raise ProgrammingError(f"no such table: {plan.table!r}")
    # Collect ids first: deleting while paging would shift skip-based pages.
    docs = yield from _read_all(
        conn, [FindRequest({TYPE_FIELD: {"$eq": plan.table}}, fields=["_id", "_rev"])]
    )
    tombstones = [{"_id": d["_id"], "_rev": d["_rev"], "_deleted": True} for d in docs.values()]
    for chunk in bulk_chunks(tombstones):
        yield conn.client._bulk(chunk, True)
    yield from conn.catalog.drop_table_indexes(plan.table)
    yield from conn.catalog.forget_table(plan.table)
    return Outcome(wrote=bool(tombstones))


def _create_index(conn: _ConnectionState, plan: sql.CreateIndexPlan) -> Io[Outcome]:
    if plan.unique:
        warnings.warn(
            f"CREATE UNIQUE INDEX {plan.name}: CouchDB does not enforce uniqueness; "
            "the index is created for queries only",
            UnenforcedConstraintWarning,
            stacklevel=2,
        )
    existing = yield from conn.catalog.indexes()
    if any(i.name == plan.name and i.table == plan.table for i in existing):
        if plan.if_not_exists:
            return Outcome()
        raise ProgrammingError(f"index {plan.name!r} already exists")
    yield from conn.catalog.create_index(IndexDef(plan.table, plan.name, plan.fields))
    return Outcome()
