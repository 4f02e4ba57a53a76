"""One schema, two stores: how a CouchDB document maps to a table row and back.

A table is the value of the document's ``type`` field (all tables share one CouchDB
database); column ``id`` is ``_id``, column ``rev`` is ``_rev``; every other column is
the top-level field of the same name. The dialect, the replicator and the monitor all
use this module, so the copy and CouchDB can never disagree on the shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "ID_COLUMN",
    "RESERVED_COLUMNS",
    "REV_COLUMN",
    "TYPE_FIELD",
    "column_to_field",
    "decode_integer_id",
    "document_to_row",
    "encode_integer_id",
    "field_to_column",
    "is_design_document",
    "is_integer_type",
    "is_local_document",
    "row_to_document",
    "table_of",
]

TYPE_FIELD = "type"
ID_COLUMN = "id"
REV_COLUMN = "rev"
RESERVED_COLUMNS = (ID_COLUMN, REV_COLUMN)

_COLUMN_TO_FIELD = {ID_COLUMN: "_id", REV_COLUMN: "_rev"}
_FIELD_TO_COLUMN = {v: k for k, v in _COLUMN_TO_FIELD.items()}


def column_to_field(column: str) -> str:
    """The document field a column reads from: ``id`` -> ``_id``, ``rev`` -> ``_rev``."""
    return _COLUMN_TO_FIELD.get(column, column)


def field_to_column(field: str) -> str:
    """The column a top-level document field appears as."""
    return _FIELD_TO_COLUMN.get(field, field)


# An INTEGER ``id`` column. CouchDB ids are strings, and one database holds every table,
# whose integer keys all start at 1; so the id of row 42 of table "users" is "users:42"
# (the form of a partitioned database's ids, the table as the partition), and it reads
# back as 42. Only "<table>:" followed by canonical decimal text ("42", "-7": no "+",
# no leading zeros) reads back as an int, so each int maps to one id and back; any other
# id in such a table (written by another program) stays a string.
_CANONICAL_INTEGER = re.compile(r"0|-?[1-9][0-9]*")
_INTEGER_TYPES = frozenset({"INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "MEDIUMINT"})


def is_integer_type(type_name: str) -> bool:
    """Whether a declared SQL type (``INT``, ``BIGINT``, ``INTEGER(11)`` …) is an integer."""
    return type_name.split("(", 1)[0].strip().upper() in _INTEGER_TYPES


def encode_integer_id(table: str, value: int) -> str:
    """The ``_id`` of integer id ``value`` in ``table``: ``"<table>:<value>"``."""
    return f"{table}:{int(value)}"


def decode_integer_id(table: str, doc_id: Any) -> Any:
    """The integer an ``_id`` of ``table`` stands for, or the id itself when it is not
    the canonical form :func:`encode_integer_id` writes."""
    prefix = f"{table}:"
    if type(doc_id) is str and doc_id.startswith(prefix):
        digits = doc_id[len(prefix) :]
        if _CANONICAL_INTEGER.fullmatch(digits):
            return int(digits)
    return doc_id


def is_design_document(doc_id: str) -> bool:
    return doc_id.startswith("_design/")


def is_local_document(doc_id: str) -> bool:
    return doc_id.startswith("_local/")


def table_of(doc: Mapping[str, Any]) -> str | None:
    """The table a document belongs to, or None when it has no usable ``type``.

    A tombstone (``_deleted``) has no ``type``: callers find its table by id.
    """
    value = doc.get(TYPE_FIELD)
    return value if isinstance(value, str) and value else None


def document_to_row(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Columns of a document: ``id``, ``rev``, then its own fields in document order.

    CouchDB's metadata fields (``_attachments``, ``_conflicts``, ``_deleted`` …) and the
    ``type`` discriminator are not columns; nor are top-level fields named ``id`` or ``rev``,
    which would otherwise overwrite the columns that ``_id`` and ``_rev`` are.
    """
    row: dict[str, Any] = {ID_COLUMN: doc.get("_id"), REV_COLUMN: doc.get("_rev")}
    for key, value in doc.items():
        if key.startswith("_") or key == TYPE_FIELD or key in RESERVED_COLUMNS:
            continue
        row[key] = value
    return row


def row_to_document(
    table: str, values: Mapping[str, Any], *, skip: Iterable[str] = ()
) -> dict[str, Any]:
    """The document INSERT writes for a row: ``{"type": table, "_id"?, fields…}``.

    ``id`` becomes ``_id`` when given (not None); ``rev`` becomes ``_rev`` when given.
    """
    skipped = set(skip)
    doc: dict[str, Any] = {TYPE_FIELD: table}
    for column, value in values.items():
        if column in skipped:
            continue
        if column in RESERVED_COLUMNS:
            if value is not None:
                doc[column_to_field(column)] = value
            continue
        if column == TYPE_FIELD:
            raise ValueError(
                f"column name {TYPE_FIELD!r} is reserved: it holds the table name "
                f"({table!r}) in every document"
            )
        doc[column] = value
    return doc
