"""Type inference and widening of the inferred schema (no database)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects import mysql, postgresql

from couchdb_replicator.schema import (
    _kind_converter,
    kind_of,
    kind_of_type,
    sql_type,
    widen,
)
from couchdb_replicator.values import PoisonValue

KINDS = ["bool", "int", "float", "text", "json"]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, None),
        (True, "bool"),
        (False, "bool"),
        (0, "int"),
        (-(2**63), "int"),
        (2**63, "text"),  # no 64-bit column holds it exactly
        (1.5, "float"),
        (1.0, "float"),
        ("", "text"),
        ("x", "text"),
        ({"a": 1}, "json"),
        ([1, 2], "json"),
    ],
)
def test_kind_of_json_values(value: Any, kind: str | None) -> None:
    assert kind_of(value) == kind


@pytest.mark.parametrize(
    ("a", "b", "wider"),
    [
        ("bool", "int", "int"),
        ("int", "float", "float"),
        ("bool", "float", "float"),
        ("int", "text", "text"),
        ("json", "text", "text"),
        ("json", "int", "text"),
        ("json", "json", "json"),
        (None, "int", "int"),
        ("int", None, "int"),
    ],
)
def test_widen(a: Any, b: Any, wider: str) -> None:
    assert widen(a, b) == wider
    assert widen(b, a) == wider


@given(st.sampled_from(KINDS), st.sampled_from(KINDS), st.sampled_from(KINDS))
def test_widen_is_a_join(a: Any, b: Any, c: Any) -> None:
    """Commutative, associative, idempotent: the order documents arrive in cannot matter."""
    assert widen(a, b) == widen(b, a)
    assert widen(widen(a, b), c) == widen(a, widen(b, c))
    assert widen(a, a) == a
    assert widen(a, widen(a, b)) == widen(a, b)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=5,
)


@given(st.lists(json_values, min_size=1, max_size=6))
def test_the_widened_kind_accepts_every_value(values: list[Any]) -> None:
    """The column kind inferred from a set of values holds each of them."""
    kind = None
    for v in values:
        kind = widen(kind, kind_of(v))
    if kind is None:
        return
    convert = _kind_converter(kind)
    for v in values:
        if v is not None:
            convert(v)  # must not raise


def test_strict_converters_refuse_wider_values() -> None:
    with pytest.raises(PoisonValue):
        _kind_converter("bool")(1)
    with pytest.raises(PoisonValue):
        _kind_converter("int")(1.5)
    with pytest.raises(PoisonValue):
        _kind_converter("float")("1")
    with pytest.raises(PoisonValue):
        _kind_converter("json")("x")
    assert _kind_converter("int")(True) == 1
    assert _kind_converter("float")(2) == 2.0
    assert _kind_converter("text")({"a": [1]}) == '{"a": [1]}'
    assert _kind_converter("text")(True) == "true"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
@pytest.mark.parametrize("kind", KINDS)
def test_sql_type_round_trips_through_reflection(backend: str, kind: Any) -> None:
    expected = "text" if backend == "mysql" and kind == "json" else kind
    assert kind_of_type(sql_type(kind, backend)) == expected


def test_mysql_text_is_longtext_and_json_is_not_mariadb_json() -> None:
    assert isinstance(sql_type("text", "mysql"), mysql.LONGTEXT)
    assert isinstance(sql_type("json", "mysql"), mysql.LONGTEXT)
    assert isinstance(sql_type("json", "postgresql"), postgresql.JSONB)
    json_type = sql_type("json", "sqlite")
    assert isinstance(json_type, sa.JSON)
    assert json_type.none_as_null  # a missing field is SQL NULL, not 'null'


def test_reflected_mysql_bool_is_bool() -> None:
    assert kind_of_type(mysql.TINYINT(display_width=1)) == "bool"
    assert kind_of_type(sa.Date()) is None
