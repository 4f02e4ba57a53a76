"""
.. dialect:: couchdb
    :name: CouchDB
    :dbapi: sqlalchemy_couchdb.dbapi
    :connectstring: couchdb://user:password@host:5984/database[?use_ssl=true]

The dialect of Apache CouchDB 3.x. A table is the value of the documents' ``type`` field
(all tables share one database); column ``id`` is ``_id`` and ``rev`` is ``_rev``.
Statements are compiled to SQL text as usual and translated by the DB-API's one
translator (``sqlalchemy_couchdb.sql``) into Mango queries and document writes, so Core,
the ORM and ``text()`` get the same SQL semantics. Writes are durable at once: there are
no transactions, ``COMMIT`` does nothing and ``ROLLBACK`` cannot undo.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import exc, util
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import default, reflection
from sqlalchemy.sql import compiler

from . import types as couch_types

if TYPE_CHECKING:
    from sqlalchemy.engine.base import Connection
    from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPIModule, IsolationLevel
    from sqlalchemy.engine.url import URL

__all__ = ["CouchDBCompiler", "CouchDBDialect"]


_PLAIN_BIND_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class CouchDBCompiler(compiler.SQLCompiler):
    """Renders SQL the translator reads: ANSI SQL with a few spellings made plain."""

    def bindparam_string(self, name: str, **kw: Any) -> str:  # type: ignore[override]
        # The translator's parser reads ``:name`` for plain identifiers only: ":1param"
        # is a number, ":q?marks" and ":/slashes/" hold operators. Such names are sent
        # escaped; SQLAlchemy renames the parameters to match (``escaped_from``).
        if not kw.get("escaped_from") and not _PLAIN_BIND_NAME.match(name):
            escaped = re.sub(r"[^A-Za-z0-9_]", "_", name)
            kw["escaped_from"] = name
            name = escaped if not escaped[:1].isdigit() else f"p{escaped}"
        return super().bindparam_string(name, **kw)

    def visit_truediv_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
        # As SQLite's dialect does: integers divide as integers in the translator (its
        # NUMERIC keeps 2.00 an integer too), so the divisor is made a float.
        return f"{self.process(binary.left, **kw)} / ({self.process(binary.right, **kw)} + 0.0)"

    def _ilike(self, binary: Any, keyword: str, **kw: Any) -> str:
        # Spelled ILIKE (not lower(x) LIKE lower(y)) so the translator sees the intent.
        text = f"{self.process(binary.left, **kw)} {keyword} {self.process(binary.right, **kw)}"
        escape = binary.modifiers.get("escape")
        if escape:
            text += " ESCAPE " + self.render_literal_value(escape, sqltypes.STRINGTYPE)
        return text

    def visit_ilike_op_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
        return self._ilike(binary, "ILIKE", **kw)

    def visit_not_ilike_op_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
        return self._ilike(binary, "NOT ILIKE", **kw)

    def limit_clause(self, select: Any, **kw: Any) -> str:
        # OFFSET alone, not SQLite's "LIMIT -1 OFFSET n".
        text = ""
        if select._limit_clause is not None:
            text += "\n LIMIT " + self.process(select._limit_clause, **kw)
        if select._offset_clause is not None:
            text += " OFFSET " + self.process(select._offset_clause, **kw)
        return text

    def fetch_clause(  # type: ignore[override]
        self, select: Any, fetch_clause: Any = None, require_offset: bool = False, **kw: Any
    ) -> str:
        # FETCH FIRST n ROWS ONLY means LIMIT n, which the translator reads; PERCENT and
        # WITH TIES have no equivalent there.
        options = select._fetch_clause_options if fetch_clause is None else {}
        if options and (options.get("percent") or options.get("with_ties")):
            raise exc.CompileError(
                "FETCH FIRST … PERCENT / WITH TIES is not supported by couchdb://; use LIMIT"
            )
        fetch = select._fetch_clause if fetch_clause is None else fetch_clause
        kw.pop("use_literal_execute_for_simple_int", None)
        text = ""
        if fetch is not None:
            text += "\n LIMIT " + self.process(fetch, **kw)
        if select._offset_clause is not None:
            text += " OFFSET " + self.process(select._offset_clause, **kw)
        return text

    def for_update_clause(self, select: Any, **kw: Any) -> str:
        # Every write checks the revision it read: FOR UPDATE has nothing to add.
        return ""


class CouchDBDDLCompiler(compiler.DDLCompiler):
    def visit_foreign_key_constraint(self, constraint: Any, **kw: Any) -> str:
        # CouchDB cannot enforce foreign keys; the relational copy can.
        return ""


class CouchDBTypeCompiler(compiler.GenericTypeCompiler):
    def visit_JSON(self, type_: Any, **kw: Any) -> str:
        return "JSON"


class CouchDBIdentifierPreparer(compiler.IdentifierPreparer):
    pass


class CouchDBExecutionContext(default.DefaultExecutionContext):
    def create_server_side_cursor(self) -> Any:
        # Every cursor of the driver already reads page by page; the async adapter uses
        # this to fetch lazily instead of buffering the whole result.
        return self._dbapi_connection.cursor(server_side=True)


class CouchDBDialect(default.DefaultDialect):
    """CouchDB 3.x over HTTP, through the ``sqlalchemy_couchdb.dbapi`` driver."""

    name = "couchdb"
    driver = "httpx"
    supports_statement_cache = True

    default_paramstyle = "named"
    statement_compiler = CouchDBCompiler
    ddl_compiler = CouchDBDDLCompiler
    type_compiler_cls = CouchDBTypeCompiler
    preparer = CouchDBIdentifierPreparer
    execution_ctx_cls = CouchDBExecutionContext
    colspecs = couch_types.colspecs

    supports_alter = False
    supports_sequences = False
    supports_schemas = False
    supports_comments = False
    supports_native_boolean = True
    supports_native_decimal = False
    supports_native_enum = False
    supports_native_uuid = False
    supports_server_side_cursors = True
    supports_default_values = True
    supports_default_metavalue = False
    supports_empty_insert = False
    supports_multivalues_insert = True
    supports_is_distinct_from = True
    supports_sane_rowcount = True
    supports_sane_multi_rowcount = True
    supports_simple_order_by_label = True
    insert_returning = True
    update_returning = True
    delete_returning = True
    use_insertmanyvalues = False
    postfetch_lastrowid = False
    requires_name_normalize = False
    div_is_floordiv = True
    max_identifier_length = 255

    @classmethod
    def import_dbapi(cls) -> DBAPIModule:
        from . import dbapi

        return dbapi  # type: ignore[return-value]

    def create_connect_args(self, url: URL) -> tuple[list[Any], dict[str, Any]]:
        # The DB-API parses and checks the URL itself, so it works without SQLAlchemy.
        rendered = url.set(drivername="couchdb").render_as_string(hide_password=False)
        return [rendered], {}

    def _get_server_version_info(self, connection: Connection) -> tuple[int, ...]:
        info = self._run(connection, "server_info")
        version = str(info.get("version", "0"))
        return tuple(int(p) for p in re.findall(r"\d+", version)[:3]) or (0,)

    def _get_default_schema_name(self, connection: Connection) -> str:
        return ""

    # -- transactions: there are none ------------------------------------------------------

    def do_begin(self, dbapi_connection: DBAPIConnection) -> None:
        pass

    def do_rollback(self, dbapi_connection: DBAPIConnection) -> None:
        # The pool resets connections with rollback(); CouchDB writes are already durable.
        dbapi_connection.rollback()

    def get_isolation_level(self, dbapi_connection: DBAPIConnection) -> IsolationLevel:
        return "AUTOCOMMIT"

    def get_default_isolation_level(self, dbapi_conn: DBAPIConnection) -> IsolationLevel:
        return "AUTOCOMMIT"

    def get_isolation_level_values(self, dbapi_conn: DBAPIConnection) -> list[IsolationLevel]:
        return ["AUTOCOMMIT"]

    def set_isolation_level(self, dbapi_connection: DBAPIConnection, level: str) -> None:
        if level != "AUTOCOMMIT":
            raise NotImplementedError(
                "CouchDB has no transactions: every write is committed at once (AUTOCOMMIT)"
            )

    def do_ping(self, dbapi_connection: DBAPIConnection) -> bool:
        dbapi_connection.ping()
        return True

    def is_disconnect(self, e: Exception, connection: Any, cursor: Any) -> bool:
        from .dbapi.exceptions import ConnectionFailed

        return isinstance(e, ConnectionFailed)

    # -- reflection -------------------------------------------------------------------------

    def _run(self, connection: Connection, method: str, *args: Any) -> Any:
        """Call a catalog method on the DB-API connection (sync or async-adapted)."""
        dbapi_conn = connection.connection.dbapi_connection
        call: Callable[..., Any] = getattr(dbapi_conn, method)
        return call(*args)

    @reflection.cache
    def get_table_names(
        self, connection: Connection, schema: str | None = None, **kw: Any
    ) -> list[str]:
        return self._run(connection, "table_names")

    @reflection.cache
    def has_table(
        self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any
    ) -> bool:
        self._ensure_has_table_connection(connection)
        return self._run(connection, "has_table", table_name)

    @reflection.cache
    def get_view_names(
        self, connection: Connection, schema: str | None = None, **kw: Any
    ) -> list[str]:
        return []

    @reflection.cache
    def get_columns(
        self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any
    ) -> list[Any]:
        columns = self._run(connection, "table_columns", table_name)
        if not columns:
            raise exc.NoSuchTableError(table_name)
        # No "autoincrement" key: nothing is generated, and SQLAlchemy's policy is to
        # leave the key out rather than report False for a primary key.
        return [
            {
                "name": col["name"],
                "type": _type_from_name(col["type"]),
                "nullable": col["nullable"],
                "default": None,
            }
            for col in columns
        ]

    @reflection.cache
    def get_pk_constraint(
        self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        # The declared PRIMARY KEY, in its order (declared, not enforced: CREATE TABLE
        # warns); a table never declared is keyed by its document id.
        columns = self._run(connection, "table_columns", table_name)
        if not columns:
            raise exc.NoSuchTableError(table_name)
        key = sorted((c for c in columns if c.get("primary_key")), key=lambda c: c["primary_key"])
        names = [c["name"] for c in key]
        if not names and "primary_key" not in columns[0]:
            names = [c["name"] for c in columns if c["name"] == "id"]
        return {"constrained_columns": names, "name": None}

    def get_foreign_keys(
        self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any
    ) -> list[Any]:
        return []

    @reflection.cache
    def get_indexes(
        self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any
    ) -> list[Any]:
        if not self.has_table(connection, table_name, schema, **kw):
            raise exc.NoSuchTableError(table_name)
        # A UNIQUE index is created for queries only (CouchDB does not enforce it).
        return [
            {"name": index.name, "column_names": list(index.fields), "unique": False}
            for index in self._run(connection, "table_indexes", table_name)
        ]

    def get_unique_constraints(
        self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any
    ) -> list[Any]:
        return []

    def get_check_constraints(
        self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any
    ) -> list[Any]:
        return []

    def get_table_comment(
        self, connection: Connection, table_name: str, schema: str | None = None, **kw: Any
    ) -> Any:
        return {"text": None}


# Declared type names (as the translator's parser spells them) -> the SQL standard types
# SQLAlchemy's reflection returns, as SQLite's dialect does.
_TYPE_NAMES: dict[str, type[sqltypes.TypeEngine[Any]]] = {
    "VARCHAR": sqltypes.VARCHAR,
    "CHAR": sqltypes.CHAR,
    "NCHAR": sqltypes.NCHAR,
    "NVARCHAR": sqltypes.NVARCHAR,
    "TEXT": sqltypes.TEXT,
    "CLOB": sqltypes.CLOB,
    "INTEGER": sqltypes.INTEGER,
    "INT": sqltypes.INTEGER,
    "SMALLINT": sqltypes.SMALLINT,
    "BIGINT": sqltypes.BIGINT,
    "FLOAT": sqltypes.FLOAT,
    "REAL": sqltypes.REAL,
    "DOUBLE": sqltypes.DOUBLE,
    "DOUBLE PRECISION": sqltypes.DOUBLE_PRECISION,
    "NUMERIC": sqltypes.NUMERIC,
    "DECIMAL": sqltypes.DECIMAL,
    "BOOLEAN": sqltypes.BOOLEAN,
    "DATE": sqltypes.DATE,
    "DATETIME": sqltypes.DATETIME,
    "TIMESTAMP": sqltypes.TIMESTAMP,
    "TIME": sqltypes.TIME,
    "JSON": sqltypes.JSON,
    "UUID": sqltypes.UUID,
    "BLOB": sqltypes.BLOB,
    "VARBINARY": sqltypes.VARBINARY,
    "BINARY": sqltypes.BINARY,
    "NULL": sqltypes.NullType,
}


def _type_from_name(name: str) -> sqltypes.TypeEngine[Any]:
    """A SQLAlchemy type from a declared type name such as ``VARCHAR(50)``."""
    match = re.match(r"\s*([A-Za-z ]+?)\s*(?:\((.*)\))?\s*$", name or "")
    if not match:
        return sqltypes.NullType()
    base = match.group(1).upper()
    cls = _TYPE_NAMES.get(base)
    if cls is None:
        util.warn(f"Did not recognize type {name!r} while reflecting a CouchDB table")
        return sqltypes.NullType()
    args = [int(a) for a in re.findall(r"\d+", match.group(2) or "")]
    try:
        return cls(*args)
    except TypeError:
        return cls()
