"""SQL semantics of the client-side evaluation (through a modelled CouchDB, no server).

Every query runs twice, once where no index exists (the client sorts) and once with
indexes (the server sorts, NULL rows come from a second request); both must agree.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_sql_mango import FakeServer, run_sql

from sqlalchemy_couchdb.dbapi.exceptions import DataError
from sqlalchemy_couchdb.sql import MangoIndex, SelectPlan, compile_sql

INDEXES = [
    MangoIndex(("type", "x"), "sqla-t", "ix_x"),
    MangoIndex(("type", "x", "y"), "sqla-t", "ix_xy"),
    MangoIndex(("type", "name"), "sqla-t", "ix_name"),
]


def docs_of(*rows: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"_id": f"k{i:03d}", "_rev": f"1-{i}", "type": "t", **row} for i, row in enumerate(rows)
    ]


DOCS = docs_of(
    {"x": 1, "y": "b", "name": "apple"},
    {"x": None, "y": "a", "name": "Banana"},
    {"y": "c", "name": "cherry"},  # x missing
    {"x": 3, "name": "a%b_c.d"},
    {"x": 2, "y": None, "name": "é(x)*"},
    {"x": 1.5, "y": "a", "name": "line\nbreak"},
)
OTHER = [
    {"_id": "z1", "type": "u", "x": 1, "name": "apple"},
    {"_id": "_design/sqla-t", "language": "query", "views": {}},
]


def query(sql: str, params: Any = None, docs: list[dict[str, Any]] | None = None) -> list[tuple]:
    data = (DOCS if docs is None else docs) + OTHER
    _cols, plain = run_sql(sql, data, params)
    _cols, indexed = run_sql(sql, data, params, INDEXES)
    assert plain == indexed, f"with and without indexes differ for {sql}"
    return plain


def ids(sql: str, params: Any = None, docs: list[dict[str, Any]] | None = None) -> list[str]:
    return sorted(r[0] for r in query(sql, params, docs))


# -- NULL, missing, three-valued logic --------------------------------------------------------


def test_null_and_missing_are_both_null() -> None:
    assert ids("SELECT id FROM t WHERE x IS NULL") == ["k001", "k002"]
    assert ids("SELECT id FROM t WHERE x IS NOT NULL") == ["k000", "k003", "k004", "k005"]
    assert query("SELECT x FROM t WHERE id = 'k002'") == [(None,)]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("x != 1", ["k003", "k004", "k005"]),
        ("NOT (x = 1)", ["k003", "k004", "k005"]),
        ("x <> 1", ["k003", "k004", "k005"]),
        ("NOT (x IN (1, 2))", ["k003", "k005"]),
        ("x NOT IN (1, 2)", ["k003", "k005"]),
        ("x NOT IN (1, NULL)", []),
        ("NOT (x NOT IN (1, NULL))", ["k000"]),
        ("x IN (1, NULL)", ["k000"]),
        ("x IN ()", []),
        ("x NOT IN ()", ["k000", "k001", "k002", "k003", "k004", "k005"]),
        ("x IN (NULL) AND (1 != 1)", []),
        ("(x NOT IN (NULL) OR (1 = 1))", ["k000", "k001", "k002", "k003", "k004", "k005"]),
        ("x = NULL", []),
        ("NOT (x = NULL)", []),
        ("x > 1 OR x IS NULL", ["k001", "k002", "k003", "k004", "k005"]),
        ("NOT (x > 1 AND y = 'a')", ["k000", "k002"]),
        ("x BETWEEN 1.5 AND 2", ["k004", "k005"]),
        ("x NOT BETWEEN 1.5 AND 2", ["k000", "k003"]),
        ("x IS 1", ["k000"]),
        ("x IS DISTINCT FROM 1", ["k001", "k002", "k003", "k004", "k005"]),
        ("x IS NOT DISTINCT FROM NULL", ["k001", "k002"]),
        ("x IS TRUE", ["k000", "k003", "k004", "k005"]),
        ("x IS NOT FALSE", ["k000", "k001", "k002", "k003", "k004", "k005"]),
        ("x IS NOT 1", ["k001", "k002", "k003", "k004", "k005"]),
        ("y IS NULL AND x IS NOT NULL", ["k003", "k004"]),
        ("coalesce(x, 0) = 0", ["k001", "k002"]),
        ("x = y", []),
        ("NOT (x = y)", ["k000", "k005"]),  # 1 = 'b' is false, not unknown
    ],
)
def test_three_valued_logic(where: str, expected: list[str]) -> None:
    assert ids(f"SELECT id FROM t WHERE {where}") == expected


def test_booleans_are_zero_and_one() -> None:
    docs = docs_of(
        {"b": True}, {"b": False}, {"b": 1}, {"b": 0}, {"b": 2}, {"b": None}, {}, {"b": -1}
    )
    assert ids("SELECT id FROM t WHERE b = 1", docs=docs) == ["k000", "k002"]
    assert ids("SELECT id FROM t WHERE b = TRUE", docs=docs) == ["k000", "k002"]
    assert ids("SELECT id FROM t WHERE b = :v", {"v": False}, docs) == ["k001", "k003"]
    assert ids("SELECT id FROM t WHERE b", docs=docs) == ["k000", "k002", "k004", "k007"]
    assert ids("SELECT id FROM t WHERE NOT b", docs=docs) == ["k001", "k003"]
    assert ids("SELECT id FROM t WHERE b >= 1", docs=docs) == ["k000", "k002", "k004"]
    assert ids("SELECT id FROM t WHERE b < 1", docs=docs) == ["k001", "k003", "k007"]
    assert ids("SELECT id FROM t WHERE b IN (0, 2)", docs=docs) == ["k001", "k003", "k004"]
    assert ids("SELECT id FROM t WHERE b != 0", docs=docs) == ["k000", "k002", "k004", "k007"]
    indexed = [*INDEXES, MangoIndex(("type", "b"), "sqla-t", "ix_b")]
    for value, expected in ((1, ["k000", "k002"]), (False, ["k001", "k003"])):
        _cols, rows = run_sql("SELECT id FROM t WHERE b = :v", docs, {"v": value}, indexed)
        assert sorted(r[0] for r in rows) == expected


# -- LIKE ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "params", "expected"),
    [
        ("name LIKE 'a%'", None, ["k000", "k003"]),
        ("name LIKE 'A%'", None, []),  # case-sensitive
        ("name LIKE 'apple'", None, ["k000"]),
        ("name LIKE 'appl'", None, []),  # anchored
        ("name LIKE '%e'", None, ["k000"]),
        ("name LIKE '_pple'", None, ["k000"]),
        ("name LIKE 'a.b%'", None, []),  # '.' is literal
        ("name LIKE 'a%b_c.d'", None, ["k003"]),
        ("name LIKE 'a/%b/_c.d' ESCAPE '/'", None, ["k003"]),
        ("name LIKE :p ESCAPE '/'", {"p": "a/%%"}, ["k003"]),
        ("name LIKE '%' || :p || '%' ESCAPE '/'", {"p": "b/_"}, ["k003"]),
        ("name LIKE 'é(x)_'", None, ["k004"]),
        ("name LIKE '_(_)*'", None, ["k004"]),
        ("name LIKE 'line_break'", None, ["k005"]),  # _ matches a newline
        ("name NOT LIKE '%a%'", None, ["k002", "k004"]),
        ("name ILIKE 'b%'", None, ["k001"]),
        ("name NOT ILIKE '%A%'", None, ["k002", "k004"]),
        ("lower(name) LIKE lower(:p)", {"p": "BAN%"}, ["k001"]),
        ("y LIKE NULL", None, []),
        ("name LIKE 'apple/' ESCAPE '/'", None, []),  # a trailing escape matches nothing
    ],
)
def test_like(where: str, params: Any, expected: list[str]) -> None:
    assert ids(f"SELECT id FROM t WHERE {where}", params) == expected


def test_like_on_numbers_uses_their_text_and_refuses_floats() -> None:
    docs = docs_of({"n": 10}, {"n": 21}, {"n": True}, {"n": "1x"})
    assert ids("SELECT id FROM t WHERE n LIKE '1%'", docs=docs) == ["k000", "k002", "k003"]
    with pytest.raises(DataError, match="float"):
        query("SELECT id FROM t WHERE n LIKE '1%'", docs=docs_of({"n": 1.5}))


def test_like_escape_must_be_one_character() -> None:
    with pytest.raises(DataError, match="single character"):
        query("SELECT id FROM t WHERE name LIKE 'a' ESCAPE '//'")


# -- expressions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("7 / 2", 3),
        ("-7 / 2", -3),  # truncates toward zero
        ("7 / 2.0", 3.5),
        ("7 % 3", 1),
        ("-7 % 3", -1),
        ("7 % -3", 1),
        ("5.5 % 2", 1.0),
        ("7 / 0", None),
        ("7 % 0", None),
        ("1 + NULL", None),
        ("'a' || 1", "a1"),
        ("'a' || NULL", None),
        ("lower('ÄB')", "äb"),
        ("upper('äb')", "ÄB"),
        ("length('héllo')", 5),
        ("length(12)", 2),
        ("abs(-3)", 3),
        ("abs(-2.5)", 2.5),
        ("floor(-2.5)", -3.0),
        ("ceil(2.1)", 3.0),
        ("ceiling(7)", 7),
        ("floor(NULL)", None),
        ("coalesce(NULL, NULL, 3, 4)", 3),
        ("ifnull(NULL, 'x')", "x"),
        ("nullif(3, 3)", None),
        ("nullif(3, 4)", 3),
        ("CAST('12' AS INTEGER)", 12),
        ("CAST(1.9 AS INTEGER)", 1),
        ("CAST(2 AS REAL)", 2.0),
        ("CAST(4.0 AS NUMERIC)", 4),
        ("CAST(12 AS VARCHAR)", "12"),
        ("CASE WHEN 1 = 2 THEN 'a' WHEN 2 = 2 THEN 'b' ELSE 'c' END", "b"),
        ("CASE 3 WHEN 1 THEN 'a' ELSE 'z' END", "z"),
        ("CASE WHEN NULL THEN 'a' END", None),
        ("CASE WHEN NOT (1 = 1) THEN 'a' ELSE 'b' END", "b"),
        ("NOT (1 = 2)", True),
        ("NOT (NULL = 1)", None),
        ("NOT (1 IN (2, NULL))", None),
        ("TRUE", True),
        ("-(2)", -2),
        ("1 < 'a'", True),  # numbers sort before text
        ("'1' = 1", False),
        ("1 = 1.0", True),
    ],
)
def test_scalar_expressions(expr: str, value: Any) -> None:
    ((got,),) = query(f"SELECT {expr}")
    assert got == value and type(got) is type(value)


def test_expressions_over_columns_and_labels() -> None:
    rows = query(
        "SELECT id, x + 1 AS x1, name || '!' AS shout, coalesce(y, '-') AS y "
        "FROM t WHERE x >= 2 ORDER BY x1 DESC"
    )
    assert rows == [("k003", 4, "a%b_c.d!", "-"), ("k004", 3, "é(x)*!", "-")]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT name + 1 FROM t",
        "SELECT abs(name) FROM t",
        "SELECT id FROM t WHERE name",
        "SELECT x || 'a' FROM t WHERE id = 'k005'",
        "SELECT sum(name) FROM t",
        "SELECT CAST(name AS INTEGER) FROM t",
    ],
)
def test_text_is_never_guessed_to_be_a_number(sql: str) -> None:
    with pytest.raises(DataError):
        query(sql)


def test_json_values_compare_as_values() -> None:
    docs = docs_of({"j": {"a": 1, "b": [1, 2]}}, {"j": [1, 2]}, {"j": "x"}, {"j": {"$gt": ""}})
    assert ids("SELECT id FROM t WHERE j = :v", {"v": {"b": [1, 2], "a": 1}}, docs) == ["k000"]
    assert ids("SELECT id FROM t WHERE j = :v", {"v": [1, 2]}, docs) == ["k001"]
    assert ids("SELECT id FROM t WHERE j = :v", {"v": {"$gt": ""}}, docs) == ["k003"]
    assert ids("SELECT id FROM t WHERE j != 1", docs=docs) == ["k000", "k001", "k002", "k003"]
    assert ids("SELECT id FROM t WHERE j NOT IN (1, 2)", docs=docs) == [
        "k000",
        "k001",
        "k002",
        "k003",
    ]
    assert ids("SELECT id FROM t WHERE j IN (1, 2)", docs=docs) == []
    assert ids("SELECT id FROM t WHERE j > 'z'", docs=docs) == ["k000", "k001", "k003"]


# -- projection, SELECT *, DISTINCT -----------------------------------------------------------


def test_select_star_is_id_rev_then_fields_in_order_seen() -> None:
    docs = docs_of({"a": 1}, {"b": 2, "a": 3})
    cols, rows = run_sql("SELECT * FROM t", docs)
    assert cols == ("id", "rev", "a", "b")
    assert rows == [("k000", "1-0", 1, None), ("k001", "1-1", 3, 2)]
    cols, rows = run_sql("SELECT t.*, a + 1 AS a1 FROM t WHERE a > 1", docs)
    assert cols == ("id", "rev", "b", "a", "a1")
    assert rows == [("k001", "1-1", 2, 3, 4)]
    cols, rows = run_sql("SELECT * FROM t WHERE a > 5", docs)
    assert cols == ("id", "rev") and rows == []


def test_distinct_collapses_sql_equal_values() -> None:
    docs = docs_of({"v": 1}, {"v": 1.0}, {"v": True}, {"v": None}, {}, {"v": "1"}, {"v": [1]})
    rows = query("SELECT DISTINCT v FROM t ORDER BY v", docs=docs)
    assert rows == [(None,), (1,), ("1",), ([1],)]
    assert query("SELECT DISTINCT v FROM t ORDER BY v LIMIT 2 OFFSET 1", docs=docs) == [
        (1,),
        ("1",),
    ]
    assert len(query("SELECT DISTINCT v FROM t", docs=docs)) == 4


# -- ORDER BY, LIMIT, OFFSET ------------------------------------------------------------------


def test_order_by_nulls_first_ascending_last_descending() -> None:
    assert [r[0] for r in query("SELECT x FROM t ORDER BY x, id")] == [None, None, 1, 1.5, 2, 3]
    assert [r[0] for r in query("SELECT x FROM t ORDER BY x DESC")] == [3, 2, 1.5, 1, None, None]
    assert [r[0] for r in query("SELECT x FROM t ORDER BY x NULLS LAST")] == [
        1,
        1.5,
        2,
        3,
        None,
        None,
    ]
    assert [r[0] for r in query("SELECT x FROM t ORDER BY x DESC NULLS FIRST")] == [
        None,
        None,
        3,
        2,
        1.5,
        1,
    ]


def test_order_by_several_keys_keeps_rows_lacking_a_key() -> None:
    rows = query("SELECT id FROM t ORDER BY x, y")
    assert [r[0] for r in rows][2:] == ["k000", "k005", "k004", "k003"]
    assert sorted(r[0] for r in rows[:2]) == ["k001", "k002"]
    rows = query("SELECT id, x, y FROM t ORDER BY x DESC, y DESC")
    assert rows == [
        ("k003", 3, None),
        ("k004", 2, None),
        ("k005", 1.5, "a"),
        ("k000", 1, "b"),
        ("k002", None, "c"),
        ("k001", None, "a"),
    ]


def test_order_by_alias_and_position() -> None:
    assert query("SELECT id, x * -1 AS neg FROM t WHERE x > 1 ORDER BY neg") == [
        ("k003", -3),
        ("k004", -2),
        ("k005", -1.5),
    ]
    assert query("SELECT x, id FROM t WHERE x > 1 ORDER BY 1 DESC") == [
        (3, "k003"),
        (2, "k004"),
        (1.5, "k005"),
    ]


def test_order_across_types_follows_sqlite() -> None:
    docs = docs_of(
        {"v": "b"}, {"v": 2}, {"v": None}, {"v": [0]}, {"v": True}, {"v": "B"}, {"v": 0.5}
    )
    rows = run_sql("SELECT v FROM t ORDER BY v", docs)[1]
    assert [r[0] for r in rows] == [None, 0.5, True, 2, "B", "b", [0]]


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ("LIMIT 2", ["k000", "k001"]),
        ("LIMIT 2 OFFSET 3", ["k003", "k004"]),
        ("LIMIT -1 OFFSET 4", ["k004", "k005"]),
        ("LIMIT 0", []),
        ("LIMIT 10 OFFSET 10", []),
    ],
)
def test_limit_offset(clause: str, expected: list[str]) -> None:
    assert [r[0] for r in query(f"SELECT id FROM t ORDER BY id {clause}")] == expected


def test_limit_offset_parameters() -> None:
    rows = query("SELECT id FROM t ORDER BY x DESC LIMIT :l OFFSET :o", {"l": 2, "o": 1})
    assert rows == [("k004",), ("k005",)]


def test_no_limit_returns_every_row() -> None:
    docs = docs_of(*({"x": i} for i in range(60)))
    assert len(query("SELECT id FROM t", docs=docs)) == 60
    assert len(query("SELECT id FROM t ORDER BY x DESC", docs=docs)) == 60


# -- aggregates -------------------------------------------------------------------------------


def test_aggregates() -> None:
    row = query(
        "SELECT count(*), count(x), count(DISTINCT y), sum(x), avg(x), min(x), max(x), "
        "min(name), max(y), sum(DISTINCT x) FROM t"
    )
    assert row == [(6, 4, 3, 7.5, 1.875, 1, 3, "Banana", "c", 7.5)]


def test_aggregates_of_no_rows() -> None:
    assert query("SELECT count(*), count(x), sum(x), avg(x), min(x) FROM t WHERE x > 10") == [
        (0, 0, None, None, None)
    ]
    assert query("SELECT count(*) FROM t WHERE x IN (NULL) AND (1 != 1)") == [(0,)]


def test_aggregate_types() -> None:
    docs = docs_of({"n": 1}, {"n": 2}, {"n": True})
    ((total, mean),) = query("SELECT sum(n), avg(n) FROM t", docs=docs)
    assert (total, type(total)) == (4, int)
    assert (mean, type(mean)) == (4 / 3, float)


def test_aggregate_expressions_limit_and_offset() -> None:
    assert query("SELECT count(*) * 2 + 1 AS c, max(x) - min(x) AS spread FROM t") == [(13, 2)]
    assert query("SELECT count(*) FROM t LIMIT 0") == []
    assert query("SELECT count(*) FROM t LIMIT 1 OFFSET 1") == []
    assert query("SELECT count(*)") == [(1,)]
    assert query("SELECT count(*) WHERE 1 = 0") == [(0,)]


# -- streaming --------------------------------------------------------------------------------


def test_streaming_stops_reading_once_limit_is_met() -> None:
    docs = docs_of(*({"x": i % 7, "name": f"n{i}"} for i in range(1000)))
    plan = compile_sql("SELECT id FROM t WHERE x > 2 LIMIT 20")
    assert isinstance(plan, SelectPlan)
    server = FakeServer(docs)
    bound = plan.bind()
    run = bound.start()
    pages = server.pages(bound.requests[0], page_size=10)
    first = run.feed(0, next(pages))
    assert first and not run.done  # rows come before the end of the result
    rows = first + list(run.drive(lambda r: pages, bound.requests))
    assert len(rows) == 20 and run.done
    assert len(server.requests) == 3  # 10 documents a page, 8 of 10 match: 3 pages of 100


def test_server_sorted_limit_reads_only_what_it_needs() -> None:
    docs = docs_of(*({"x": i} for i in range(500)))
    plan = compile_sql("SELECT id, x FROM t ORDER BY x DESC LIMIT 3")
    assert isinstance(plan, SelectPlan)
    server = FakeServer(docs, INDEXES)
    bound = plan.bind(None, INDEXES)
    rows = list(bound.start().drive(lambda r: server.pages(r, 100), bound.requests))
    assert rows == [("k499", 499), ("k498", 498), ("k497", 497)]
    assert [b["limit"] for b in server.requests] == [3]  # the NULL request was never sent


def test_client_sort_with_limit_keeps_bounded_memory() -> None:
    docs = docs_of(*({"x": (i * 7919) % 10007} for i in range(6000)))
    plan = compile_sql("SELECT x FROM t ORDER BY x LIMIT 5")
    assert isinstance(plan, SelectPlan)
    bound = plan.bind()
    run = bound.start()
    peak = 0
    for start in range(0, len(docs), 500):
        run.feed(0, docs[start : start + 500])
        peak = max(peak, len(run._buffer))
    assert peak <= 2 * 5 + 1024 + 500
    assert [r[0] for r in run.finish()] == sorted(d["x"] for d in docs)[:5]
