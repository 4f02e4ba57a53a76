"""SELECT: the plan, its binding to ``_find`` requests, and the client-side run.

ORDER BY is answered in one of three ways, chosen per execution from the indexes the
cursor says exist:

* **Server sort, one key.** With an index on the key, rows whose key is non-NULL come
  sorted from the index (``{"x": {"$gte": false}}`` + ``sort``), and rows whose key is
  NULL or missing from a second request (CouchDB's index holds no document lacking the
  field, so it could never return them). The two are concatenated: NULLs first for
  ASC, last for DESC (SQLite's order), or as ``NULLS FIRST/LAST`` says. The NULL request
  is skipped when the WHERE already rules NULL out, and never sent when LIMIT is met.
* **Server sort, several keys.** The same two requests; the NULL part is read first,
  sorted on the client, and merged into the sorted stream.
* **Client sort** when no index fits (or keys are expressions, or directions differ):
  every matching document is read, and with a LIMIT only the best ``offset + limit``
  rows are kept in memory.

Where the server sorts, values of different JSON types and text follow the server's
collation (booleans before numbers; ICU on CouchDB, UTF-16 code units on PouchDB), the
documented difference from SQLite's order used on the client.

Without ORDER BY, aggregates or DISTINCT, rows stream: each page of documents becomes
rows at once, and the run says when LIMIT is met so the cursor stops reading.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..mapping import ID_COLUMN, REV_COLUMN, TYPE_FIELD, column_to_field
from . import errors
from .evaluate import (
    Compiled,
    RowFn,
    Vals,
    compile_expr,
    distinct_key,
    make_accumulator,
    order_key,
)
from .expressions import Aggregate, Column, Expr, null_rejected
from .find import FindRequest, MangoIndex, choose_equality_index, choose_sort_index
from .parameters import Parameters, Params
from .selector import (
    ServerCondition,
    compile_selector,
    conjoin,
    equality_fields,
    is_server_field,
    not_null,
    null_or_missing,
    widen_for_index,
)

__all__ = ["BoundSelect", "OrderTerm", "OutputColumn", "SelectPlan", "SelectRun"]

Doc = Mapping[str, Any]
Row = tuple[Any, ...]
#: How the cursor fetches one request: the pages of documents, lazily.
Fetch = Callable[[FindRequest], Iterable[Sequence[Doc]]]


@dataclass(frozen=True, slots=True)
class OutputColumn:
    """One select-list item: its output name and expression (None for ``*``)."""

    name: str
    expr: Expr | None


@dataclass(frozen=True, slots=True)
class OrderTerm:
    expr: Expr
    descending: bool = False
    nulls_first: bool = True


@dataclass(frozen=True, eq=False)
class SelectPlan:
    """A parsed SELECT over one table (or none: ``SELECT 1``); immutable and cached."""

    sql: str
    table: str | None
    parameters: Parameters
    output: tuple[OutputColumn, ...]
    where: Expr | None = None
    order: tuple[OrderTerm, ...] = ()
    distinct: bool = False
    aggregates: tuple[Aggregate, ...] = ()
    limit: Expr | None = None
    offset: Expr | None = None
    #: Document fields the statement reads (for Mango ``fields``); None reads whole docs.
    fields: tuple[str, ...] | None = None
    _compiled: _Compiled = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", _Compiled.of(self))

    @property
    def columns(self) -> tuple[str, ...] | None:
        """Output column names; None when ``*`` is selected (known after reading)."""
        return self._compiled.columns

    def bind(
        self,
        params: Params = None,
        indexes: Sequence[MangoIndex] = (),
        *,
        integer_id: bool = False,
        star_columns: Sequence[str] | None = None,
    ) -> BoundSelect:
        """Bind parameters and choose the requests, given the indexes that exist.

        ``integer_id``: the table's ``id`` column is INTEGER, so its ids are stored as
        ``"<table>:<n>"`` (see :func:`..mapping.encode_integer_id`); the caller turns them
        back into ints before feeding documents to the run.
        ``star_columns``: the columns the table was declared with, which ``*`` stands for;
        None for a table never declared (``*`` is then ``id``, ``rev`` and every field).
        """
        vals = self.parameters.bind(params)
        c = self._compiled
        limit = _count(c.limit, vals, "LIMIT")
        offset = _count(c.offset, vals, "OFFSET") or 0
        strategy = _strategy(self, vals, limit, offset, indexes, integer_id)
        star = tuple(star_columns) if star_columns is not None else None
        return BoundSelect(self, vals, limit, offset, *strategy, star_columns=star)


@dataclass(frozen=True, slots=True)
class _Compiled:
    """Everything compiled once per plan."""

    where: Compiled | None
    server: Callable[[Vals], ServerCondition]
    server_integer_id: Callable[[Vals], ServerCondition]
    output: tuple[Compiled | None, ...]
    order: tuple[Compiled, ...]
    aggregate_args: tuple[Compiled | None, ...]
    limit: Compiled | None
    offset: Compiled | None
    null_rejected: frozenset[str]
    columns: tuple[str, ...] | None
    sort_keys: list[str] | None

    @classmethod
    def of(cls, plan: SelectPlan) -> _Compiled:
        return cls(
            where=compile_expr(plan.where) if plan.where is not None else None,
            server=compile_selector(plan.where),
            server_integer_id=compile_selector(plan.where, integer_ids=plan.table),
            output=tuple(compile_expr(o.expr) if o.expr is not None else None for o in plan.output),
            order=tuple(compile_expr(t.expr) for t in plan.order),
            aggregate_args=tuple(
                compile_expr(a.arg) if a.arg is not None else None for a in plan.aggregates
            ),
            limit=compile_expr(plan.limit) if plan.limit is not None else None,
            offset=compile_expr(plan.offset) if plan.offset is not None else None,
            null_rejected=null_rejected(plan.where) if plan.where is not None else frozenset(),
            columns=None
            if any(o.expr is None for o in plan.output)
            else tuple(o.name for o in plan.output),
            sort_keys=_sort_keys(plan) if plan.order else None,
        )


def _count(compiled: Compiled | None, vals: Vals, what: str) -> int | None:
    # SQLite: a negative LIMIT means no limit, a negative OFFSET means none.
    if compiled is None or compiled.const is None:
        return None
    value = compiled.const(vals)
    if value is None:
        return None
    if type(value) is not int:
        raise errors.DataError(f"{what} must be an integer, got {value!r}")
    if value < 0:
        return None if what == "LIMIT" else 0
    return value


# -- choosing the requests ------------------------------------------------------------------

_STREAM, _SORT, _MERGE, _AGGREGATE = "stream", "sort", "merge", "aggregate"


def _strategy(
    plan: SelectPlan,
    vals: Vals,
    limit: int | None,
    offset: int,
    indexes: Sequence[MangoIndex],
    integer_id: bool,
) -> tuple[tuple[FindRequest, ...], str, int]:
    """``(requests, run kind, offset left to the client)``."""
    kind = _AGGREGATE if plan.aggregates else _SORT if plan.order else _STREAM
    if plan.table is None or limit == 0:
        return (), kind, offset
    c = plan._compiled
    cond = (c.server_integer_id if integer_id else c.server)(vals)
    if not isinstance(cond.conjuncts, list):
        return (), kind, offset  # the WHERE is never TRUE
    base = [{TYPE_FIELD: {"$eq": plan.table}}, *cond.conjuncts]
    indexed = frozenset(f for index in indexes for f in index.fields)

    def select(conjuncts: list[dict[str, Any]]) -> dict[str, Any]:
        return widen_for_index(conjoin(conjuncts), indexed)[0]

    selector, widened = widen_for_index(conjoin(base), indexed)
    eq_fields = equality_fields(selector)
    fields = list(plan.fields) if plan.fields is not None else None
    exact = cond.exact and not widened and not plan.distinct
    needed = None if limit is None else offset + limit
    use = choose_equality_index(eq_fields | widened, indexes)

    if kind == _AGGREGATE or (kind == _STREAM and not exact):
        return (FindRequest(selector, fields, use_index=use),), kind, offset
    if kind == _STREAM:  # exact: the server may skip and stop for us
        return (FindRequest(selector, fields, use_index=use, skip=offset, limit=limit),), kind, 0

    keys = c.sort_keys
    if keys is not None and integer_id and "_id" in keys:
        keys = None  # the server would sort the ids as text: "t:10" < "t:9"
    choice = (
        None
        if keys is None
        else choose_sort_index(keys, plan.order[0].descending, eq_fields, indexes)
    )
    if keys is None or choice is None:
        return (FindRequest(selector, fields, use_index=use),), _SORT, offset
    sort, use_index = choice
    nullable = [k for k in keys if k != "_id" and k not in plan._compiled.null_rejected]
    named = [not_null(k) for k in keys if k != "_id" and k not in selector]
    values = FindRequest(
        select([*base, *named]),
        fields,
        sort,
        use_index,
        skip=offset if exact and not nullable else 0,
        limit=(limit if not nullable else needed) if exact else None,
    )
    if not nullable:
        return (values,), _STREAM, 0 if exact else offset
    branches = [b for k in nullable for b in null_or_missing(k)["$or"]]
    nulls = FindRequest(
        select([*base, {"$or": branches}]),
        fields,
        limit=needed if exact and len(keys) == 1 else None,
    )
    if len(keys) == 1:
        pair = (nulls, values) if plan.order[0].nulls_first else (values, nulls)
        return pair, _STREAM, offset
    return (nulls, values), _MERGE, offset


def _sort_keys(plan: SelectPlan) -> list[str] | None:
    """Document fields of ORDER BY when the server could sort by them, else None."""
    terms = plan.order
    if any(t.descending != terms[0].descending for t in terms):
        return None  # Mango sorts every field in one direction
    keys: list[str] = []
    for t in terms:
        if not isinstance(t.expr, Column) or not is_server_field(t.expr.field):
            return None
        if t.expr.field not in keys:
            keys.append(t.expr.field)
    return keys


# -- the bound statement and its run --------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BoundSelect:
    """A SELECT bound to one execution's parameters: the requests to send, in order."""

    plan: SelectPlan
    vals: Vals
    limit: int | None
    offset: int
    requests: tuple[FindRequest, ...]
    kind: str
    client_offset: int
    star_columns: tuple[str, ...] | None = None

    @property
    def columns(self) -> tuple[str, ...] | None:
        if self.plan.columns is None and self.star_columns is not None:
            return _expand_star(self.plan, self.star_columns)[1]
        return self.plan.columns

    def start(self) -> SelectRun:
        """A fresh run: feed it each request's documents, then call ``finish``."""
        return SelectRun(self)


def _expand_star(
    plan: SelectPlan, star_columns: tuple[str, ...]
) -> tuple[list[str | None], tuple[str, ...]]:
    """The select list with ``*`` as declared columns: per output, the document field
    it reads (None: an expression of the select list) and the output names."""
    fields: list[str | None] = []
    names: list[str] = []
    for output in plan.output:
        if output.expr is None:
            fields.extend(column_to_field(c) for c in star_columns)
            names.extend(star_columns)
        else:
            fields.append(None)
            names.append(output.name)
    return fields, tuple(names)


def _getter(field: str) -> RowFn:
    def get(doc: Doc) -> Any:
        return doc.get(field)

    return get


class _Sink:
    """DISTINCT, OFFSET and LIMIT over rows in their final order."""

    __slots__ = ("pending", "remaining", "seen", "skip")

    def __init__(self, offset: int, limit: int | None, distinct: bool) -> None:
        self.skip = offset
        self.remaining = limit
        self.seen: set[Any] | None = set() if distinct else None
        self.pending: list[Any] = []

    @property
    def full(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def push(self, row: Any) -> bool:
        """Add a row; False once LIMIT is met."""
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.seen is not None:
            key = tuple([distinct_key(v) for v in row])
            if key in self.seen:
                return True
            self.seen.add(key)
        if self.skip:
            self.skip -= 1
            return True
        self.pending.append(row)
        if self.remaining is not None:
            self.remaining -= 1
            return self.remaining > 0
        return True

    def take(self) -> list[Any]:
        rows, self.pending = self.pending, []
        return rows


class SelectRun:
    """The client side of one SELECT execution.

    Feed it the documents of ``requests[i]`` with ``feed(i, docs)``, request after
    request, page after page; it returns the rows ready so far. Stop reading once
    ``done`` is true. ``finish()`` returns the remaining rows (all of them when rows had
    to be sorted or aggregated first). For ``SELECT *`` the columns are the union of the
    documents' fields, so rows (and ``columns``) come from ``finish()`` only.
    ``wanted()`` is a lower bound on the documents still needed (None: all of them), a
    page-size hint for requests whose ``limit`` is None.
    """

    def __init__(self, bound: BoundSelect) -> None:
        plan, vals = bound.plan, bound.vals
        c = plan._compiled
        self._kind = bound.kind
        self._table = plan.table
        self._where: RowFn | None = c.where.make(vals) if c.where is not None else None
        self._items: list[RowFn | None] = [o.make(vals) if o else None for o in c.output]
        self._names = [o.name for o in plan.output]
        self.columns: tuple[str, ...] | None = plan.columns
        if self.columns is None and bound.star_columns is not None:
            # A declared table: * is its columns, in their declared order, known now.
            fields, self.columns = _expand_star(plan, bound.star_columns)
            items = iter([item for item in self._items if item is not None])
            self._items = [_getter(f) if f is not None else next(items) for f in fields]
            self._names = list(self.columns)
        self._star = self.columns is None
        # SELECT DISTINCT * cannot remove anything: every row carries its document's id.
        distinct = plan.distinct and not self._star
        self._seen: set[Any] | None = set() if distinct and self._kind == _SORT else None
        self._sink = _Sink(bound.client_offset, bound.limit, distinct and self._seen is None)
        self._key: Callable[[Doc], tuple[Any, ...]] | None = None
        if self._kind in (_SORT, _MERGE):
            terms = [
                (compiled.make(vals), t.descending, t.nulls_first)
                for compiled, t in zip(c.order, plan.order, strict=True)
            ]
            self._key = order_key(terms)
        limit = bound.limit
        self._keep = None if limit is None else bound.offset + limit  # rows a sort must keep
        self._buffer: list[tuple[tuple[Any, ...], int, Any]] = []
        self._merge_pos: int | None = None
        self._accumulators = [
            make_accumulator(a, arg, vals)
            for a, arg in zip(plan.aggregates, c.aggregate_args, strict=True)
        ]
        self._docs: list[Doc] = []  # SELECT *: documents kept until the columns are known
        self._finished = False
        self.done = self._sink.full

    def wanted(self) -> int | None:
        if self._kind in (_SORT, _AGGREGATE) or self._sink.remaining is None:
            return None
        return max(self._sink.remaining + self._sink.skip, 0)

    def feed(self, request: int, docs: Iterable[Doc]) -> list[Row]:
        """Rows ready after the documents of one page of ``requests[request]``."""
        if self.done:
            return []
        table, where = self._table, self._where
        for doc in docs:
            # The selector already named the table; checking again keeps documents fetched
            # any other way (and design documents) out.
            if doc.get(TYPE_FIELD) != table or (where is not None and where(doc) is not True):
                continue
            if not self._take(request, doc):
                self.done = True
                break
        return self._emit(self._sink.take())

    def finish(self) -> list[Row]:
        """The rows still to come; the run is done afterwards."""
        if self._finished:
            return []
        self._finished = True
        if self._table is None and not self.done and self._where_true({}):
            self._take(0, {})  # SELECT without FROM: one row, if the WHERE holds
        kind, sink = self._kind, self._sink
        if kind == _AGGREGATE:
            results = {f"\0agg{i}": acc.result() for i, acc in enumerate(self._accumulators)}
            if not sink.full:
                sink.push(self._payload(results))
        elif kind == _SORT:
            self._buffer.sort()
            for _key, _seq, payload in self._buffer:
                if not sink.push(payload):
                    break
        elif kind == _MERGE:
            self._start_merge()
            for _key, _seq, payload in self._buffer[self._merge_pos :]:
                if not sink.push(payload):
                    break
        self._buffer = []
        self.done = True
        return self._emit(sink.take(), final=True)

    def drive(self, fetch: Fetch, requests: Sequence[FindRequest]) -> Iterator[Row]:
        """Run synchronously: ``fetch(request)`` yields pages of documents, lazily."""
        for i, request in enumerate(requests):
            if self.done:
                break
            for page in fetch(request):
                yield from self.feed(i, page)
                if self.done:
                    break
        yield from self.finish()

    # -- internals --------------------------------------------------------------------------

    def _take(self, request: int, doc: Doc) -> bool:
        """Route one matching document; False once LIMIT is met."""
        kind = self._kind
        if kind == _STREAM:
            return self._sink.push(self._payload(doc))
        if kind == _AGGREGATE:
            for acc in self._accumulators:
                acc.add(doc)
            return True
        if kind == _SORT or request == 0:
            self._hold(doc)
            return True
        return self._merge(doc)

    def _where_true(self, doc: Doc) -> bool:
        return self._where is None or self._where(doc) is True

    def _payload(self, doc: Doc) -> Any:
        if self._star:
            return doc  # projected in _emit once the columns are known
        return tuple([f(doc) for f in self._items])  # type: ignore[misc]

    def _hold(self, doc: Doc) -> None:
        assert self._key is not None
        payload = self._payload(doc)
        if self._seen is not None:  # DISTINCT before a bounded sort: keep the first
            seen_key = tuple([distinct_key(v) for v in payload])
            if seen_key in self._seen:
                return
            self._seen.add(seen_key)
        buffer = self._buffer
        buffer.append((self._key(doc), len(buffer), payload))
        keep = self._keep
        if keep is not None and self._kind == _SORT and len(buffer) > 2 * keep + 1024:
            # Keep memory at O(offset + limit): only the best rows can be returned.
            self._buffer = heapq.nsmallest(keep, buffer)
            for i, (k, _seq, p) in enumerate(self._buffer):
                self._buffer[i] = (k, i, p)

    def _start_merge(self) -> None:
        if self._merge_pos is None:
            self._buffer.sort()
            self._merge_pos = 0

    def _merge(self, doc: Doc) -> bool:
        """Emit held NULL-key rows that sort before this document, then the document."""
        self._start_merge()
        assert self._key is not None and self._merge_pos is not None
        key = self._key(doc)
        buffer, sink = self._buffer, self._sink
        while self._merge_pos < len(buffer) and buffer[self._merge_pos][0] <= key:
            payload = buffer[self._merge_pos][2]
            self._merge_pos += 1
            if not sink.push(payload):
                return False
        return sink.push(self._payload(doc))

    def _emit(self, payloads: list[Any], final: bool = False) -> list[Row]:
        if not self._star:
            return payloads
        self._docs.extend(payloads)
        if not final:
            return []
        docs, self._docs = self._docs, []
        # SELECT *: id, rev, then every field in the order documents first show it.
        fields: dict[str, None] = {}
        for doc in docs:
            for k in doc:
                if not k.startswith("_") and k != TYPE_FIELD:
                    fields[k] = None
        star = ["_id", "_rev", *fields]
        names: list[str] = []
        for item, name in zip(self._items, self._names, strict=True):
            names.extend([ID_COLUMN, REV_COLUMN, *fields] if item is None else [name])
        self.columns = tuple(names)
        rows = []
        for doc in docs:
            row: list[Any] = []
            for item in self._items:
                if item is None:
                    row.extend([doc.get(f) for f in star])
                else:
                    row.append(item(doc))
            rows.append(tuple(row))
        return rows
