"""INTEGER ``id`` columns: id ``n`` of table ``t`` is the document id ``"t:n"`` (no server)."""

from __future__ import annotations

from typing import Any

import pytest

from sqlalchemy_couchdb.dbapi.exceptions import DataError, NotSupportedError
from sqlalchemy_couchdb.mapping import decode_integer_id, encode_integer_id, is_integer_type
from sqlalchemy_couchdb.sql import DeletePlan, InsertPlan, SelectPlan, UpdatePlan, compile_sql

T = {"type": {"$eq": "t"}}


@pytest.mark.parametrize(
    ("doc_id", "expected"),
    [
        ("t:42", 42),
        ("t:0", 0),
        ("t:-7", -7),
        ("t:12345678901234567890", 12345678901234567890),
        # Not the canonical form: stays the text it is, so each int has exactly one id.
        ("t:042", "t:042"),
        ("t:+1", "t:+1"),
        ("t:-0", "t:-0"),
        ("t:1.0", "t:1.0"),
        ("t:", "t:"),
        ("t:٣", "t:٣"),  # a non-ASCII digit
        ("42", "42"),
        ("u:42", "u:42"),
        ("tt:42", "tt:42"),
    ],
)
def test_decode_integer_id(doc_id: str, expected: Any) -> None:
    assert decode_integer_id("t", doc_id) == expected
    if isinstance(expected, int):
        assert encode_integer_id("t", expected) == doc_id


def test_integer_ids_of_a_table_with_a_colon_in_its_name() -> None:
    assert encode_integer_id("a:b", 1) == "a:b:1"
    assert decode_integer_id("a:b", "a:b:1") == 1
    assert decode_integer_id("a", "a:b:1") == "a:b:1"


@pytest.mark.parametrize("name", ["INT", "INTEGER", "BIGINT", "SMALLINT", "int", "INTEGER(11)"])
def test_integer_types(name: str) -> None:
    assert is_integer_type(name)


@pytest.mark.parametrize("name", ["VARCHAR", "VARCHAR(10)", "TEXT", "DECIMAL(10, 2)", "", "UUID"])
def test_other_types(name: str) -> None:
    assert not is_integer_type(name)


def _select(sql: str, params: object, integer_id: bool) -> list[Any]:
    plan = compile_sql(sql)
    assert isinstance(plan, SelectPlan)
    return list(plan.bind(params, (), integer_id=integer_id).requests)  # type: ignore[arg-type]


def test_equality_finds_the_table_qualified_id() -> None:
    sql = "SELECT t.x FROM t WHERE t.id = :p"
    (request,) = _select(sql, {"p": 5}, True)
    assert request.selector == {**T, "_id": {"$eq": "t:5"}}
    assert request.limit is None or request.limit >= 1
    # A text id column: the number 5 equals no text id, so nothing is read.
    assert _select(sql, {"p": 5}, False) == []
    # 5.0 is the integer 5; 5.5 is no integer, so no row can have it.
    assert _select(sql, {"p": 5.0}, True)[0].selector["_id"] == {"$eq": "t:5"}
    assert _select(sql, {"p": 5.5}, True) == []


def test_in_list_maps_numbers_and_keeps_foreign_text_ids() -> None:
    sql = "SELECT t.x FROM t WHERE t.id IN (1, 2, 2.5, 't:4', 'abc')"
    (request,) = _select(sql, None, True)
    # 't:4' reads back as the int 4, which never equals the text 't:4': left out.
    assert request.selector["_id"] == {"$in": ["t:1", "t:2", "abc"]}


def test_not_in_excludes_the_mapped_ids() -> None:
    (request,) = _select("SELECT t.x FROM t WHERE t.id NOT IN (1, 2)", None, True)
    assert request.selector["_id"] == {"$nin": ["t:1", "t:2"]}


def test_ranges_and_order_are_left_to_the_client() -> None:
    # As text "t:10" < "t:9": the server can neither bound nor sort integer ids.
    (request,) = _select("SELECT t.x FROM t WHERE t.id > 3 ORDER BY t.id", None, True)
    assert request.selector == T
    assert request.sort is None
    (text_ids,) = _select("SELECT t.x FROM t ORDER BY t.id", None, False)
    assert text_ids.sort == [{"_id": "asc"}]


def _insert(sql: str, params: dict[str, Any], integer_id: bool) -> list[dict[str, Any]]:
    plan = compile_sql(sql)
    assert isinstance(plan, InsertPlan)
    return plan.documents(params, integer_id=integer_id)


def test_insert_writes_the_table_qualified_id() -> None:
    sql = "INSERT INTO t (id, x) VALUES (:id, :x)"
    assert _insert(sql, {"id": 5, "x": 1}, True) == [{"_id": "t:5", "type": "t", "x": 1}]
    assert _insert(sql, {"id": "42", "x": 1}, True)[0]["_id"] == "t:42"
    assert _insert(sql, {"id": -3, "x": 1}, True)[0]["_id"] == "t:-3"


@pytest.mark.parametrize("bad", [True, 1.5, "abc", "t:1", [1]])
def test_insert_refuses_what_is_no_integer(bad: Any) -> None:
    with pytest.raises(DataError, match="INTEGER"):
        _insert("INSERT INTO t (id, x) VALUES (:id, :x)", {"id": bad, "x": 1}, True)


def test_insert_without_an_integer_id_says_couchdb_cannot_number_rows() -> None:
    with pytest.raises(NotSupportedError, match="cannot number rows"):
        _insert("INSERT INTO t (x) VALUES (:x)", {"x": 1}, True)
    # A text id column gets a generated id, as before.
    assert _insert("INSERT INTO t (x) VALUES (:x)", {"x": 1}, False)[0]["_id"]


def test_update_and_delete_find_the_table_qualified_id() -> None:
    update = compile_sql("UPDATE t SET x = :x WHERE t.id = :p")
    delete = compile_sql("DELETE FROM t WHERE t.id IN (:a, :b)")
    assert isinstance(update, UpdatePlan) and isinstance(delete, DeletePlan)
    (request,) = update.bind({"x": 1, "p": 7}, (), integer_id=True).requests
    assert request.selector == {**T, "_id": {"$eq": "t:7"}}
    (request,) = delete.bind({"a": 1, "b": 2}, (), integer_id=True).requests
    assert request.selector == {**T, "_id": {"$in": ["t:1", "t:2"]}}
    bound = update.bind({"x": 1, "p": 7}, (), integer_id=True)
    assert bound.matches({"_id": 7, "type": "t"})  # the cursor hands over ids read as ints
    assert not bound.matches({"_id": "t:7", "type": "t"})
