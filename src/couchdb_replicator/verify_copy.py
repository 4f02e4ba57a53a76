"""Reading the copy for ``verify``: every row's ``(id, rev)`` in CouchDB's id order, in
pages, and whole rows by id.

The keys of all the copy's tables come as one ordered stream, so a document whose row
sits in two tables (a type change the copy missed) shows up as one id with two rows.

How the order is obtained, per backend:

* SQLite and MySQL/MariaDB (the replicator's ``id`` columns are ``utf8mb4_bin``) order
  ids by code point, as CouchDB's ``_all_docs`` does: keyset pages, ``WHERE id > :last
  ORDER BY id LIMIT n`` per table under a ``UNION ALL``, each an index range scan. Every
  page is its own short transaction, so nothing is held between pages.
* PostgreSQL orders by the database's collation; when that is not code point order
  (``en_US.UTF-8``, for instance) the ids are read in one streamed query ordered by
  ``id COLLATE "C"`` — one sort on the server instead of one per page. The stream holds
  an ACCESS SHARE lock for the length of the check: the replicator's writes go on, but a
  schema change (``ALTER TABLE``) of the copy waits for the check to end.
* An INTEGER ``id`` column holds ``n`` for the document ``"<table>:n"``
  (:func:`~sqlalchemy_couchdb.mapping.encode_integer_id`); its order is not the order of
  the ids, so such a table is ordered by the id text it stands for (streamed on
  PostgreSQL and SQLite, a sort per page on MySQL).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from sqlalchemy_couchdb.mapping import encode_integer_id

from .schema import Schema, TableShape
from .state import DEAD_LETTERS
from .targets import Target
from .verify_merge import CopyKey

__all__ = ["CopyReader", "CopyRow", "DeadLetterEntry"]

log = logging.getLogger(__name__)

#: Strings whose code point order differs from most language collations.
_ORDER_PROBE = ("B", "a", "a b", "a-b", "a_b", "ab", "Z9", "z", "é", "É", "~", "0")


@dataclass(slots=True)
class CopyRow:
    """A whole row of the copy: the ``_id`` it stands for, its table, rev and values."""

    id: str
    table: str
    rev: str | None
    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeadLetterEntry:
    id: str
    rev: str | None
    table: str | None
    error: str


class CopyReader:
    """Reads one copy's tables (those of ``schema``) for ``verify``."""

    def __init__(self, target: Target, schema: Schema, source: str, page_size: int) -> None:
        self.target = target
        self.schema = schema
        self.source = source
        self.page_size = page_size
        self._shapes: list[TableShape] = []
        #: Collation that orders ids by code point, where the default does not.
        self._collation: str | None = None
        self.streamed = False

    async def prepare(self) -> None:
        """Decide how to read the keys in code point order (see the module docstring)."""
        self._shapes = [self.schema.tables[name] for name in sorted(self.schema.tables)]
        backend = self.target.backend
        if backend == "postgresql":
            async with self.target.engine.connect() as conn:
                if not await _orders_by_code_point(conn):
                    self._collation = "C"
        integer_ids = any(_integer_id(shape) for shape in self._shapes)
        self.streamed = backend != "mysql" and (self._collation is not None or integer_ids)
        log.debug(
            "reading the copy's ids %s%s",
            "in one streamed query" if self.streamed else "in keyset pages",
            f" (COLLATE {self._collation})" if self._collation else "",
        )

    # -- keys in id order -------------------------------------------------------------------

    async def ordered_keys(self) -> AsyncIterator[list[CopyKey]]:
        """Pages of every table's ``(id, table, rev)`` in id order; the last may be short."""
        if not self._shapes:
            return
        pages = self._streamed_keys() if self.streamed else self._keyset_keys()
        async for page in pages:
            yield page

    def _key(self, shape: TableShape) -> sa.ColumnElement[Any]:
        column = shape.table.c[shape.id_key]
        key: sa.ColumnElement[Any]
        if _integer_id(shape):
            key = sa.literal(f"{shape.name}:", sa.String()) + sa.cast(column, sa.String())
        else:
            key = column
        if self._collation is not None:
            key = key.collate(self._collation)
        return key

    def _rev(self, shape: TableShape) -> sa.ColumnElement[Any]:
        if shape.rev_key is None:
            return sa.cast(sa.null(), sa.String())
        return shape.table.c[shape.rev_key]

    def _arm(self, index: int, shape: TableShape) -> sa.Select[Any]:
        return sa.select(
            self._key(shape).label("id"),
            self._rev(shape).label("rev"),
            sa.literal_column(str(index), sa.Integer()).label("table_index"),
        )

    async def _keyset_keys(self) -> AsyncIterator[list[CopyKey]]:
        # One id has at most a row per table: a page longer than that always ends past
        # at least one whole id, which is where the next page starts.
        size = max(self.page_size, len(self._shapes) + 1)
        # Built once: statements made per page are cyclic garbage that piles up until the
        # collector runs, and the check's memory would seem to grow with the database.
        first, following = self._keyset_statement(size, False), self._keyset_statement(size, True)
        last: str | None = None
        async with self.target.engine.connect() as conn:
            while True:
                if last is None:
                    result = await conn.execute(first)
                else:
                    result = await conn.execute(following, {"last": last})
                rows = result.all()
                # End the transaction: nothing (a snapshot, MySQL's metadata locks) is
                # held between pages.
                await conn.rollback()
                page = [self._copy_key(r) for r in rows]
                if len(rows) < size:
                    if page:
                        yield page
                    return
                # The last id's rows may go on in the next page: leave them to it.
                cut = len(page)
                while cut > 1 and page[cut - 1].id == page[-1].id:
                    cut -= 1
                last = page[cut - 1].id
                yield page[:cut]

    def _keyset_statement(self, size: int, after: bool) -> sa.Select[Any]:
        """A page of keys: the first, or (``after``) those past ``:last``."""
        arms = []
        for index, shape in enumerate(self._shapes):
            key = self._key(shape)
            arm = self._arm(index, shape)
            if after:
                arm = arm.where(key > sa.bindparam("last", type_=sa.String()))
            arms.append(arm.order_by(key).limit(size))
        if len(arms) == 1:
            return arms[0]
        union = sa.union_all(*(sa.select(a.subquery()) for a in arms)).subquery()
        return sa.select(union).order_by(union.c.id).limit(size)

    async def _streamed_keys(self) -> AsyncIterator[list[CopyKey]]:
        arms = [self._arm(i, s) for i, s in enumerate(self._shapes)]
        if len(arms) == 1:
            statement = arms[0].order_by(self._key(self._shapes[0]))
        else:
            union = sa.union_all(*arms).subquery()
            key = union.c.id if self._collation is None else union.c.id.collate(self._collation)
            statement = sa.select(union).order_by(key)
        async with self.target.engine.connect() as conn:
            result = await conn.stream(statement, execution_options={"yield_per": self.page_size})
            async for partition in result.partitions(self.page_size):
                yield [self._copy_key(r) for r in partition]

    def _copy_key(self, row: Any) -> CopyKey:
        stored, rev, index = row  # (id, rev, table index): see _arm
        shape = self._shapes[index]
        return CopyKey(_couch_id(shape, stored), shape.name, rev)

    # -- rows by id -------------------------------------------------------------------------

    async def rows(
        self, ids: Sequence[str], tables: Sequence[str] | None = None
    ) -> dict[str, list[CopyRow]]:
        """The rows standing for ``ids``, in every table (or ``tables``), read now."""
        wanted = set(ids)
        found: dict[str, list[CopyRow]] = {}
        shapes = (
            self._shapes
            if tables is None
            else [self.schema.tables[t] for t in tables if t in self.schema.tables]
        )
        async with self.target.engine.connect() as conn:
            for shape in shapes:
                keys = _stored_ids(shape, ids)
                if not keys:
                    continue
                column = shape.table.c[shape.id_key]
                columns = list(shape.table.columns)
                result = await conn.execute(sa.select(*columns).where(column.in_(keys)))
                for row in result:
                    values = {c.key: value for c, value in zip(columns, row, strict=True)}
                    doc_id = _couch_id(shape, values[shape.id_key])
                    if doc_id not in wanted:  # a case-insensitive collation matched more
                        continue
                    rev = values.get(shape.rev_key) if shape.rev_key is not None else None
                    found.setdefault(doc_id, []).append(CopyRow(doc_id, shape.name, rev, values))
        return found

    async def revs(self, conn: AsyncConnection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """``{id: {table: rev}}`` for ``ids`` in every table, on ``conn`` (the repair's
        locked transaction)."""
        wanted = set(ids)
        found: dict[str, dict[str, Any]] = {}
        for shape in self._shapes:
            keys = _stored_ids(shape, ids)
            if not keys:
                continue
            column = shape.table.c[shape.id_key]
            rev = self._rev(shape)
            result = await conn.execute(sa.select(column, rev).where(column.in_(keys)))
            for stored, value in result:
                doc_id = _couch_id(shape, stored)
                if doc_id in wanted:
                    found.setdefault(doc_id, {})[shape.name] = value
        return found

    async def dead_letters(self, ids: Sequence[str]) -> dict[str, DeadLetterEntry]:
        """This source's dead letters among ``ids``."""
        if not ids:
            return {}
        c = DEAD_LETTERS.c
        async with self.target.engine.connect() as conn:
            result = await conn.execute(
                sa.select(c.id, c.rev, c.table_name, c.error).where(
                    c.source == self.source, c.id.in_(list(ids))
                )
            )
            wanted = set(ids)
            return {
                r.id: DeadLetterEntry(r.id, r.rev, r.table_name, r.error)
                for r in result
                if r.id in wanted
            }


def _integer_id(shape: TableShape) -> bool:
    return shape.integer_id


def _couch_id(shape: TableShape, stored: Any) -> str:
    """The ``_id`` a row's ``id`` value stands for."""
    if isinstance(stored, int) and not isinstance(stored, bool):
        return encode_integer_id(shape.name, stored)
    return str(stored)


def _stored_ids(shape: TableShape, ids: Sequence[str]) -> list[Any]:
    """The ``id`` values ``ids`` would have in this table (integers for an INTEGER id)."""
    return shape.stored_ids(ids)


async def _orders_by_code_point(conn: AsyncConnection) -> bool:
    """Whether the database's default collation orders these strings as Python does."""
    values = sa.values(sa.column("x", sa.String()), name="probe").data([(s,) for s in _ORDER_PROBE])
    ordered = [r.x for r in await conn.execute(sa.select(values.c.x).order_by(values.c.x))]
    return ordered == sorted(_ORDER_PROBE)
