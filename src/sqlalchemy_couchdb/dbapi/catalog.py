"""What the database holds beyond documents: declared tables and their Mango indexes.

CouchDB has no tables, so ``CREATE TABLE`` records the table's columns in one ``_local``
document (``_local/`` documents are not replicated, not in ``_changes`` and not in
``_all_docs``, so neither the replicator nor a user's view ever sees them). A table's
indexes live in one design document, ``_design/sqla-<table>``, so ``DROP TABLE`` can
remove them all at once and ``get_indexes`` can find them without a registry.
Tables that only exist as data (documents with a ``type`` written by another program)
are found through a tiny map/reduce view of the ``type`` values.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..mapping import ID_COLUMN, TYPE_FIELD, is_integer_type
from ..sql import ColumnSpec, MangoIndex
from .client_base import ClientBase
from .exceptions import Conflict, CouchDBError, NotFound
from .io import Io
from .operations import Call, db_path

__all__ = ["SCHEMA_DOC", "Catalog", "IndexDef", "index_ddoc"]

log = logging.getLogger(__name__)

SCHEMA_DOC = "_local/sqlalchemy_couchdb.schema"
TYPES_DDOC = "_design/sqlalchemy_couchdb"
_TYPES_VIEW = {
    "map": (
        "function (doc) { if (typeof doc.type === 'string' && doc.type.length)"
        " { emit(doc.type, null); } }"
    ),
    "reduce": "_count",
}
_INDEX_DDOC_PREFIX = "sqla-"
#: One index on ``type`` per database, so that reading a table never scans the others.
TYPE_INDEX_DDOC = "sqlalchemy_couchdb-type"


#: The columns of declared tables, per (server, database). Statements ask (is ``id``
#: INTEGER? what does ``*`` mean?), so the answers are kept for the whole process: DDL
#: through any connection updates them at once, and an unknown table is looked up again
#: each time, so a table another process declares is seen by its first statement here.
_DECLARED: dict[tuple[str, str], dict[str, tuple[ColumnSpec, ...]]] = {}
_DECLARED_LOCK = threading.Lock()
#: The Mango indexes of each database, shared the same way: an index dropped through one
#: connection is forgotten by all of this process at once. (Another process may still
#: drop one; the statement that then finds it gone re-plans once, see execution.py.)
_INDEXES: dict[tuple[str, str], list[MangoIndex]] = {}


def index_ddoc(table: str) -> str:
    """The design document (without ``_design/``) holding a table's Mango indexes."""
    return f"{_INDEX_DDOC_PREFIX}{table}"


def _column_json(column: ColumnSpec) -> dict[str, Any]:
    return {
        "name": column.name,
        "type": column.type,
        "nullable": column.nullable,
        "primary_key": column.primary_key,
    }


def _column_from_json(data: Mapping[str, Any]) -> ColumnSpec:
    return ColumnSpec(
        str(data["name"]),
        str(data.get("type", "")),
        bool(data.get("nullable", True)),
        bool(data.get("primary_key", False)),
    )


@dataclass(frozen=True)
class IndexDef:
    """A Mango index as SQL sees it: the table, the SQL name, the indexed columns."""

    table: str
    name: str
    fields: tuple[str, ...]
    unique: bool = False

    @property
    def mango_fields(self) -> list[str]:
        # ``type`` leads, so that every query (which names its table) can use the index.
        return [TYPE_FIELD, *self.fields]


class Catalog:
    """Tables and indexes of one database, cached per connection; DDL invalidates.

    Methods are sans-IO generators (see :mod:`.io`), shared by the sync and async DB-API.
    """

    def __init__(self, client: ClientBase) -> None:
        self._client = client

    # -- tables ---------------------------------------------------------------------------

    def declared_tables(self) -> Io[dict[str, list[ColumnSpec]]]:
        doc = (yield self._client._get_local(SCHEMA_DOC)) or {}
        tables = doc.get("tables", {})
        return {
            name: [_column_from_json(c) for c in spec.get("columns", [])]
            for name, spec in tables.items()
        }

    def primary_key(self, table: str) -> Io[list[str] | None]:
        """The PRIMARY KEY columns ``CREATE TABLE`` declared, in their order (None for a
        table never declared). Declared, not enforced: the document id is the key."""
        doc = (yield self._client._get_local(SCHEMA_DOC)) or {}
        spec = doc.get("tables", {}).get(table)
        if spec is None:
            return None
        if "primary_key" in spec:
            return [str(c) for c in spec["primary_key"]]
        return [str(c["name"]) for c in spec.get("columns", []) if c.get("primary_key")]

    def _update_schema(self, change: Any) -> Io[None]:
        # Optimistic concurrency on the one schema document: re-read on 409.
        for _ in range(10):
            doc = (yield self._client._get_local(SCHEMA_DOC)) or {"tables": {}}
            change(doc.setdefault("tables", {}))
            try:
                yield self._client._put_local(SCHEMA_DOC, doc)
                return
            except Conflict:
                continue
        raise Conflict("the table registry kept changing under this writer; try again")

    def declare_table(
        self, name: str, columns: Sequence[ColumnSpec], primary_key: Sequence[str] = ()
    ) -> Io[None]:
        def change(tables: dict[str, Any]) -> None:
            tables[name] = {"columns": [_column_json(c) for c in columns]}
            if primary_key:
                tables[name]["primary_key"] = list(primary_key)  # in the declared order

        yield from self._update_schema(change)
        with _DECLARED_LOCK:
            _DECLARED.setdefault(self._declared_key, {})[name] = tuple(columns)

    def forget_table(self, name: str) -> Io[None]:
        def change(tables: dict[str, Any]) -> None:
            tables.pop(name, None)

        yield from self._update_schema(change)
        with _DECLARED_LOCK:
            _DECLARED.get(self._declared_key, {}).pop(name, None)

    @property
    def _declared_key(self) -> tuple[str, str]:
        return (self._client.settings.base_url, self._client.database)

    def declared_columns(self, table: str) -> Io[tuple[ColumnSpec, ...] | None]:
        """The columns ``CREATE TABLE`` declared, or None for a table never declared.

        Kept for the process (see ``_DECLARED``): a table dropped and declared again
        differently by another process keeps its first columns here until DDL here.
        """
        key = self._declared_key
        known = _DECLARED.get(key, {}).get(table)
        if known is not None:
            return known
        declared = {n: tuple(c) for n, c in (yield from self.declared_tables()).items()}
        with _DECLARED_LOCK:
            _DECLARED[key] = declared
        return declared.get(table)

    def integer_id(self, table: str) -> Io[bool]:
        """Whether the table was declared with an INTEGER ``id`` column.

        Its id ``n`` is then stored as ``"<table>:<n>"`` (:func:`..mapping.encode_integer_id`).
        """
        columns = yield from self.declared_columns(table)
        return any(c.name == ID_COLUMN and is_integer_type(c.type) for c in columns or ())

    def data_tables(self) -> Io[dict[str, int]]:
        """``type`` values present in the data, with document counts (a reduce view)."""
        try:
            body = yield self._view_call()
        except NotFound:
            yield from self._ensure_types_view()
            body = yield self._view_call()
        return {row["key"]: int(row["value"]) for row in body.get("rows", [])}

    def _view_call(self) -> Call[Any]:
        db = self._client.database
        return Call(
            "GET",
            f"{db_path(db)}/{TYPES_DDOC}/_view/types",
            params={"group": "true"},
            database=db,
        )

    def _ensure_types_view(self) -> Io[None]:
        ddoc = {"_id": TYPES_DDOC, "language": "javascript", "views": {"types": _TYPES_VIEW}}
        with contextlib.suppress(Conflict):  # another connection created it first
            yield self._client._put(ddoc)

    def table_names(self) -> Io[list[str]]:
        names = set((yield from self.declared_tables()))
        try:
            names.update((yield from self.data_tables()))
        except CouchDBError as exc:  # e.g. a server without a JavaScript query server
            log.debug("type view unavailable: %s", exc)
        return sorted(names)

    def has_table(self, name: str) -> Io[bool]:
        if name in (yield from self.declared_tables()):
            return True
        try:
            page = yield self._client._find({TYPE_FIELD: {"$eq": name}}, limit=1, fields=["_id"])
        except NotFound:  # no database yet: no tables
            return False
        return bool(page.docs)

    # -- indexes --------------------------------------------------------------------------

    def mango_indexes(self) -> Io[list[MangoIndex]]:
        """Every JSON index of the database, for the planner (cached until DDL)."""
        cached = _INDEXES.get(self._declared_key)
        if cached is None:
            cached = yield from self._load_indexes()
            with _DECLARED_LOCK:
                _INDEXES[self._declared_key] = cached
        return list(cached)

    def indexes(self) -> Io[list[IndexDef]]:
        """The indexes SQL created (``CREATE INDEX``), as SQL sees them."""
        found: list[IndexDef] = []
        for index in (yield from self.mango_indexes()):
            ddoc = (index.ddoc or "").removeprefix("_design/")
            if ddoc.startswith(_INDEX_DDOC_PREFIX) and index.fields[:1] == (TYPE_FIELD,):
                table = ddoc[len(_INDEX_DDOC_PREFIX) :]
                found.append(IndexDef(table, str(index.name), index.fields[1:]))
        return found

    def invalidate(self) -> None:
        """Forget the indexes (for every connection of this process to the database)."""
        with _DECLARED_LOCK:
            _INDEXES.pop(self._declared_key, None)

    def _load_indexes(self) -> Io[list[MangoIndex]]:
        found: list[MangoIndex] = []
        for index in (yield self._client._list_indexes()):
            if index.get("type") != "json" or index.get("def", {}).get("partial_filter_selector"):
                continue  # _all_docs, text indexes; partial indexes need an explicit use_index
            fields = tuple(next(iter(f)) for f in index.get("def", {}).get("fields", []))
            if fields:
                found.append(MangoIndex(fields, index.get("ddoc"), index.get("name")))
        return found

    def create_index(self, index: IndexDef) -> Io[None]:
        yield self._client._create_index(
            index.mango_fields, index.name, index_ddoc(index.table), None
        )
        self.invalidate()

    def ensure_type_index(self) -> Io[None]:
        """Create the database-wide index on ``type`` (creating an existing one is a no-op)."""
        if not any(i.fields == (TYPE_FIELD,) for i in (yield from self.mango_indexes())):
            yield self._client._create_index([TYPE_FIELD], "type", TYPE_INDEX_DDOC, None)
            self.invalidate()

    def drop_index(self, name: str, table: str | None = None) -> Io[bool]:
        for index in (yield from self.indexes()):
            if index.name == name and (table is None or index.table == table):
                yield self._client._delete_index(index_ddoc(index.table), index.name)
                self.invalidate()
                return True
        return False

    def drop_table_indexes(self, table: str) -> Io[None]:
        doc = yield self._client._get(f"_design/{index_ddoc(table)}", None, missing_ok=True)
        if doc is not None:
            yield self._client._delete(doc["_id"], doc["_rev"])
        self.invalidate()
