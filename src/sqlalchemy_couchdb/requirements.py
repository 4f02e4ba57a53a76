"""What couchdb:// supports, for SQLAlchemy's dialect compliance suite.

``test.cfg`` names this class (``[sqla_testing] requirement_cls``); ``tests/compliance``
runs the suite. A requirement must say what the dialect really does: a closed one can
send a test down its "expected to fail" branch, and an open one runs the test. So:

* ``_OPEN`` lists what works although ``SuiteRequirements`` assumes it does not;
* ``_CANNOT`` lists, with the reason the suite prints next to each test it skips, every
  requirement the suite uses that CouchDB (or this dialect, on purpose) cannot meet.

The reasons come back to a few facts:

* one database holds every table; a row is a JSON document whose id is the ``id``
  column, and nothing else is unique or constrained;
* a Mango query reads one table: no joins, subqueries, set operations, CTEs, grouping
  or windows (the dialect refuses them with ``NotSupportedError``);
* every write is durable when it returns: no transactions, rollback or savepoints;
* CouchDB has no sequences, generated integers, server defaults, views, schemas,
  temporary tables, comments, or enforced UNIQUE / FOREIGN KEY / CHECK constraints;
* numbers are JSON numbers (doubles): no Infinity/NaN, about 15 significant digits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.testing import exclusions
from sqlalchemy.testing.requirements import SuiteRequirements

__all__ = ["Requirements"]

_NO_SUBQUERY = "a Mango query reads one table: subqueries are refused (NotSupportedError)"
_NO_UNION = "no UNION/INTERSECT/EXCEPT: a Mango query reads one table"
_NO_FK = "CouchDB cannot enforce foreign keys: CREATE TABLE leaves them out"
_NO_CONSTRAINTS = "constraints are not stored (only columns, primary key and indexes)"
_NO_COMMENTS = "no comments: CouchDB keeps no DDL text"
_NO_SCHEMAS = "no schemas: a table is a document type inside the one database"
_NO_VIEWS = "no views: CREATE VIEW is refused; a database holds documents and indexes"
_NO_TEMP = "no temporary tables: every document is shared and durable"
_NO_TRANSACTIONS = "no transactions: every write is durable when it returns"
_NO_GENERATED = "CouchDB cannot number rows: no autoincrement, identity or sequence"
_NO_SERVER_DEFAULTS = "no server-side defaults: a document holds what was written"
_NO_INDEX_OPTIONS = "a Mango index lists fields only (no expressions, directions, INCLUDE)"
_DOUBLES = "numbers are JSON numbers (doubles): about 15 significant digits"
_NO_FUNCTION = "not translated: the translator evaluates a fixed set of SQL functions"
_NO_FETCH = "FETCH FIRST … PERCENT / WITH TIES: no equivalent in the translator"

#: Requirements SuiteRequirements leaves closed that the dialect meets (each checked by
#: the suite's tests passing).
_OPEN = {
    "table_ddl_if_exists": "CREATE TABLE IF NOT EXISTS / DROP TABLE IF EXISTS",
    "index_ddl_if_exists": "CREATE INDEX IF NOT EXISTS / DROP INDEX IF EXISTS",
    "nullsordering": "ORDER BY … NULLS FIRST / LAST, on the server or the client",
    "datetime_timezone": "a tz-aware DateTime is stored in UTC (+00:00) and read back aware",
    "time_timezone": "a tz-aware Time keeps its offset in the ISO 8601 text",
    "datetime_historic": "ISO 8601 text: any year from 1 to 9999",
    "date_historic": "ISO 8601 text: any year from 1 to 9999",
    "datetime_literals": "date and time literals render as ISO 8601 text, read back typed",
    "timestamp_microseconds": "microseconds are kept in the ISO 8601 text",
    "uuid_data_type": "UUID columns: canonical text in the document, uuid.UUID in Python",
    "unicode_ddl": "table and column names are any JSON text (type values, field names)",
    "nvarchar_types": "NVARCHAR/NCHAR are declared and reflected as such",
    "precision_numerics_retains_significant_digits": "Numeric(p, s) comes back quantized",
    "fetch_first": "FETCH FIRST n ROWS ONLY is rendered as LIMIT n",
    "fetch_no_order_by": "FETCH FIRST n ROWS ONLY is rendered as LIMIT n",
    "fetch_expression": "FETCH FIRST n ROWS ONLY is rendered as LIMIT n",
}

#: Requirements the suite uses that the dialect does not meet, and why.
_CANNOT = {
    # -- keys and constraints
    "autoincrement_insert": _NO_GENERATED
    + " (a String id with server_default=FetchedValue() gets a generated one)",
    "autoincrement_without_sequence": _NO_GENERATED,
    "identity_columns": _NO_GENERATED,
    "identity_columns_standard": _NO_GENERATED,
    "implements_get_lastrowid": "no generated integer keys: lastrowid is the last document id",
    "dbapi_lastrowid": "no generated integer keys: lastrowid is the last document id",
    "foreign_keys": _NO_FK,
    "foreign_key_constraint_reflection": _NO_FK,
    "foreign_key_constraint_name_reflection": _NO_FK,
    "foreign_key_constraint_option_reflection_ondelete": _NO_FK,
    "foreign_key_constraint_option_reflection_onupdate": _NO_FK,
    "fk_constraint_option_reflection_ondelete_noaction": _NO_FK,
    "fk_constraint_option_reflection_ondelete_restrict": _NO_FK,
    "fk_constraint_option_reflection_onupdate_restrict": _NO_FK,
    "foreign_keys_reflect_as_index": _NO_FK,
    "self_referential_foreign_keys": _NO_FK,
    "repeated_column_foreign_keys": _NO_FK,
    "repeated_remote_col_foreign_keys": _NO_FK,
    "cross_schema_fk_reflection": _NO_FK,
    "named_constraints": _NO_CONSTRAINTS,
    "implicitly_named_constraints": _NO_CONSTRAINTS,
    "reflects_pk_names": _NO_CONSTRAINTS,
    "unique_constraint_reflection": "UNIQUE is not enforced: CREATE TABLE warns, keeps nothing",
    "unique_constraints_reflect_as_index": "UNIQUE is not enforced: CREATE TABLE keeps nothing",
    "unique_index_reflect_as_unique_constraints": "UNIQUE is not enforced",
    "check_constraint_reflection": "CHECK is not enforced: CREATE TABLE warns, keeps nothing",
    "inline_check_constraint_reflection": "CHECK is not enforced",
    "computed_columns": "no computed columns: a document holds what was written",
    "computed_columns_stored": "no computed columns",
    "computed_columns_virtual": "no computed columns",
    "computed_columns_default_persisted": "no computed columns",
    "computed_columns_reflect_persisted": "no computed columns",
    "server_defaults": _NO_SERVER_DEFAULTS,
    "expression_server_defaults": _NO_SERVER_DEFAULTS,
    # -- indexes
    "indexes_with_ascdesc": _NO_INDEX_OPTIONS,
    "reflect_indexes_with_ascdesc": _NO_INDEX_OPTIONS,
    "reflect_indexes_with_ascdesc_as_expression": _NO_INDEX_OPTIONS,
    "indexes_with_expressions": _NO_INDEX_OPTIONS,
    "reflect_indexes_with_expressions": _NO_INDEX_OPTIONS,
    "index_reflects_included_columns": _NO_INDEX_OPTIONS,
    "indexes_check_column_order": "only the order of a Mango index's fields is kept",
    # -- objects CouchDB has not
    "views": _NO_VIEWS,
    "view_reflection": _NO_VIEWS,
    "view_column_reflection": _NO_VIEWS,
    "materialized_views": _NO_VIEWS,
    "materialized_views_reflect_pk": _NO_VIEWS,
    "create_or_replace_view": _NO_VIEWS,
    "temporary_views": _NO_VIEWS,
    "temporary_tables": _NO_TEMP,
    "temp_table_reflection": _NO_TEMP,
    "temp_table_reflect_indexes": _NO_TEMP,
    "temp_table_names": _NO_TEMP,
    "temp_table_comment_reflection": _NO_TEMP,
    "has_temp_table": _NO_TEMP,
    "create_temp_table_as": _NO_TEMP,
    "schemas": _NO_SCHEMAS,
    "schema_reflection": _NO_SCHEMAS,
    "schema_create_delete": _NO_SCHEMAS,
    "percent_schema_names": _NO_SCHEMAS,
    "default_schema_name_switch": _NO_SCHEMAS,
    "sequences": "no sequences",
    "sequences_optional": "no sequences",
    "comment_reflection": _NO_COMMENTS,
    "comment_reflection_full_unicode": _NO_COMMENTS,
    "constraint_comment_reflection": _NO_COMMENTS,
    "column_collation_reflection": "no column collations: text compares by code point",
    "order_by_collation": "no COLLATE: CouchDB has no named collations",
    "reflect_table_options": "no table options: a table is a document type",
    "reflect_tables_no_columns": "a declared table needs a column (CREATE TABLE t () fails)",
    # -- queries the translator refuses
    "subqueries": _NO_SUBQUERY,
    "update_where_target_in_subquery": _NO_SUBQUERY,
    "nested_aggregates": _NO_SUBQUERY,
    "insert_from_select": "INSERT … SELECT reads other rows: refused",
    "create_table_as": "CREATE TABLE … AS SELECT reads other rows: refused",
    "ctes": "no WITH (CTEs): " + _NO_SUBQUERY,
    "ctes_with_update_delete": "no WITH (CTEs)",
    "ctes_with_values": "no WITH (CTEs)",
    "parens_in_union_contained_select_w_limit_offset": _NO_UNION,
    "parens_in_union_contained_select_wo_limit_offset": _NO_UNION,
    "order_by_col_from_union": _NO_UNION,
    "group_by_complex_expression": "no GROUP BY: Mango queries cannot group",
    "window_functions": "no window functions: Mango queries cannot",
    "window_range": "no window functions",
    "window_range_numeric": "no window functions",
    "window_range_non_numeric": "no window functions",
    "update_from": "UPDATE … FROM reads another table: refused",
    "delete_from": "DELETE … USING reads another table: refused",
    "table_value_constructor": "no VALUES table constructor: a query reads one table",
    "tuple_in": "(a, b) IN ((…)) is not translated",
    "tuple_in_w_empty": "(a, b) IN ((…)) is not translated",
    "supports_distinct_on": "DISTINCT ON is PostgreSQL's",
    "regexp_match": "REGEXP is not translated (LIKE is)",
    "regexp_replace": _NO_FUNCTION,
    "supports_bitwise_and": _NO_FUNCTION,
    "supports_bitwise_or": _NO_FUNCTION,
    "supports_bitwise_not": _NO_FUNCTION,
    "supports_bitwise_xor": _NO_FUNCTION,
    "supports_bitwise_shift": _NO_FUNCTION,
    "fetch_percent": _NO_FETCH,
    "fetch_ties": _NO_FETCH,
    "fetch_offset_with_options": _NO_FETCH,
    "json_type": "JSON values round-trip, but JSON path indexing (col['key']) is not translated",
    "json_array_indexes": "JSON path indexing is not translated",
    "legacy_unconditional_json_extract": "JSON path indexing is not translated",
    "json_deserializer_binary": "JSON is stored as JSON, never through a deserializer",
    "array_type": "no ARRAY type (store a list in a JSON column)",
    "datetime_interval": "no INTERVAL type or date arithmetic",
    "datetime_timezone_historic": "tz-aware values are normalized to UTC; historic offsets differ",
    # -- transactions
    "autocommit": "AUTOCOMMIT is the only level: the suite's 'autocommit off, then "
    "rollback' half cannot hold. " + _NO_TRANSACTIONS,
    "skip_autocommit_rollback": _NO_TRANSACTIONS,
    "isolation_level": "AUTOCOMMIT is the only isolation level. " + _NO_TRANSACTIONS,
    "savepoints": _NO_TRANSACTIONS,
    "two_phase_transactions": _NO_TRANSACTIONS,
    # -- numbers
    "precision_numerics_many_significant_digits": _DOUBLES,
    "cast_precision_numerics_many_significant_digits": _DOUBLES,
    "float_or_double_precision_behaves_generically": _DOUBLES,
    "infinity_floats": "JSON has no Infinity or NaN",
    # -- returning
    "insert_executemany_returning": "RETURNING with executemany is not offered to SQLAlchemy",
}


def _requirement(reason: str | None) -> property:
    """A requirement that is met (None), or not, for the reason given."""

    def get(self: Requirements) -> Any:
        if reason is None:
            return exclusions.open()
        # exclusions.closed() takes no reason before SQLAlchemy 2.1.
        return exclusions.skip_if(exclusions.BooleanPredicate(True, reason))

    return property(get)


class Requirements(SuiteRequirements):
    @property
    def async_dialect(self) -> Any:
        return exclusions.only_if(
            lambda config: bool(config.db.dialect.is_async), "the sync driver"
        )


for _name in _OPEN:
    setattr(Requirements, _name, _requirement(None))
for _name, _reason in _CANNOT.items():
    setattr(Requirements, _name, _requirement(_reason))
