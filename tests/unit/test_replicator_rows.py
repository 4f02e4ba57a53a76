"""Documents into rows: the one mapping (id = _id, rev = _rev, fields = columns)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects import sqlite

from couchdb_replicator.schema import (
    ColumnSlot,
    Kind,
    KindMismatch,
    TableShape,
    _kind_converter,
)
from couchdb_replicator.values import PoisonValue, converter_for


def shape_of(table: sa.Table, inferred: dict[str, Kind] | None = None) -> TableShape:
    """The sink's view of ``table``: declared columns, but for the ``inferred`` ones
    (name: kind), which take strictly their kind and ask to widen."""
    dialect = sqlite.dialect()
    inferred = inferred or {}
    slots = {
        c.name: ColumnSlot(c.name, c.key, converter_for(c.type, dialect))
        for c in table.columns
        if c.name not in ("id", "rev", *inferred)
    }
    for name, kind in inferred.items():
        slots[name] = ColumnSlot(name, name, _kind_converter(kind), kind)
    return TableShape(
        table=table,
        slots=slots,
        id_key="id",
        id_convert=converter_for(table.c.id.type, dialect),
        rev_key="rev",
        dialect=dialect,
    )


def declared_shape() -> TableShape:
    return shape_of(
        sa.Table(
            "user",
            sa.MetaData(),
            sa.Column("id", sa.String(20), primary_key=True),
            sa.Column("rev", sa.String(100)),
            sa.Column("name", sa.String(5)),
            sa.Column("age", sa.Integer, key="years"),
        )
    )


def test_row_maps_id_rev_and_fields_and_nulls_missing_ones() -> None:
    shape = declared_shape()
    row, missing = shape.row({"_id": "u1", "_rev": "1-a", "type": "user", "name": "Ann"})
    assert shape.as_mapping(row) == {"id": "u1", "rev": "1-a", "name": "Ann", "years": None}
    assert missing == []


def test_fields_without_a_column_are_reported_and_metadata_is_ignored() -> None:
    shape = declared_shape()
    row, missing = shape.row(
        {
            "_id": "u1",
            "_rev": "1-a",
            "_attachments": {},
            "type": "user",
            "age": 3,
            "nick": "x",
            "id": "not the id",  # a top-level "id" field cannot be the id column
        }
    )
    assert shape.as_mapping(row)["id"] == "u1" and shape.as_mapping(row)["years"] == 3
    assert sorted(missing) == ["id", "nick"]


def test_poison_values_name_the_field() -> None:
    shape = declared_shape()
    with pytest.raises(PoisonValue, match=r"field 'age'.*not an integer"):
        shape.row({"_id": "u1", "_rev": "1-a", "age": "old"})
    with pytest.raises(PoisonValue, match="too long"):
        shape.row({"_id": "u1", "_rev": "1-a", "name": "Annabel"})
    with pytest.raises(PoisonValue, match="too long"):
        shape.row({"_id": "u" * 21, "_rev": "1-a"})


def test_inferred_columns_ask_to_widen_instead_of_poisoning() -> None:
    table = sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("id", sa.String(512), primary_key=True),
        sa.Column("rev", sa.String(100)),
        sa.Column("n", sa.BigInteger),
    )
    shape = TableShape(
        table=table,
        slots={"n": ColumnSlot("n", "n", _kind_converter("int"), "int")},
        id_key="id",
        id_convert=None,
        rev_key="rev",
        dialect=sqlite.dialect(),
    )
    assert shape.as_mapping(shape.row({"_id": "a", "_rev": "1", "n": 2})[0])["n"] == 2
    with pytest.raises(KindMismatch) as info:
        shape.row({"_id": "a", "_rev": "1", "n": "two"})
    assert getattr(info.value, "field", None) == "n"


def test_documents_with_other_key_sets_get_their_own_plan() -> None:
    shape = declared_shape()
    a, _ = shape.row({"_id": "u1", "_rev": "1-a", "name": "A", "age": 1})
    b, missing = shape.row({"_id": "u2", "_rev": "1-b", "age": 2, "extra": 0, "name": "B"})
    c, _ = shape.row({"_id": "u3", "_rev": "1-c"})
    assert shape.as_mapping(a) == {"id": "u1", "rev": "1-a", "name": "A", "years": 1}
    assert shape.as_mapping(b) == {"id": "u2", "rev": "1-b", "name": "B", "years": 2}
    assert missing == ["extra"]
    assert shape.as_mapping(c) == {"id": "u3", "rev": "1-c", "name": None, "years": None}


def test_bind_processors_are_applied_like_sqlalchemy_would() -> None:
    table = sa.Table(
        "j",
        sa.MetaData(),
        sa.Column("id", sa.String(10), primary_key=True),
        sa.Column("rev", sa.String(10)),
        sa.Column("data", sa.JSON(none_as_null=True)),
        sa.Column("plain_json", sa.JSON()),
    )
    dialect = sqlite.dialect()
    shape = TableShape(
        table=table,
        slots={
            "data": ColumnSlot("data", "data", None),
            "plain_json": ColumnSlot("plain_json", "plain_json", None),
        },
        id_key="id",
        id_convert=None,
        rev_key="rev",
        dialect=dialect,
    )
    row = shape.as_mapping(shape.row({"_id": "a", "_rev": "1", "data": {"k": [1]}})[0])
    assert row["data"] == '{"k": [1]}'
    # A missing field goes through the processor too: JSON() without none_as_null
    # stores the JSON text 'null', as SQLAlchemy itself would.
    assert row["plain_json"] == "null"


def mixed_shape() -> TableShape:
    table = sa.Table(
        "m",
        sa.MetaData(),
        sa.Column("id", sa.String(30), primary_key=True),
        sa.Column("rev", sa.String(100)),
        sa.Column("name", sa.String(8)),
        sa.Column("n", sa.Integer),
        sa.Column("x", sa.Float),
        sa.Column("ok", sa.Boolean),
        sa.Column("data", sa.JSON),
        sa.Column("also", sa.Text, key="renamed"),
        sa.Column("ki", sa.BigInteger),
        sa.Column("kf", sa.Double),
        sa.Column("kt", sa.Text),
    )
    return shape_of(table, {"ki": "int", "kf": "float", "kt": "text"})


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    fields=st.dictionaries(
        st.sampled_from(
            ["name", "n", "x", "ok", "data", "also", "ki", "kf", "kt", "extra", "_rev"]
        ),
        _VALUES,
        max_size=6,
    ),
    doc_id=st.text(min_size=1, max_size=35),
)
def test_generated_rows_equal_the_step_by_step_ones(fields: dict[str, object], doc_id: str) -> None:
    """A document gives the same row, or the same refusal, either way."""
    shape = mixed_shape()
    doc = {"_id": doc_id, **fields}
    steps = shape._plan(doc, tuple(doc))[0]
    try:
        expected = shape.row_by_steps(doc, steps)
    except PoisonValue as exc:
        with pytest.raises(type(exc)) as info:
            shape.row(doc)
        assert str(info.value) == str(exc)
        assert getattr(info.value, "field", None) == getattr(exc, "field", None)
        return
    assert shape.row(doc)[0] == expected
