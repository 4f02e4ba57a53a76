"""The tables of the copy: given by a SQLAlchemy ``MetaData``, or inferred from documents.

Both follow the one mapping of :mod:`sqlalchemy_couchdb.mapping`: a table per ``type``
value, column ``id`` = ``_id``, ``rev`` = ``_rev``, every other column the top-level field
of the same name.

* :class:`MetadataSchema` (``--metadata MODULE:ATTR``): the user's tables, created when
  missing. A field with no column is **dropped and counted** (``fields_dropped``) and
  logged once per table and field: the copy holds exactly the declared columns, as the
  dialect's SELECT on ``couchdb://`` does. Documents of a type with no table are skipped
  and counted (``skipped_unmapped``).
* :class:`InferredSchema`: a table is created for each new ``type``; a column for each new
  field, with ``ALTER TABLE … ADD COLUMN``. Column types come from JSON values — boolean,
  integer (64-bit), double, text, JSON (objects and arrays) — and widen when a later value
  needs it: bool → integer → double, and anything else → text (an object next to a string
  is stored as its JSON text). Widening converts the stored values (PostgreSQL
  ``ALTER … TYPE … USING``, MySQL ``MODIFY``, SQLite a table rebuild). A field that has
  only ever been null gets no column until a value arrives. A field whose name cannot be
  a column (empty, too long for the backend, or equal to another column but for case
  where the backend ignores case) is dropped and counted, as above.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.types import TypeEngine

from sqlalchemy_couchdb.dbapi import AsyncCouchDBClient
from sqlalchemy_couchdb.dbapi.catalog import Catalog
from sqlalchemy_couchdb.dbapi.exceptions import CouchDBError
from sqlalchemy_couchdb.dbapi.io import drive_async
from sqlalchemy_couchdb.mapping import (
    ID_COLUMN,
    REV_COLUMN,
    decode_integer_id,
    document_to_row,
    is_integer_type,
)
from sqlalchemy_couchdb.sql import ColumnSpec

from .checkpoint import utcnow
from .errors import ConfigurationError, ReplicatorError, TargetUnavailable
from .state import REV_LENGTH, STATE_PREFIX, TABLES, id_type
from .statements import CompiledDelete, CompiledUpsert, upsert_statement
from .targets import Target
from .values import Converter, PoisonValue, converter_for, json_text

__all__ = [
    "InferredSchema",
    "Kind",
    "KindMismatch",
    "MetadataSchema",
    "Schema",
    "TableShape",
    "brief_error",
    "integer_id_tables",
    "is_integer_column",
    "kind_of",
    "load_metadata",
    "sql_type",
    "widen",
]

log = logging.getLogger(__name__)

Kind = Literal["bool", "int", "float", "text", "json"]
_NUMERIC_RANK: dict[str, int] = {"bool": 0, "int": 1, "float": 2}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def kind_of(value: Any) -> Kind | None:
    """The column kind a JSON value needs (None for null, which fits any column)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        # Beyond 64 bits no integer column holds it exactly; its digits as text do.
        return "int" if _INT64_MIN <= value <= _INT64_MAX else "text"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "text"
    return "json"


def widen(a: Kind | None, b: Kind | None) -> Kind | None:
    """The narrowest kind holding values of both: bool < int < float; otherwise text."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    if a in _NUMERIC_RANK and b in _NUMERIC_RANK:
        return a if _NUMERIC_RANK[a] > _NUMERIC_RANK[b] else b
    return "text"


def sql_type(kind: Kind, backend: str) -> TypeEngine[Any]:
    """The column type an inferred kind gets on a backend."""
    if kind == "bool":
        return sa.Boolean()
    if kind == "int":
        return sa.BigInteger()
    if kind == "float":
        return sa.Double()
    if backend == "mysql":
        # LONGTEXT, not TEXT (64 KB), nor JSON: MariaDB's JSON is LONGTEXT with a CHECK,
        # so a later widening to text would fail on plain strings.
        return mysql.LONGTEXT()
    if kind == "json":
        # none_as_null: a missing field is SQL NULL, not the JSON text 'null'.
        if backend == "postgresql":
            return postgresql.JSONB(none_as_null=True)
        return sa.JSON(none_as_null=True)
    return sa.Text()


def _backend_kind(kind: Kind, backend: str) -> Kind:
    # On MySQL objects are stored as JSON text in LONGTEXT: the same kind as text.
    return "text" if backend == "mysql" and kind == "json" else kind


def kind_of_type(type_: TypeEngine[Any]) -> Kind | None:
    """The kind of a reflected column (None: a type the inference did not create)."""
    if isinstance(type_, (sa.Boolean, mysql.TINYINT)):
        return "bool"
    if isinstance(type_, sa.Integer):
        return "int"
    if isinstance(type_, (sa.Float, sa.Numeric)):
        return "float"
    if isinstance(type_, sa.JSON):
        return "json"
    if isinstance(type_, sa.String):
        return "text"
    return None


def is_integer_column(type_: TypeEngine[Any]) -> bool:
    """Whether an ``id`` column of this type holds the dialect's integer ids (``n`` for
    ``"<table>:<n>"``): any SQLAlchemy integer type, or a TypeDecorator over one."""
    if isinstance(type_, sa.TypeDecorator):
        type_ = type_.impl_instance
    return isinstance(type_, sa.Integer)


class KindMismatch(PoisonValue):
    """An inferred column's kind is too narrow for a value: widen it, the doc is fine."""


def _kind_converter(kind: Kind) -> Converter:
    """Strict converters for inferred columns: accept exactly what the kind holds."""
    if kind == "bool":

        def to_bool(value: Any) -> Any:
            if isinstance(value, bool):
                return value
            raise KindMismatch("bool")

        return to_bool
    if kind == "int":

        def to_int(value: Any) -> Any:
            if isinstance(value, int) and _INT64_MIN <= value <= _INT64_MAX:
                return int(value)
            raise KindMismatch("int")

        return to_int
    if kind == "float":

        def to_float(value: Any) -> Any:
            if isinstance(value, (int, float)) and not (
                isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX
            ):
                return float(value)
            raise KindMismatch("float")

        return to_float
    if kind == "json":

        def to_json(value: Any) -> Any:
            if isinstance(value, (dict, list)):
                return value
            raise KindMismatch("json")

        return to_json

    def to_text(value: Any) -> Any:
        return value if isinstance(value, str) else json_text(value)

    return to_text


@dataclass
class ColumnSlot:
    """Where a document field goes: the column's key in the insert dict, and how."""

    name: str
    key: str
    convert: Converter | None
    kind: Kind | None = None  # None: a declared (or foreign) column that never widens

    @property
    def passes(self) -> type | None:
        """A value of exactly this type needs no conversion (spares a call per value)."""
        return _PASSES.get(self.kind) if self.kind is not None else None


_PASSES: dict[str, type] = {"bool": bool, "float": float, "text": str}

#: (parameter position, document field, converter, bind processor, type that passes).
_Step = tuple[int, str, Converter | None, Any, type | None]
#: A document to its parameter row (see :func:`_row_builder`).
_Build = Callable[[Mapping[str, Any]], tuple[Any, ...]]
#: How the documents with one set of keys become rows: the steps, the fields that have
#: no column, and the steps as generated code.
_Plan = tuple[list[_Step], list[str], _Build]
_PLAN_CACHE_LIMIT = 10_000


def _row_builder(
    steps: list[_Step],
    blank: list[Any],
    id_pos: int,
    rev_pos: int | None,
    stored_id: Converter | None,
) -> _Build:
    """Straight-line Python for one plan: a document to its parameter row.

    A backfill calls this once per document; without the per-field loop, the tuple
    unpacking and the list it fills, a row costs about half as much (the technique of
    dataclasses and SQLAlchemy's own generated code). Values are the same as
    :meth:`TableShape.row`'s loop, which also says which field a refused value came from.
    """
    env: dict[str, Any] = {f"_b{i}": value for i, value in enumerate(blank)}
    out = [f"_b{i}" for i in range(len(blank))]
    lines = ["def build(doc):"]
    if stored_id is None:
        lines.append(f"    _v{id_pos} = doc['_id']")
    else:
        env["_sid"] = stored_id
        lines.append(f"    _v{id_pos} = _sid(doc['_id'])")
    out[id_pos] = f"_v{id_pos}"
    if rev_pos is not None:
        lines.append(f"    _v{rev_pos} = doc.get('_rev')")
        out[rev_pos] = f"_v{rev_pos}"
    for pos in sorted({step[0] for step in steps}):
        lines.append(f"    _v{pos} = _b{pos}")
        out[pos] = f"_v{pos}"
    for k, (pos, name, convert, process, passes) in enumerate(steps):
        env[f"_n{k}"] = name
        lines += [f"    v = doc[_n{k}]", "    if v is not None:"]
        if convert is not None:
            env[f"_c{k}"] = convert
            if passes is not None:
                env[f"_t{k}"] = passes
                lines.append(f"        if type(v) is not _t{k}: v = _c{k}(v)")
            else:
                lines.append(f"        v = _c{k}(v)")
        if process is not None:
            env[f"_p{k}"] = process
            lines.append(f"        v = _p{k}(v)")
        lines.append(f"        _v{pos} = v")
    lines.append(f"    return ({', '.join(out)},)")
    exec("\n".join(lines), env)  # the text is ours: generated names and positions only
    build: _Build = env["build"]
    return build


@dataclass
class TableShape:
    """A table of the copy as the sink uses it: its columns by field name.

    :meth:`row` turns a document into the parameter row of the compiled upsert. Which of
    a document's keys are fields is decided by :func:`~sqlalchemy_couchdb.mapping.
    document_to_row` once per distinct key set (documents of one type nearly always share
    it), so most documents cost a dict lookup and one step per field.

    An integer ``id`` column (:attr:`integer_id`) holds ``n`` for the ``_id``
    ``"<table>:<n>"``, as the dialect stores it; any other ``_id`` of the table is a
    poison document (:meth:`stored_id`).
    """

    table: sa.Table
    slots: dict[str, ColumnSlot]
    id_key: str
    id_convert: Converter | None
    rev_key: str | None
    dialect: sa.engine.Dialect
    _upsert: CompiledUpsert | None = None
    _delete: CompiledDelete | None = None
    _plans: dict[tuple[str, ...], _Plan] = field(default_factory=dict)
    _blank: list[Any] = field(default_factory=list)
    _id_pos: int = 0
    _rev_pos: int | None = None
    _dropped_logged: set[str] = field(default_factory=set)
    integer_id: bool = field(init=False, default=False)
    _id_checked: bool = field(init=False, default=True)

    def __post_init__(self) -> None:
        self.integer_id = is_integer_column(self.table.c[self.id_key].type)
        self._id_checked = self.integer_id or self.id_convert is not None
        self.refresh()

    @property
    def name(self) -> str:
        return self.table.name

    def stored_id(self, doc_id: Any) -> Any:
        """The ``id`` column value of the document ``doc_id``; PoisonValue if it has none."""
        if self.integer_id:
            value = decode_integer_id(self.name, doc_id)
            if type(value) is not int:
                raise PoisonValue(
                    f"_id {doc_id!r} is not of the form '{self.name}:<n>' (n a decimal "
                    f"integer, no '+' or leading zeros) that table {self.name!r} needs: "
                    "its id column is an integer"
                )
            doc_id = value
        return self.id_convert(doc_id) if self.id_convert is not None else doc_id

    def stored_ids(self, doc_ids: Sequence[str]) -> list[Any]:
        """The ``id`` values ``doc_ids`` have in this table; ids it cannot hold are left out."""
        if not self.integer_id:
            return list(doc_ids)
        stored = []
        for doc_id in doc_ids:
            try:
                stored.append(self.stored_id(doc_id))
            except PoisonValue:
                continue  # another table's id, or a number the column's type cannot hold
        return stored

    def refresh(self) -> None:
        """Recompute what depends on the column set (after a column was added)."""
        up = self._upsert = CompiledUpsert.build(
            self.dialect, self.table, [self.table.c[self.id_key].name]
        )
        self._delete = CompiledDelete(self.dialect, self.table, self.id_key)
        self._plans = {}
        # What a column holds when the document lacks the field: NULL, through the
        # column's bind processor as SQLAlchemy would send it.
        self._blank = [None if p is None else p(None) for p in up.processors]
        self._id_pos = up.keys.index(self.id_key)
        self._rev_pos = up.keys.index(self.rev_key) if self.rev_key is not None else None

    @property
    def upsert(self) -> CompiledUpsert:
        assert self._upsert is not None
        return self._upsert

    @property
    def delete(self) -> CompiledDelete:
        assert self._delete is not None
        return self._delete

    def _plan(self, doc: Mapping[str, Any], signature: tuple[str, ...]) -> _Plan:
        up = self.upsert
        position = {key: i for i, key in enumerate(up.keys)}
        steps: list[_Step] = []
        missing: list[str] = []
        for name in document_to_row(doc):
            if name in (ID_COLUMN, REV_COLUMN):
                continue
            slot = self.slots.get(name)
            if slot is None:
                missing.append(name)
                continue
            pos = position[slot.key]
            steps.append((pos, name, slot.convert, up.processors[pos], slot.passes))
        # A top-level "id" or "rev" field cannot be a column: those names hold _id and _rev.
        missing.extend(name for name in (ID_COLUMN, REV_COLUMN) if name in doc)
        if len(self._plans) >= _PLAN_CACHE_LIMIT:
            self._plans.clear()
        build = _row_builder(
            steps,
            self._blank,
            self._id_pos,
            self._rev_pos,
            self.stored_id if self._id_checked else None,
        )
        plan = self._plans[signature] = (steps, missing, build)
        return plan

    def row(self, doc: Mapping[str, Any]) -> tuple[tuple[Any, ...], list[str]]:
        """The upsert's parameter row for a document, and its fields that have no column.

        Raises :class:`PoisonValue` for a value its column cannot hold, and
        :class:`KindMismatch` (with ``.field``) when an inferred column must widen.
        """
        signature = tuple(doc)
        plan = self._plans.get(signature)
        if plan is None:
            plan = self._plan(doc, signature)
        steps, missing, build = plan
        try:
            return build(doc), missing
        except PoisonValue:
            return self.row_by_steps(doc, steps), missing  # raises, naming the field

    def row_by_steps(self, doc: Mapping[str, Any], steps: list[_Step]) -> tuple[Any, ...]:
        """What the generated code of :meth:`row` computes, one step at a time: slower,
        but a refused value's error says which field it came from."""
        values = self._blank.copy()
        name = ID_COLUMN
        try:
            doc_id = doc["_id"]
            values[self._id_pos] = self.stored_id(doc_id) if self._id_checked else doc_id
            if self._rev_pos is not None:
                values[self._rev_pos] = doc.get("_rev")
            for pos, name, convert, process, passes in steps:
                value = doc[name]
                if value is None:
                    continue
                if convert is not None and type(value) is not passes:
                    value = convert(value)
                values[pos] = value if process is None else process(value)
        except PoisonValue as exc:
            exc.field = name  # type: ignore[attr-defined]
            if not isinstance(exc, KindMismatch):
                exc.args = (f"field {name!r}: {exc}",)
            raise
        return tuple(values)

    def as_mapping(self, row: tuple[Any, ...]) -> dict[str, Any]:
        """A parameter row by column key (for tests and messages)."""
        return dict(zip(self.upsert.keys, row, strict=True))

    def note_dropped(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self._dropped_logged:
                self._dropped_logged.add(name)
                log.warning(
                    "field %r of type %r documents has no column in table %r: dropped "
                    "(counted as fields_dropped)",
                    name,
                    self.name,
                    self.name,
                )


class Schema:
    """Which table holds each ``type``, and every table that may hold a document."""

    #: Tables that may hold a document of this source; a deletion looks in each.
    tables: dict[str, TableShape]
    #: True when unknown types and fields make new tables and columns (no --metadata).
    infers = False

    def __init__(self) -> None:
        self.tables = {}
        self.target: Target | None = None

    async def prepare(self, target: Target, source: str) -> None:
        raise NotImplementedError

    def use_source(self, client: AsyncCouchDBClient) -> None:
        """The source's client, for what the schema reads from CouchDB itself (the
        dialect's table catalog); call before :meth:`prepare`."""

    def problem_with_type(self, type_name: str) -> str | None:
        """Why a ``type`` value cannot be a table (None: it can)."""
        return None

    def copies(self, type_name: str) -> bool:
        """Whether documents of this type belong in the copy."""
        return type_name in self.tables

    async def evolve(self, table: str, docs: list[Mapping[str, Any]]) -> dict[str, str]:
        """Make ``table`` able to hold ``docs``; returns {doc id: reason} for those it can't."""
        return {}

    def field_problem(self, shape: TableShape, name: str) -> str | None:
        return "no such column"

    async def restore(self, missing: set[str]) -> None:
        """Tables that were dropped from the target: have them created again."""


def _identifier_problem(name: str, target: Target, what: str) -> str | None:
    if not name:
        return f"an empty {what} name"
    limit = target.identifier_limit
    if limit is not None and len(name.encode()) > limit:
        return f"{what} name {name[:40]!r}… is longer than {target.backend}'s {limit} bytes"
    if what == "column" and target.backend == "mysql" and "%" in name:
        # PyMySQL's executemany leaves ON DUPLICATE KEY UPDATE unformatted, so a '%' that
        # SQLAlchemy escaped as '%%' reaches the server doubled: the column is not found.
        return "a '%' in a column name breaks MySQL drivers' executemany"
    return None


class MetadataSchema(Schema):
    """The copy's tables are the ones a ``MetaData`` declares (``--metadata``)."""

    def __init__(self, metadata: sa.MetaData) -> None:
        super().__init__()
        self.metadata = metadata
        self._document_tables = [t for t in metadata.sorted_tables if ID_COLUMN in t.c]
        if not self._document_tables:
            raise ReplicatorError(
                "the --metadata MetaData has no table with an 'id' column; the copy needs "
                "tables with columns id, rev and the document's fields"
            )

    async def restore(self, missing: set[str]) -> None:
        assert self.target is not None
        await _create_all(self.target, self.metadata)

    async def prepare(self, target: Target, source: str) -> None:
        self.target = target
        await _create_all(target, self.metadata)
        async with target.engine.connect() as conn:
            existing = await conn.run_sync(
                _reflect_columns, [t.name for t in self._document_tables]
            )
        dialect = target.engine.dialect
        for table in self._document_tables:
            missing = [c.name for c in table.columns if c.name not in existing.get(table.name, {})]
            if missing:
                raise ReplicatorError(
                    f"table {table.name!r} in the target lacks column(s) {', '.join(missing)} "
                    "that --metadata declares; add them (or drop the table to have it created)"
                )
            slots = {
                c.name: ColumnSlot(c.name, c.key, converter_for(c.type, dialect))
                for c in table.columns
                if c.name not in (ID_COLUMN, REV_COLUMN)
            }
            id_col = table.c[ID_COLUMN]
            rev_col = table.c.get(REV_COLUMN)
            if rev_col is None:
                log.warning("table %r has no 'rev' column: revisions are not copied", table.name)
            self.tables[table.name] = TableShape(
                table=table,
                slots=slots,
                id_key=id_col.key,
                id_convert=converter_for(id_col.type, dialect),
                rev_key=rev_col.key if rev_col is not None else None,
                dialect=dialect,
            )


async def _create_all(target: Target, metadata: sa.MetaData) -> None:
    async with target.engine.begin() as conn:
        await conn.run_sync(metadata.create_all, checkfirst=True)


def _reflect_columns(conn: sa.Connection, names: list[str]) -> dict[str, dict[str, Any]]:
    inspector = sa.inspect(conn)
    present = set(inspector.get_table_names())
    return {
        name: {c["name"]: c["type"] for c in inspector.get_columns(name)}
        for name in names
        if name in present
    }


class InferredSchema(Schema):
    """Tables and columns inferred from the documents; see the module docstring."""

    infers = True

    def __init__(self) -> None:
        super().__init__()
        self._metadata = sa.MetaData()
        self.source = ""
        self._client: AsyncCouchDBClient | None = None
        #: Tables the dialect's catalog declares with an integer ``id`` (last read).
        self._integer_ids: set[str] = set()

    def use_source(self, client: AsyncCouchDBClient) -> None:
        self._client = client

    async def prepare(self, target: Target, source: str) -> None:
        self.target = target
        self.source = source
        if self._client is not None:
            self._integer_ids = integer_id_tables(
                await drive_async(Catalog(self._client).declared_tables(), self._client)
            )
        async with target.engine.connect() as conn:
            names = [
                r.table_name
                for r in await conn.execute(
                    sa.select(TABLES.c.table_name).where(TABLES.c.source == source)
                )
            ]
            existing = await conn.run_sync(_reflect_columns, names)
        for name in names:
            columns = existing.get(name)
            if columns is None or ID_COLUMN not in columns:
                log.info("table %r is gone from the target; it is created again when needed", name)
                continue
            shape = self._adopt(name, columns)
            if name in self._integer_ids and not shape.integer_id:
                log.warning(
                    "table %r holds its ids as text ('%s:1'), though the dialect declares "
                    "its id an integer: to copy it with integer ids, drop the table and run "
                    "`couchdb-replicator verify --repair`",
                    name,
                    name,
                )

    async def _declares_integer_id(self, name: str) -> bool:
        """Whether the dialect's catalog declares ``name`` with an integer ``id``.

        Re-read for a table not known as such: ``CREATE TABLE`` through the dialect
        writes the catalog before the table's first row, and ``_local`` documents are
        not in ``_changes``, so a new table is the moment to look again.
        """
        if name in self._integer_ids or self._client is None:
            return name in self._integer_ids
        try:
            declared = await drive_async(Catalog(self._client).declared_tables(), self._client)
        except (CouchDBError, OSError) as exc:
            # Guessing would create the table with the wrong id type for good: the batch
            # waits and is retried (as for a target that does not answer).
            raise TargetUnavailable(
                f"cannot read the dialect's table catalog from CouchDB to create table "
                f"{name!r}: {_brief(exc)}"
            ) from exc
        self._integer_ids = integer_id_tables(declared)
        return name in self._integer_ids

    # -- names -------------------------------------------------------------------------

    @property
    def _case_blind(self) -> bool:
        # SQLite and MySQL compare column names without case (SQLite table names too).
        assert self.target is not None
        return self.target.backend in ("sqlite", "mysql")

    def problem_with_type(self, type_name: str) -> str | None:
        assert self.target is not None
        if type_name.lower().startswith(STATE_PREFIX):
            return f"type {type_name!r} would collide with the replicator's own tables"
        problem = _identifier_problem(type_name, self.target, "table")
        if problem:
            return f"type {type_name[:40]!r} cannot be a table: {problem}"
        if self.target.backend == "sqlite" and type_name not in self.tables:
            folded = type_name.casefold()
            for other in self.tables:
                if other.casefold() == folded:
                    return (
                        f"type {type_name!r} differs from table {other!r} only by case, "
                        "which SQLite table names ignore"
                    )
        return None

    def copies(self, type_name: str) -> bool:
        return True

    async def restore(self, missing: set[str]) -> None:
        # Forgotten, the tables are created again (with the columns the documents need)
        # when the batch is retried.
        for name in missing:
            self.tables.pop(name, None)

    def field_problem(self, shape: TableShape, name: str) -> str | None:
        assert self.target is not None
        problem = _identifier_problem(name, self.target, "column")
        if problem:
            return problem
        if self._case_blind:
            folded = name.casefold()
            taken = {c.name.casefold() for c in shape.table.columns}
            if folded in taken:
                return f"differs from an existing column only by case ({self.target.backend})"
        return None

    # -- building ----------------------------------------------------------------------

    def _base_columns(self, integer_id: bool) -> list[sa.Column[Any]]:
        # autoincrement=False: CouchDB numbers the rows, not the copy (no SERIAL, no
        # AUTO_INCREMENT).
        id_column: sa.Column[Any] = (
            sa.Column(ID_COLUMN, sa.BigInteger(), primary_key=True, autoincrement=False)
            if integer_id
            else sa.Column(ID_COLUMN, id_type(), primary_key=True)
        )
        return [id_column, sa.Column(REV_COLUMN, sa.String(REV_LENGTH), nullable=True)]

    def _adopt(self, name: str, columns: Mapping[str, Any]) -> TableShape:
        """Build the shape of an existing table from its reflected columns."""
        assert self.target is not None
        backend = self.target.backend
        id_column = columns.get(ID_COLUMN)
        cols = self._base_columns(id_column is not None and is_integer_column(id_column))
        slots: dict[str, ColumnSlot] = {}
        for col_name, reflected in columns.items():
            if col_name in (ID_COLUMN, REV_COLUMN):
                continue
            kind = kind_of_type(reflected)
            if kind is None:
                column = sa.Column(col_name, reflected)
                convert = converter_for(reflected, self.target.engine.dialect)
            else:
                kind = _backend_kind(kind, backend)
                column = sa.Column(col_name, sql_type(kind, backend))
                convert = _kind_converter(kind)
            cols.append(column)
            slots[col_name] = ColumnSlot(col_name, column.key, convert, kind)
        if name in self._metadata.tables:
            self._metadata.remove(self._metadata.tables[name])
        table = sa.Table(name, self._metadata, *cols)
        shape = TableShape(
            table=table,
            slots=slots,
            id_key=ID_COLUMN,
            id_convert=converter_for(table.c[ID_COLUMN].type, self.target.engine.dialect),
            rev_key=REV_COLUMN,
            dialect=self.target.engine.dialect,
        )
        self.tables[name] = shape
        return shape

    async def evolve(self, table: str, docs: list[Mapping[str, Any]]) -> dict[str, str]:
        """Create the table, add columns and widen kinds so ``docs`` fit.

        DDL runs in its own transaction before the batch (MySQL commits DDL implicitly anyway); a
        failing statement makes the documents that needed it dead letters.
        """
        assert self.target is not None
        backend = self.target.backend
        shape = self.tables.get(table)
        needed: dict[str, Kind | None] = {}
        for doc in docs:
            for name, value in document_to_row(doc).items():
                if name in (ID_COLUMN, REV_COLUMN) or value is None:
                    continue
                kind = kind_of(value)
                if kind is not None:
                    needed[name] = widen(needed.get(name), _backend_kind(kind, backend))
        failures: dict[str, str] = {}
        if shape is None:
            shape, error = await self._create(table, needed)
            if error is not None:
                return {doc["_id"]: error for doc in docs}
        assert shape is not None
        for name, kind in needed.items():
            if kind is None:
                continue
            slot = shape.slots.get(name)
            error = None
            if slot is None:
                if self.field_problem(shape, name) is not None:
                    continue  # dropped and counted when the row is built
                error = await self._add_column(shape, name, kind)
            elif slot.kind is not None and widen(slot.kind, kind) != slot.kind:
                new_kind = widen(slot.kind, kind)
                assert new_kind is not None
                error = await self._widen(shape, slot, new_kind)
            if error is not None:
                for doc in docs:
                    if doc.get(name) is not None:
                        failures[doc["_id"]] = error
        return failures

    async def _create(
        self, name: str, needed: Mapping[str, Kind | None]
    ) -> tuple[TableShape | None, str | None]:
        """Create (or adopt) a table with the columns the first documents need."""
        assert self.target is not None
        engine = self.target.engine
        backend = self.target.backend
        columns: dict[str, Any] = {}
        taken = {ID_COLUMN, REV_COLUMN}
        for field_name, kind in needed.items():
            folded = field_name.casefold() if self._case_blind else field_name
            if kind is None or folded in taken:
                continue
            if _identifier_problem(field_name, self.target, "column") is None:
                taken.add(folded)
                columns[field_name] = sql_type(kind, backend)
        integer_id = await self._declares_integer_id(name)
        try:
            async with engine.connect() as conn:
                existing = await conn.run_sync(_reflect_columns, [name])
            if name in existing:
                if ID_COLUMN not in existing[name]:
                    return None, (
                        f"table {name!r} already exists in the target without an 'id' column"
                    )
                shape = self._adopt(name, existing[name])
                log.info("adopting the existing table %r", name)
            else:
                if name in self._metadata.tables:
                    self._metadata.remove(self._metadata.tables[name])
                table = sa.Table(
                    name,
                    self._metadata,
                    *self._base_columns(integer_id),
                    *(sa.Column(n, t) for n, t in columns.items()),
                )
                async with engine.begin() as conn:
                    await conn.run_sync(table.create, checkfirst=True)
                shape = self._adopt(name, {ID_COLUMN: table.c[ID_COLUMN].type, **columns})
                log.info("created table %r with %d columns", name, len(columns) + 2)
            async with engine.begin() as conn:
                await conn.execute(
                    upsert_statement(conn.dialect, TABLES, ["source", "table_name"]),
                    [{"source": self.source, "table_name": name, "created_at": utcnow()}],
                )
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            return None, f"cannot create table {name!r}: {_brief(exc)}"
        return shape, None

    async def _add_column(self, shape: TableShape, name: str, kind: Kind) -> str | None:
        assert self.target is not None
        engine = self.target.engine
        backend = self.target.backend
        type_ = sql_type(kind, backend)
        q = engine.dialect.identifier_preparer.quote
        ddl = (
            f"ALTER TABLE {q(shape.name)} ADD COLUMN {q(name)} "
            f"{type_.compile(dialect=engine.dialect)}"
        )
        try:
            async with engine.begin() as conn:
                await conn.exec_driver_sql(ddl)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            # Perhaps a previous run added it and crashed before the batch committed.
            async with engine.connect() as conn:
                existing = await conn.run_sync(_reflect_columns, [shape.name])
            if name not in existing.get(shape.name, {}):
                return f"cannot add column {name!r} to table {shape.name!r}: {_brief(exc)}"
        column = sa.Column(name, type_)
        shape.table.append_column(column)
        shape.slots[name] = ColumnSlot(name, column.key, _kind_converter(kind), kind)
        shape.refresh()
        log.info("added column %r (%s) to table %r", name, kind, shape.name)
        return None

    async def _widen(self, shape: TableShape, slot: ColumnSlot, kind: Kind) -> str | None:
        assert self.target is not None and slot.kind is not None
        old = slot.kind
        try:
            if self.target.backend == "sqlite":
                await self._rebuild_sqlite(shape, slot.name, old, kind)
            else:
                await self._alter_type(shape, slot.name, old, kind)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            return f"cannot widen column {slot.name!r} of {shape.name!r} to {kind}: {_brief(exc)}"
        new_type = sql_type(kind, self.target.backend)
        column = sa.Column(slot.name, new_type)
        shape.table.append_column(column, replace_existing=True)
        slot.kind = kind
        slot.convert = _kind_converter(kind)
        shape.refresh()
        log.info("widened column %r of table %r from %s to %s", slot.name, shape.name, old, kind)
        return None

    async def _alter_type(self, shape: TableShape, name: str, old: Kind, new: Kind) -> None:
        assert self.target is not None
        engine = self.target.engine
        q = engine.dialect.identifier_preparer.quote
        type_sql = sql_type(new, self.target.backend).compile(dialect=engine.dialect)
        col = q(name)
        async with engine.begin() as conn:
            if self.target.backend == "postgresql":
                # PostgreSQL casts boolean to integer but not to bigint or double directly.
                via_int = "::int" if old == "bool" and new in ("int", "float") else ""
                using = f"{col}{via_int}::{type_sql}"
                await conn.exec_driver_sql(
                    f"ALTER TABLE {q(shape.name)} ALTER COLUMN {col} TYPE {type_sql} USING {using}"
                )
            else:
                await conn.exec_driver_sql(f"ALTER TABLE {q(shape.name)} MODIFY {col} {type_sql}")
                if old == "bool" and new == "text":
                    # MySQL turns TINYINT 1 into '1'; the JSON text of true is 'true'.
                    await conn.exec_driver_sql(
                        f"UPDATE {q(shape.name)} SET {col} = CASE {col} WHEN '1' THEN 'true' "
                        f"WHEN '0' THEN 'false' ELSE {col} END"
                    )

    async def _rebuild_sqlite(self, shape: TableShape, name: str, old: Kind, new: Kind) -> None:
        """SQLite cannot change a column's type: copy the table into a new one."""
        assert self.target is not None
        engine = self.target.engine
        q = engine.dialect.identifier_preparer.quote
        temp_name = f"{shape.name}__widening"
        temp_meta = sa.MetaData()
        columns = [
            sa.Column(
                c.name,
                sql_type(new, "sqlite") if c.name == name else c.type,
                primary_key=c.primary_key,
                nullable=c.nullable,
            )
            for c in shape.table.columns
        ]
        temp = sa.Table(temp_name, temp_meta, *columns)
        col = q(name)
        if new == "text" and old == "bool":
            expr = f"CASE WHEN {col} IS NULL THEN NULL WHEN {col} THEN 'true' ELSE 'false' END"
        elif new == "text":
            expr = f"CAST({col} AS TEXT)" if old != "json" else col
        elif new == "float":
            expr = f"CAST({col} AS REAL)"
        else:
            expr = f"CAST({col} AS INTEGER)"
        names = [q(c.name) for c in shape.table.columns]
        select = ", ".join(expr if c.name == name else q(c.name) for c in shape.table.columns)
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f"DROP TABLE IF EXISTS {q(temp_name)}")
            await conn.run_sync(temp.create)
            await conn.exec_driver_sql(
                f"INSERT INTO {q(temp_name)} ({', '.join(names)}) "
                f"SELECT {select} FROM {q(shape.name)}"
            )
            await conn.exec_driver_sql(f"DROP TABLE {q(shape.name)}")
            await conn.exec_driver_sql(f"ALTER TABLE {q(temp_name)} RENAME TO {q(shape.name)}")


def integer_id_tables(declared: Mapping[str, Sequence[ColumnSpec]]) -> set[str]:
    """The tables of the dialect's catalog whose ``id`` column is an integer type."""
    return {
        name
        for name, columns in declared.items()
        if any(c.name == ID_COLUMN and is_integer_type(c.type) for c in columns)
    }


def _brief(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def brief_error(exc: BaseException) -> str:
    """One line for a database error: the driver's message, without SQL or parameters."""
    return _brief(exc)


def load_metadata(spec: str) -> sa.MetaData:
    """The ``MetaData`` named by ``MODULE:ATTR`` (a declarative base's ``.metadata`` too).

    The current directory is importable, as for ``python -m``: a models module next to
    where the command runs is found.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(
            f"--metadata {spec!r} must look like MODULE:ATTR, e.g. myapp.models:metadata"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"cannot import module {module_name!r} named by --metadata: {exc}"
        ) from None
    except Exception as exc:
        raise ConfigurationError(
            f"importing module {module_name!r} named by --metadata failed: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    value: Any = module
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise ConfigurationError(
                f"module {module_name!r} has no attribute {attr!r} (from --metadata {spec!r})"
            ) from None
    if not isinstance(value, sa.MetaData):
        value = getattr(value, "metadata", value)
    if not isinstance(value, sa.MetaData):
        raise ConfigurationError(
            f"--metadata {spec!r} is a {type(value).__name__}, not a SQLAlchemy MetaData "
            "(or a declarative base with .metadata)"
        )
    return value
