"""The one mapping between documents and rows, shared by the dialect and the replicator."""

from __future__ import annotations

from sqlalchemy_couchdb.mapping import document_to_row, row_to_document, table_of


def test_document_to_row_puts_id_and_rev_first_and_drops_metadata() -> None:
    doc = {"_id": "a", "_rev": "1-x", "type": "t", "_conflicts": [], "name": "n", "n": 1}
    assert list(document_to_row(doc).items()) == [
        ("id", "a"),
        ("rev", "1-x"),
        ("name", "n"),
        ("n", 1),
    ]


def test_fields_named_id_or_rev_never_overwrite_the_document_id() -> None:
    row = document_to_row({"_id": "real", "_rev": "2-y", "id": 5, "rev": "fake", "type": "t"})
    assert row == {"id": "real", "rev": "2-y"}


def test_row_to_document_and_table_of() -> None:
    doc = row_to_document("t", {"id": "k", "rev": None, "x": 1})
    assert doc == {"type": "t", "_id": "k", "x": 1}
    assert table_of(doc) == "t"
    assert table_of({"_id": "k", "_deleted": True}) is None
