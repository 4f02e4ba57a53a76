"""DDL plans: what CREATE/DROP TABLE and CREATE/DROP INDEX declare.

CouchDB has no schema; the cursor records tables in its catalog and turns indexes into
Mango indexes. Type names are as sqlglot renders them (``INTEGER`` -> ``INT``,
``NUMERIC(10, 2)`` -> ``DECIMAL(10, 2)``, ``BLOB`` -> ``VARBINARY``). Constraints CouchDB
cannot enforce (UNIQUE, FOREIGN KEY, CHECK, DEFAULT) are listed in ``unenforced`` so the
caller can say so; they are not silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..mapping import column_to_field

__all__ = ["ColumnSpec", "CreateIndexPlan", "CreateTablePlan", "DropIndexPlan", "DropTablePlan"]


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    name: str
    type: str
    nullable: bool = True
    primary_key: bool = False


@dataclass(frozen=True, slots=True)
class CreateTablePlan:
    sql: str
    table: str
    columns: tuple[ColumnSpec, ...]
    primary_key: tuple[str, ...] = ()
    if_not_exists: bool = False
    #: Constraints as SQL text that CouchDB does not enforce, e.g. ``"UNIQUE (x)"``.
    unenforced: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DropTablePlan:
    sql: str
    table: str
    if_exists: bool = False


@dataclass(frozen=True, slots=True)
class CreateIndexPlan:
    sql: str
    name: str
    table: str
    columns: tuple[str, ...]
    unique: bool = False
    if_not_exists: bool = False

    @property
    def fields(self) -> tuple[str, ...]:
        """The indexed document fields (``id`` is ``_id``)."""
        return tuple(column_to_field(c) for c in self.columns)


@dataclass(frozen=True, slots=True)
class DropIndexPlan:
    sql: str
    name: str
    #: Only when the statement names it (``DROP INDEX ix ON t``); standard SQL does not.
    table: str | None = None
    if_exists: bool = False
