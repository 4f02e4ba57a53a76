"""INSERT, UPDATE and DELETE plans: the documents to write and the rows they touch.

UPDATE and DELETE find their candidates with one ``_find`` (a superset, as for SELECT)
and decide with :meth:`BoundUpdate.matches` / :meth:`BoundDelete.matches`, the exact SQL
WHERE. After a 409 the cursor re-reads the document and asks again, so a row that no
longer matches is left alone and one that still does gets the SET applied to its newest
revision: no lost update.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..mapping import ID_COLUMN, REV_COLUMN, TYPE_FIELD, encode_integer_id
from . import errors
from .collation import PLAIN_TYPES, check_value
from .evaluate import Compiled, RowFn, Vals, compile_expr
from .expressions import Expr
from .find import FindRequest, MangoIndex, choose_equality_index
from .parameters import Parameters, Params
from .select import OutputColumn
from .selector import (
    ServerCondition,
    compile_selector,
    conjoin,
    equality_fields,
    widen_for_index,
)

__all__ = [
    "BoundDelete",
    "BoundUpdate",
    "DeletePlan",
    "InsertPlan",
    "UpdatePlan",
]

Doc = Mapping[str, Any]
_DECIMAL = re.compile(r"[+-]?[0-9]+")


def _returning(items: tuple[OutputColumn, ...]) -> tuple[RowFn, ...]:
    # RETURNING reads the written document only (the parser refuses parameters there).
    return tuple(compile_expr(o.expr).make(()) for o in items if o.expr is not None)


def new_id() -> str:
    """An id for a row inserted without one: known before writing, so results match by id."""
    return uuid.uuid4().hex


@dataclass(frozen=True, eq=False)
class InsertPlan:
    """``INSERT INTO t (cols) VALUES (…), …`` — one document per VALUES row per parameter set."""

    sql: str
    table: str
    parameters: Parameters
    columns: tuple[str, ...]
    #: VALUES rows, one expression per column; None stands for DEFAULT (no field written).
    rows: tuple[tuple[Expr | None, ...], ...]
    returning: tuple[OutputColumn, ...] = ()
    _values: tuple[tuple[Compiled | None, ...], ...] = field(init=False, repr=False)
    _returning_fns: tuple[RowFn, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        values = tuple(
            tuple(compile_expr(e) if e is not None else None for e in row) for row in self.rows
        )
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_returning_fns", _returning(self.returning))

    @property
    def returning_columns(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.returning)

    def documents(self, params: Params = None, *, integer_id: bool = False) -> list[dict[str, Any]]:
        """The documents one parameter set inserts (``_id`` always set, ``type`` = table).

        ``integer_id``: the table's ``id`` column is INTEGER; id ``n`` is written as
        ``"<table>:<n>"`` (:func:`..mapping.encode_integer_id`), and a row must give one:
        CouchDB cannot number rows.
        """
        vals = self.parameters.bind(params)
        return [self._document(row, vals, integer_id) for row in self._values]

    def documents_many(
        self, param_sets: Iterable[Params], *, integer_id: bool = False
    ) -> list[dict[str, Any]]:
        """``executemany``: the documents of every parameter set, in order."""
        out: list[dict[str, Any]] = []
        for params in param_sets:
            out.extend(self.documents(params, integer_id=integer_id))
        return out

    def returning_row(self, doc: Doc) -> tuple[Any, ...]:
        """The RETURNING row of a written document (the cursor sets its new ``_rev``)."""
        return tuple([f(doc) for f in self._returning_fns])

    def _integer_id(self, value: Any) -> str:
        """The ``_id`` of a row whose INTEGER ``id`` is ``value``."""
        if type(value) is str and _DECIMAL.fullmatch(value):
            value = int(value)  # "42": SQL converts text to the column's type
        if type(value) is not int:
            raise errors.DataError(f"column 'id' of {self.table} is INTEGER, got {value!r}")
        return encode_integer_id(self.table, value)

    def _document(
        self, row: tuple[Compiled | None, ...], vals: Vals, integer_id: bool
    ) -> dict[str, Any]:
        doc: dict[str, Any] = {"_id": None, TYPE_FIELD: self.table}
        for column, value in zip(self.columns, row, strict=True):
            if value is None:
                continue
            assert value.const is not None  # the parser refuses column references
            v = value.const(vals)
            if type(v) not in PLAIN_TYPES:
                v = check_value(v, f"the value of column {column!r}")
            if column == ID_COLUMN:
                if v is not None:
                    doc["_id"] = self._integer_id(v) if integer_id else _check_id(v)
            elif column == REV_COLUMN:
                if v is not None:
                    raise errors.DataError(
                        f"INSERT cannot set column {REV_COLUMN!r}: CouchDB assigns revisions"
                    )
            else:
                doc[column] = v
        if doc["_id"] is None:
            if integer_id:
                raise errors.NotSupportedError(
                    f"INSERT into {self.table}: column 'id' is INTEGER and no id was given; "
                    "CouchDB cannot number rows (no autoincrement). Give each row its id, "
                    "or declare id as String with server_default=FetchedValue() to get "
                    "generated ids"
                )
            doc["_id"] = new_id()
        return doc


def _check_id(value: Any) -> str:
    if type(value) is not str or not value:
        raise errors.DataError(
            f"column 'id' must be a non-empty string (a CouchDB id), got {value!r}"
        )
    if value.startswith("_"):
        raise errors.DataError(
            f"id {value!r} starts with '_': CouchDB reserves such ids (_design/, _local/)"
        )
    return value


@dataclass(frozen=True, eq=False)
class _Filtered:
    """What UPDATE and DELETE share: the table, the WHERE, and the ``_find`` for it."""

    sql: str
    table: str
    parameters: Parameters
    where: Expr | None
    returning: tuple[OutputColumn, ...]
    #: Fields the request must return (None: whole documents).
    fields: tuple[str, ...] | None
    _where: Compiled | None = field(init=False, repr=False)
    _server: Callable[[Vals], ServerCondition] = field(init=False, repr=False)
    _server_integer_id: Callable[[Vals], ServerCondition] = field(init=False, repr=False)
    _returning_fns: tuple[RowFn, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        where = compile_expr(self.where) if self.where is not None else None
        object.__setattr__(self, "_where", where)
        object.__setattr__(self, "_server", compile_selector(self.where))
        server_integer_id = compile_selector(self.where, integer_ids=self.table)
        object.__setattr__(self, "_server_integer_id", server_integer_id)
        object.__setattr__(self, "_returning_fns", _returning(self.returning))

    @property
    def returning_columns(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.returning)

    def _bind(
        self, params: Params, indexes: Sequence[MangoIndex], integer_id: bool
    ) -> tuple[Vals, tuple[FindRequest, ...], RowFn | None]:
        vals = self.parameters.bind(params)
        cond = (self._server_integer_id if integer_id else self._server)(vals)
        where = self._where.make(vals) if self._where is not None else None
        if not isinstance(cond.conjuncts, list):
            return vals, (), where  # the WHERE is never TRUE
        selector = conjoin([{TYPE_FIELD: {"$eq": self.table}}, *cond.conjuncts])
        indexed = frozenset(f for index in indexes for f in index.fields)
        selector, widened = widen_for_index(selector, indexed)
        fields = list(self.fields) if self.fields is not None else None
        use = choose_equality_index(equality_fields(selector) | widened, indexes)
        return vals, (FindRequest(selector, fields, use_index=use),), where


class _BoundFilter:
    """The exact WHERE of one execution (re-checked after a 409 re-read)."""

    def __init__(
        self,
        table: str,
        requests: tuple[FindRequest, ...],
        where: RowFn | None,
        returning: tuple[RowFn, ...],
    ) -> None:
        self.table = table
        self.requests = requests
        self._where = where
        self._returning = returning

    def matches(self, doc: Doc) -> bool:
        """True when the document is a row of the table and the WHERE is TRUE for it."""
        if doc.get(TYPE_FIELD) != self.table or doc.get("_deleted"):
            return False
        return self._where is None or self._where(doc) is True

    def returning_row(self, doc: Doc) -> tuple[Any, ...]:
        return tuple([f(doc) for f in self._returning])


class BoundUpdate(_BoundFilter):
    """An UPDATE bound to one parameter set."""

    def __init__(
        self,
        table: str,
        requests: tuple[FindRequest, ...],
        where: RowFn | None,
        returning: tuple[RowFn, ...],
        setters: list[tuple[str, RowFn]],
    ) -> None:
        super().__init__(table, requests, where, returning)
        self._setters = setters

    def apply(self, doc: Doc) -> dict[str, Any]:
        """The new document: every SET expression sees the old row, as in SQL."""
        values = [(column, fn(doc)) for column, fn in self._setters]
        new = dict(doc)
        for column, value in values:
            new[column] = check_value(value, f"the new value of column {column!r}")
        return new


class BoundDelete(_BoundFilter):
    """A DELETE bound to one parameter set."""


@dataclass(frozen=True, eq=False)
class UpdatePlan(_Filtered):
    """``UPDATE t SET col = expr, … [WHERE …]``; ``id``, ``rev`` and ``type`` stay fixed."""

    assignments: tuple[tuple[str, Expr], ...] = ()
    _setters: tuple[tuple[str, Compiled], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _Filtered.__post_init__(self)
        setters = tuple((column, compile_expr(e)) for column, e in self.assignments)
        object.__setattr__(self, "_setters", setters)

    def bind(
        self,
        params: Params = None,
        indexes: Sequence[MangoIndex] = (),
        *,
        integer_id: bool = False,
    ) -> BoundUpdate:
        """Bind one parameter set; ``integer_id`` as for :meth:`SelectPlan.bind`."""
        vals, requests, where = self._bind(params, indexes, integer_id)
        setters = [(column, e.make(vals)) for column, e in self._setters]
        return BoundUpdate(self.table, requests, where, self._returning_fns, setters)


@dataclass(frozen=True, eq=False)
class DeletePlan(_Filtered):
    """``DELETE FROM t [WHERE …]``."""

    def bind(
        self,
        params: Params = None,
        indexes: Sequence[MangoIndex] = (),
        *,
        integer_id: bool = False,
    ) -> BoundDelete:
        """Bind one parameter set; ``integer_id`` as for :meth:`SelectPlan.bind`."""
        _vals, requests, where = self._bind(params, indexes, integer_id)
        return BoundDelete(self.table, requests, where, self._returning_fns)
