"""SELECT * of a declared table is its declared columns; of any other, id, rev, fields."""

from __future__ import annotations

from typing import Any

from sqlalchemy_couchdb.sql import SelectPlan, compile_sql

DOCS = [
    {"_id": "a", "_rev": "1-x", "type": "t", "x": 1, "extra": "e"},
    {"_id": "b", "_rev": "1-y", "type": "t", "x": 1},
]


def _run(sql: str, star: list[str] | None) -> tuple[Any, list[tuple[Any, ...]]]:
    plan = compile_sql(sql)
    assert isinstance(plan, SelectPlan)
    bound = plan.bind(None, (), star_columns=star)
    run = bound.start()
    assert run.columns == bound.columns
    rows = run.feed(0, DOCS) + run.finish()
    return run.columns, rows


def test_declared_columns_in_their_order_known_before_reading() -> None:
    columns, rows = _run("SELECT * FROM t", ["x", "id", "missing"])
    assert columns == ("x", "id", "missing")
    assert rows == [(1, "a", None), (1, "b", None)]


def test_star_next_to_expressions_and_distinct() -> None:
    columns, rows = _run("SELECT DISTINCT *, t.x + 1 AS q FROM t", ["x"])
    assert columns == ("x", "q")
    assert rows == [(1, 2)]  # both documents give (1, 2): DISTINCT keeps one


def test_undeclared_table_is_id_rev_and_every_field() -> None:
    columns, rows = _run("SELECT * FROM t", None)
    assert columns == ("id", "rev", "x", "extra")
    assert rows == [("a", "1-x", 1, "e"), ("b", "1-y", 1, None)]
