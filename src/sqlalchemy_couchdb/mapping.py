"""One schema, two stores: how a CouchDB document maps to a table row and back.

A table is the value of the document's ``type`` field (all tables share one CouchDB
database); column ``id`` is ``_id``, column ``rev`` is ``_rev``; every other column is
the top-level field of the same name. The dialect, the replicator and the monitor all
use this module, so the copy and CouchDB can never disagree on the shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "ID_COLUMN",
    "RESERVED_COLUMNS",
    "REV_COLUMN",
    "TYPE_FIELD",
    "column_to_field",
    "document_to_row",
    "field_to_column",
    "is_design_document",
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
    ``type`` discriminator are not columns.
    """
    row: dict[str, Any] = {ID_COLUMN: doc.get("_id"), REV_COLUMN: doc.get("_rev")}
    for key, value in doc.items():
        if key.startswith("_") or key == TYPE_FIELD:
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
