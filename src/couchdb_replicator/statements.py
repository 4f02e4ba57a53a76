"""The SQL the sink runs per batch, compiled once and executed with plain parameter rows.

Upsert by primary key in each backend's own syntax — SQLite and PostgreSQL
``INSERT … ON CONFLICT (key) DO UPDATE SET c = excluded.c``, MySQL/MariaDB
``INSERT … ON DUPLICATE KEY UPDATE c = VALUES(c)`` — overwriting every non-key column, so a
field missing from the new revision becomes NULL and applying a revision twice changes
nothing. Delete by a list of ids.

A backfill runs these statements for every document, so they are compiled by SQLAlchemy
once (per table, per dialect) and executed with ``exec_driver_sql`` and positional rows
that have already been through each column's bind processor: the same SQL and the same
values SQLAlchemy would send, without building and re-reading a dict per row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect

__all__ = ["CompiledDelete", "CompiledUpsert", "upsert_statement"]

Processor = Callable[[Any], Any]


def upsert_statement(dialect: Dialect, table: sa.Table, keys: Sequence[str]) -> Any:
    """The upsert of whole rows of ``table`` keyed by the ``keys`` columns (by name)."""
    others = [c for c in table.columns if c.name not in keys]
    name = dialect.name
    if name in ("mysql", "mariadb"):
        my = mysql.insert(table)
        if not others:
            # Nothing to update: re-set the key to itself, MySQL's "do nothing".
            first = table.c[keys[0]]
            return my.on_duplicate_key_update({first.key: my.inserted[first.key]})
        return my.on_duplicate_key_update({c.key: my.inserted[c.key] for c in others})
    if name == "postgresql":
        pg = postgresql.insert(table)
        if not others:
            return pg.on_conflict_do_nothing(index_elements=list(keys))
        return pg.on_conflict_do_update(
            index_elements=list(keys), set_={c.key: pg.excluded[c.key] for c in others}
        )
    if name == "sqlite":
        lite = sqlite.insert(table)
        if not others:
            return lite.on_conflict_do_nothing(index_elements=list(keys))
        return lite.on_conflict_do_update(
            index_elements=list(keys), set_={c.key: lite.excluded[c.key] for c in others}
        )
    raise NotImplementedError(f"no upsert for the {name} dialect")


def _processor(column: sa.Column[Any], dialect: Dialect) -> Processor | None:
    processor: Processor | None = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor


@dataclass
class CompiledUpsert:
    """An upsert's SQL and, per parameter position, the column key and bind processor.

    ``insert_sql`` is the plain INSERT of the same parameters, for rows known to be new
    (a first backfill into an empty copy): it spares the conflict check and costs
    PostgreSQL about a third less CPU per row.
    """

    sql: str
    keys: list[str]
    processors: list[Processor | None]
    #: Parameter names for a named paramstyle (psycopg); None when positional.
    names: list[str] | None
    insert_sql: str

    @classmethod
    def build(cls, dialect: Dialect, table: sa.Table, keys: Sequence[str]) -> CompiledUpsert:
        compiled = upsert_statement(dialect, table, keys).compile(dialect=dialect)
        plain = sa.insert(table).compile(dialect=dialect)
        if compiled.positional:
            order = list(compiled.positiontup or [])
            names = None
            same_parameters = list(plain.positiontup or []) == order
        else:
            order = [c.key for c in table.columns]
            escaped = compiled.escaped_bind_names
            names = [escaped.get(key, key) for key in order]
            same_parameters = [plain.escaped_bind_names.get(k, k) for k in order] == names
        return cls(
            sql=str(compiled),
            keys=order,
            processors=[_processor(table.c[key], dialect) for key in order],
            names=names,
            insert_sql=str(plain) if same_parameters else str(compiled),
        )

    def parameters(self, rows: list[tuple[Any, ...]]) -> list[Any]:
        """Rows in the form the driver takes (tuples, or dicts for named paramstyles)."""
        if self.names is None:
            return rows
        names = self.names
        return [dict(zip(names, row, strict=True)) for row in rows]


#: Chunk sizes a delete is padded to (by repeating an id), so a handful of compiled
#: statements serve every batch.
_DELETE_SIZES = (1, 8, 64, 256, 1000)


class CompiledDelete:
    """``DELETE FROM table WHERE id IN (…)`` for lists of ids, compiled per padded size."""

    def __init__(self, dialect: Dialect, table: sa.Table, key: str = "id") -> None:
        self.dialect = dialect
        self.table = table
        self.column = table.c[key]
        self._process = _processor(self.column, dialect)
        self._compiled: dict[int, tuple[str, list[str] | None]] = {}

    def batches(self, ids: Sequence[str]) -> list[tuple[str, Any]]:
        """(sql, parameters) pairs that together delete ``ids``."""
        out = []
        biggest = _DELETE_SIZES[-1]
        for start in range(0, len(ids), biggest):
            chunk = list(ids[start : start + biggest])
            size = next(s for s in _DELETE_SIZES if s >= len(chunk))
            chunk.extend(chunk[-1:] * (size - len(chunk)))
            if self._process is not None:
                chunk = [self._process(i) for i in chunk]
            sql, names = self._statement(size)
            params = tuple(chunk) if names is None else dict(zip(names, chunk, strict=True))
            out.append((sql, params))
        return out

    def _statement(self, size: int) -> tuple[str, list[str] | None]:
        found = self._compiled.get(size)
        if found is None:
            params = [sa.bindparam(f"id_{i}", type_=self.column.type) for i in range(size)]
            compiled = (
                sa.delete(self.table).where(self.column.in_(params)).compile(dialect=self.dialect)
            )
            names = None if compiled.positional else [f"id_{i}" for i in range(size)]
            found = self._compiled[size] = (str(compiled), names)
        return found
