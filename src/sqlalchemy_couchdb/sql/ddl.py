"""DDL plans: what CREATE/DROP TABLE and CREATE/DROP INDEX declare, read from sqlglot.

CouchDB has no schema; the cursor records tables in its catalog and turns indexes into
Mango indexes. Type names are as sqlglot renders them (``INTEGER`` -> ``INT``,
``NUMERIC(10, 2)`` -> ``DECIMAL(10, 2)``, ``BLOB`` -> ``VARBINARY``). Constraints CouchDB
cannot enforce (UNIQUE, FOREIGN KEY, CHECK, DEFAULT) are listed in ``unenforced`` so the
caller can say so; they are not silently dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from ..mapping import ID_COLUMN, column_to_field
from . import errors
from .refusal import quote_sql, refuse

__all__ = [
    "ColumnSpec",
    "CreateIndexPlan",
    "CreateTablePlan",
    "DropIndexPlan",
    "DropTablePlan",
    "create_plan",
    "drop_plan",
]

#: Validates a table node and returns its name (the statement kind names the context).
TableName = Callable[[Any, str], str]
#: Validates a column name (``type`` and ``_…`` are reserved).
ColumnName = Callable[[str], str]


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


def create_plan(
    node: exp.Create, sql: str, table_name: TableName, column_name: ColumnName
) -> CreateTablePlan | CreateIndexPlan:
    kind = str(node.args.get("kind") or "").upper()
    if kind == "TABLE":
        return _create_table(node, sql, table_name, column_name)
    if kind == "INDEX":
        return _create_index(node, sql, table_name, column_name)
    raise refuse(
        f"CREATE {kind}", "only tables and indexes exist in a CouchDB database", hybrid=False
    )


def _create_table(
    node: exp.Create, sql: str, table_name: TableName, column_name: ColumnName
) -> CreateTablePlan:
    if node.args.get("expression") is not None:
        raise refuse("CREATE TABLE … AS SELECT", "it reads other rows")
    if node.args.get("properties") or node.args.get("replace"):
        raise refuse(
            f"this form of CREATE TABLE ({node.sql()[:60]}…)",
            "only plain tables exist",
            hybrid=False,
        )
    schema = node.this
    if not isinstance(schema, exp.Schema):
        raise errors.ProgrammingError("CREATE TABLE needs a column list")
    table = table_name(schema.this, "CREATE TABLE")
    columns: list[ColumnSpec] = []
    primary: list[str] = []
    unenforced: list[str] = []
    for item in schema.expressions:
        if isinstance(item, exp.ColumnDef):
            name = column_name(item.name)
            kind = item.args.get("kind")
            nullable = True
            for c in item.args.get("constraints") or []:
                ck = c.args.get("kind")
                if isinstance(ck, exp.NotNullColumnConstraint):
                    nullable = bool(ck.args.get("allow_null"))
                elif isinstance(ck, exp.PrimaryKeyColumnConstraint):
                    primary.append(name)
                else:
                    unenforced.append(f"{ck.sql() if ck else c.sql()} on {name}")
            columns.append(ColumnSpec(name, kind.sql() if kind else "", nullable))
            continue
        inner = item.expressions if isinstance(item, exp.Constraint) else [item]
        for constraint in inner:
            if isinstance(constraint, exp.PrimaryKey):
                primary.extend(column_name(e.name) for e in constraint.expressions)
            else:
                unenforced.append(constraint.sql())
    keys = set(primary)
    columns = [
        ColumnSpec(c.name, c.type, c.nullable and c.name not in keys, c.name in keys)
        for c in columns
    ]
    if primary and primary != [ID_COLUMN]:
        unenforced.append(f"PRIMARY KEY ({', '.join(primary)}): the document id is 'id'")
    return CreateTablePlan(
        sql,
        table,
        tuple(columns),
        tuple(primary),
        bool(node.args.get("exists")),
        tuple(unenforced),
    )


def _create_index(
    node: exp.Create, sql: str, table_name: TableName, column_name: ColumnName
) -> CreateIndexPlan:
    index = node.this
    if not isinstance(index, exp.Index) or index.args.get("table") is None:
        raise errors.ProgrammingError(f"cannot read the index of {quote_sql(sql)}")
    table = table_name(index.args["table"], "CREATE INDEX")
    params = index.args.get("params")
    columns: list[str] = []
    for col in params.args.get("columns") or [] if params is not None else []:
        target = col.this if isinstance(col, exp.Ordered) else col
        if not isinstance(target, exp.Column):
            raise refuse(
                "an index on an expression", "Mango indexes hold fields only", hybrid=False
            )
        columns.append(column_name(target.name))
    if not columns:
        raise errors.ProgrammingError("CREATE INDEX needs at least one column")
    return CreateIndexPlan(
        sql,
        index.name,
        table,
        tuple(columns),
        bool(node.args.get("unique")),
        bool(node.args.get("exists")),
    )


def drop_plan(node: exp.Drop, sql: str, table_name: TableName) -> DropTablePlan | DropIndexPlan:
    kind = str(node.args.get("kind") or "").upper()
    tables = node.args.get("tables") or []
    if len(tables) != 1:
        raise errors.ProgrammingError(f"DROP {kind} names one object at a time")
    exists = bool(node.args.get("exists"))
    if kind == "TABLE":
        return DropTablePlan(sql, table_name(tables[0], "DROP TABLE"), exists)
    if kind == "INDEX":
        on = node.args.get("cluster")  # DROP INDEX ix ON t (MySQL's spelling)
        table = table_name(on.this, "DROP INDEX") if isinstance(on, exp.OnProperty) else None
        return DropIndexPlan(sql, tables[0].name, table, exists)
    raise refuse(
        f"DROP {kind}", "only tables and indexes exist in a CouchDB database", hybrid=False
    )
