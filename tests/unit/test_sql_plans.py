"""Statements -> plans and Mango bodies, exactly (no server)."""

from __future__ import annotations

import pytest

from sqlalchemy_couchdb.dbapi.exceptions import DataError, ProgrammingError
from sqlalchemy_couchdb.sql import (
    ColumnSpec,
    CreateIndexPlan,
    CreateTablePlan,
    DeletePlan,
    DropIndexPlan,
    DropTablePlan,
    FindRequest,
    InsertPlan,
    MangoIndex,
    SelectPlan,
    UpdatePlan,
    compile_sql,
)

T = {"type": {"$eq": "t"}}
IX_X = MangoIndex(("type", "x"), "sqla-t", "ix_t_x")
IX_XY = MangoIndex(("type", "x", "y"), "sqla-t", "ix_t_xy")
IX_NAME = MangoIndex(("type", "name"), "sqla-t", "ix_t_name")


def requests(sql: str, params: object = None, indexes: tuple[MangoIndex, ...] = ()) -> list:
    plan = compile_sql(sql)
    assert isinstance(plan, SelectPlan)
    return list(plan.bind(params, indexes).requests)  # type: ignore[arg-type]


def selector(sql: str, params: object = None) -> dict:
    (request,) = requests(sql, params)
    return request.selector


# -- SELECT: what SQLAlchemy compiles ---------------------------------------------------------


def test_sqlalchemy_select_point_query_is_one_indexed_eq_request() -> None:
    sql = (
        "SELECT t.id, t.name \nFROM t \nWHERE t.x = :x_1 AND t.name LIKE :name_1 ESCAPE '/' "
        "ORDER BY t.x DESC\n LIMIT :param_1 OFFSET :param_2"
    )
    plan = compile_sql(sql)
    assert isinstance(plan, SelectPlan)
    assert plan.table == "t"
    assert plan.columns == ("id", "name")
    assert plan.parameters.names == ("x_1", "name_1", "param_1", "param_2")
    bound = plan.bind({"x_1": 7, "name_1": "a/%%", "param_1": 10, "param_2": 5}, [IX_X])
    # x is fixed by the WHERE, so the WHERE already rules NULL out: one sorted request.
    assert bound.requests == (
        FindRequest(
            selector={"type": {"$eq": "t"}, "x": {"$eq": 7}, "name": {"$regex": r"^a\%[\s\S]*$"}},
            fields=["_id", "type", "name", "x"],
            sort=[{"type": "desc"}, {"x": "desc"}],
            use_index=["sqla-t", "ix_t_x"],
        ),
    )
    assert bound.requests[0].body(15) == {
        "selector": {"type": {"$eq": "t"}, "x": {"$eq": 7}, "name": {"$regex": r"^a\%[\s\S]*$"}},
        "limit": 15,
        "fields": ["_id", "type", "name", "x"],
        "sort": [{"type": "desc"}, {"x": "desc"}],
        "use_index": ["sqla-t", "ix_t_x"],
    }


def test_exact_selector_pushes_skip_and_limit() -> None:
    (request,) = requests(
        "SELECT t.id FROM t WHERE t.x = :x LIMIT :l OFFSET :o", {"x": 5, "l": 10, "o": 20}
    )
    assert request == FindRequest(
        {"type": {"$eq": "t"}, "x": {"$eq": 5}}, ["_id", "type", "x"], skip=20, limit=10
    )
    assert request.body(10) == {
        "selector": {"type": {"$eq": "t"}, "x": {"$eq": 5}},
        "limit": 10,
        "skip": 20,
        "fields": ["_id", "type", "x"],
    }
    assert request.body(10, skip=0, bookmark="g1") == {
        "selector": {"type": {"$eq": "t"}, "x": {"$eq": 5}},
        "limit": 10,
        "fields": ["_id", "type", "x"],
        "bookmark": "g1",
    }


def test_inexact_selector_keeps_offset_on_the_client() -> None:
    plan = compile_sql("SELECT t.id FROM t WHERE t.x > :x LIMIT 10 OFFSET 20")
    assert isinstance(plan, SelectPlan)
    bound = plan.bind({"x": 5})
    assert bound.requests == (
        FindRequest({"type": {"$eq": "t"}, "x": {"$gte": 5}}, ["_id", "type", "x"]),
    )
    assert bound.client_offset == 20
    run = bound.start()
    assert run.wanted() == 30


def test_no_limit_means_every_row_no_server_limit() -> None:
    (request,) = requests("SELECT t.id FROM t")
    assert request.limit is None and request.skip == 0


def test_select_star_reads_whole_documents() -> None:
    (request,) = requests("SELECT * FROM t WHERE x = 1")
    assert request.fields is None
    assert request.selector == {"type": {"$eq": "t"}, "x": {"$in": [1, True]}}


def test_id_maps_to__id_and_uses_all_docs() -> None:
    assert selector("SELECT t.id FROM t WHERE t.id = :id_1", {"id_1": "k"}) == {
        "type": {"$eq": "t"},
        "_id": {"$eq": "k"},
    }
    assert selector("SELECT t.rev FROM t WHERE t.id IN (:a, :b)", {"a": "k", "b": "m"}) == {
        "type": {"$eq": "t"},
        "_id": {"$in": ["k", "m"]},
    }
    # An id is always a string: a number can never match.
    assert requests("SELECT t.id FROM t WHERE t.id = 5") == []


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("x = 5", {"x": {"$eq": 5}}),
        ("x = 'a'", {"x": {"$eq": "a"}}),
        ("5 = x", {"x": {"$eq": 5}}),
        # SQL (SQLite) booleans are 0 and 1; Mango keeps them apart.
        ("x = 1", {"x": {"$in": [1, True]}}),
        ("x = 0", {"x": {"$in": [0, False]}}),
        ("x = TRUE", {"x": {"$in": [True, 1]}}),
        ("x >= 5", {"x": {"$gte": 5}}),
        ("x > 5", {"x": {"$gte": 5}}),  # $gt is never sent (PouchDB + index + limit bug)
        ("x > 0", {"x": {"$gte": True}}),  # true = 1 > 0
        ("x >= 0", {"x": {"$gte": False}}),
        ("x <= 5", {"x": {"$gte": False, "$lte": 5}}),
        ("5 > x", {"x": {"$gte": False, "$lte": 5}}),
        ("x BETWEEN 2 AND 5", {"x": {"$gte": 2, "$lte": 5}}),
        ("x BETWEEN 1 AND 5", {"x": {"$gte": True, "$lte": 5}}),
        ("x > 'm'", {"x": {"$gte": ""}}),  # text bounds only bound the type (ICU order)
        ("x < 'm'", {"x": {"$gte": False}}),
        ("x IS NULL", {"$or": [{"x": {"$eq": None}}, {"x": {"$exists": False}}]}),
        ("x IS NOT NULL", {"x": {"$gte": False}}),
        ("x IN (2, 3)", {"x": {"$in": [2, 3]}}),
        ("x IN (2)", {"x": {"$eq": 2}}),
        ("x IN (2, NULL)", {"x": {"$eq": 2}}),
        ("x IN (1, 2, TRUE)", {"x": {"$in": [1, True, 2]}}),
        (
            "x != 2",
            {
                "$or": [
                    {"x": {"$gte": False, "$nin": [2]}},
                    {"x": {"$type": "array"}},
                ]
            },
        ),
        (
            "NOT (x = 2)",
            {
                "$or": [
                    {"x": {"$gte": False, "$nin": [2]}},
                    {"x": {"$type": "array"}},
                ]
            },
        ),
        (
            "x NOT IN (1, 'a')",
            {
                "$or": [
                    {"x": {"$gte": False, "$nin": [1, True, "a"]}},
                    {"x": {"$type": "array"}},
                ]
            },
        ),
        ("x LIKE 'ab%'", {"x": {"$regex": r"^ab[\s\S]*$"}}),
        ("x LIKE 'a.b_'", {"x": {"$regex": r"^a\.b[\s\S]*$"}}),
        ("x LIKE 'a!%' ESCAPE '!'", {"x": {"$regex": r"^a\%$"}}),
        ("x LIKE 'é(x)'", {"x": {"$regex": r"^é\(x\)$"}}),
        (
            "x LIKE '1%'",  # 10 LIKE '1%' is true in SQL: numbers are let through
            {
                "$or": [
                    {"x": {"$regex": r"^1[\s\S]*$"}},
                    {"x": {"$type": "number"}},
                    {"x": {"$type": "boolean"}},
                ]
            },
        ),
        ("x = 1 AND y = 'b'", {"x": {"$in": [1, True]}, "y": {"$eq": "b"}}),
        ("x = 2 OR y = 'b'", {"$or": [{"x": {"$eq": 2}}, {"y": {"$eq": "b"}}]}),
        (
            "x = 2 OR y LIKE 'b%' OR z IS NULL",
            {
                "$or": [
                    {"x": {"$eq": 2}},
                    {"y": {"$regex": r"^b[\s\S]*$"}},
                    {"z": {"$eq": None}},
                    {"z": {"$exists": False}},
                ]
            },
        ),
        ("flag", {"flag": {"$gte": True}}),
        ("NOT flag", {"flag": {"$in": [False, 0]}}),
        ("x IS 5", {"x": {"$eq": 5}}),
        ("x IS NOT NULL AND x >= 3", {"x": {"$gte": 3}}),
    ],
)
def test_where_to_selector(where: str, expected: dict) -> None:
    assert selector(f"SELECT t.id FROM t WHERE {where}") == {**T, **expected}


@pytest.mark.parametrize(
    "where",
    [
        "x NOT LIKE 'a%'",
        "x ILIKE 'a%'",
        "lower(x) LIKE lower('A%')",
        "x + 1 = 3",
        "x = y",
        "coalesce(x, 0) = 0",
        "x IS NOT 5",
        "x = 2 OR x + 1 = 3",
        '"a.b" = 1',  # a dot would mean a nested field to Mango
    ],
)
def test_conditions_left_to_the_client(where: str) -> None:
    assert selector(f"SELECT t.id FROM t WHERE {where}") == T


@pytest.mark.parametrize("value", [{"$gt": ""}, ["$gt", ""], {"a": 1}])
def test_dict_or_list_parameter_never_becomes_an_operator(value: object) -> None:
    assert selector("SELECT t.id FROM t WHERE t.x = :v", {"v": value}) == T
    assert selector("SELECT t.id FROM t WHERE t.x IN (:v, :w)", {"v": value, "w": 1}) == T


@pytest.mark.parametrize(
    "where",
    [
        "x IN (NULL) AND (1 != 1)",  # SQLAlchemy's empty IN
        "x = NULL",
        "x NOT IN (1, NULL)",
        "x IN ()",
        "1 = 0",
    ],
)
def test_where_never_true_sends_no_request(where: str) -> None:
    assert requests(f"SELECT t.id FROM t WHERE {where}") == []


def test_sqlalchemy_empty_not_in_is_true() -> None:
    assert selector("SELECT t.id FROM t WHERE (t.x NOT IN (NULL) OR (1 = 1))") == T


def test_null_parameter_in_comparison_sends_no_request() -> None:
    assert requests("SELECT t.id FROM t WHERE t.x = :x", {"x": None}) == []


# -- ORDER BY ---------------------------------------------------------------------------------


def test_order_by_without_index_sorts_on_the_client() -> None:
    plan = compile_sql("SELECT t.id FROM t ORDER BY t.x LIMIT 3")
    assert isinstance(plan, SelectPlan)
    bound = plan.bind()
    assert bound.kind == "sort"
    assert bound.requests == (FindRequest(T, ["_id", "type", "x"]),)


def test_order_by_indexed_key_asc_reads_nulls_then_values() -> None:
    plan = compile_sql("SELECT t.id FROM t ORDER BY t.x LIMIT 3")
    assert isinstance(plan, SelectPlan)
    bound = plan.bind(None, [IX_X])
    nulls = FindRequest(
        {**T, "$or": [{"x": {"$eq": None}}, {"x": {"$exists": False}}]},
        ["_id", "type", "x"],
        limit=3,
    )
    values = FindRequest(
        {**T, "x": {"$gte": False}},
        ["_id", "type", "x"],
        sort=[{"type": "asc"}, {"x": "asc"}],
        use_index=["sqla-t", "ix_t_x"],
        limit=3,
    )
    assert bound.requests == (nulls, values)
    assert bound.kind == "stream"


def test_order_by_desc_reads_values_then_nulls() -> None:
    (values, nulls) = requests("SELECT t.id FROM t ORDER BY t.x DESC", None, (IX_X,))
    assert values.sort == [{"type": "desc"}, {"x": "desc"}]
    assert values.selector == {**T, "x": {"$gte": False}}
    assert nulls.selector == {**T, "$or": [{"x": {"$eq": None}}, {"x": {"$exists": False}}]}
    (values, nulls) = requests("SELECT t.id FROM t ORDER BY t.x NULLS LAST", None, (IX_X,))
    assert values.sort == [{"type": "asc"}, {"x": "asc"}]


def test_order_by_key_the_where_makes_non_null_is_one_request() -> None:
    (request,) = requests(
        "SELECT t.id FROM t WHERE t.x >= 3 ORDER BY t.x LIMIT 5 OFFSET 2", None, (IX_X,)
    )
    assert request == FindRequest(
        {**T, "x": {"$gte": 3}},
        ["_id", "type", "x"],
        sort=[{"type": "asc"}, {"x": "asc"}],
        use_index=["sqla-t", "ix_t_x"],
        skip=2,
        limit=5,
    )


def test_order_by_two_keys_merges_the_null_part() -> None:
    plan = compile_sql("SELECT t.id FROM t ORDER BY t.x, t.y")
    assert isinstance(plan, SelectPlan)
    bound = plan.bind(None, [IX_X, IX_XY])
    assert bound.kind == "merge"
    nulls, values = bound.requests
    assert nulls.selector == {
        **T,
        "$or": [
            {"x": {"$eq": None}},
            {"x": {"$exists": False}},
            {"y": {"$eq": None}},
            {"y": {"$exists": False}},
        ],
    }
    assert values.selector == {**T, "x": {"$gte": False}, "y": {"$gte": False}}
    assert values.sort == [{"type": "asc"}, {"x": "asc"}, {"y": "asc"}]
    assert values.use_index == ["sqla-t", "ix_t_xy"]


def test_order_by_id_needs_no_index() -> None:
    (request,) = requests("SELECT t.id FROM t ORDER BY t.id DESC LIMIT 2")
    assert request == FindRequest(T, ["_id", "type"], sort=[{"_id": "desc"}], limit=2)


def test_order_by_mixed_directions_or_expressions_sorts_on_the_client() -> None:
    plan = compile_sql("SELECT t.id FROM t ORDER BY t.x, t.y DESC")
    assert isinstance(plan, SelectPlan)
    assert plan.bind(None, [IX_XY]).kind == "sort"
    plan = compile_sql("SELECT t.id FROM t ORDER BY t.x + 1")
    assert isinstance(plan, SelectPlan)
    assert plan.bind(None, [IX_X]).kind == "sort"


def test_constant_leading_index_field_can_serve_the_sort() -> None:
    index = MangoIndex(("type", "name", "x"), "sqla-t", "ix_name_x")
    (request,) = requests(
        "SELECT t.id FROM t WHERE t.name = 'a' AND t.x > 1 ORDER BY t.x", None, (index,)
    )
    assert request.sort == [{"type": "asc"}, {"name": "asc"}, {"x": "asc"}]
    assert request.use_index == ["sqla-t", "ix_name_x"]


def test_equality_on_an_indexed_field_names_the_index() -> None:
    (request,) = requests("SELECT t.id FROM t WHERE t.name = :n", {"n": "a"}, (IX_X, IX_NAME))
    assert request.use_index == ["sqla-t", "ix_t_name"]
    (request,) = requests("SELECT t.id FROM t WHERE t.name > :n", {"n": "a"}, (IX_NAME,))
    assert request.use_index is None


def test_zero_or_one_on_an_indexed_field_is_an_index_range() -> None:
    # x = 1 must also match true (SQL booleans are 0/1); CouchDB cannot read $in from an
    # index, so the pair becomes one range: true, then the numbers up to 1.
    plan = compile_sql("SELECT t.id FROM t WHERE t.x = :x LIMIT 1")
    assert isinstance(plan, SelectPlan)
    bound = plan.bind({"x": 1}, [IX_X])
    assert bound.requests == (
        FindRequest(
            {**T, "x": {"$gte": True, "$lte": 1}},
            ["_id", "type", "x"],
            use_index=["sqla-t", "ix_t_x"],
        ),
    )
    assert bound.client_offset == 0 and bound.start().wanted() == 1
    (request,) = plan.bind({"x": False}, [IX_X]).requests
    assert request.selector == {**T, "x": {"$gte": False, "$lte": 0}}
    (request,) = plan.bind({"x": 1}).requests  # no index: $in filters exactly
    assert request.selector == {**T, "x": {"$in": [1, True]}} and request.limit == 1
    update = compile_sql("UPDATE t SET n = 0 WHERE t.x = 1")
    assert isinstance(update, UpdatePlan)
    (request,) = update.bind(None, [IX_X]).requests
    assert request.selector == {**T, "x": {"$gte": True, "$lte": 1}}


def test_limit_zero_sends_nothing() -> None:
    assert requests("SELECT t.id FROM t LIMIT 0") == []


def test_negative_limit_means_no_limit() -> None:
    # SQLAlchemy renders OFFSET without LIMIT as "LIMIT -1 OFFSET n" for SQLite.
    (request,) = requests("SELECT t.id FROM t LIMIT -1 OFFSET :o", {"o": 3})
    assert request.limit is None and request.skip == 3


def test_limit_must_be_an_integer() -> None:
    plan = compile_sql("SELECT t.id FROM t LIMIT :l")
    assert isinstance(plan, SelectPlan)
    with pytest.raises(DataError, match="LIMIT must be an integer"):
        plan.bind({"l": "ten"})


def test_aggregates_read_every_matching_document() -> None:
    plan = compile_sql("SELECT count(*) AS count_1 \nFROM t WHERE t.x = :x")
    assert isinstance(plan, SelectPlan)
    assert plan.columns == ("count_1",)
    bound = plan.bind({"x": 3})
    assert bound.kind == "aggregate"
    assert bound.requests == (FindRequest({**T, "x": {"$eq": 3}}, ["_id", "type", "x"]),)


def test_select_without_from_has_no_request() -> None:
    plan = compile_sql("SELECT 1")
    assert isinstance(plan, SelectPlan)
    assert plan.table is None and plan.bind().requests == ()


def test_unnamed_expressions_are_named_by_their_text() -> None:
    plan = compile_sql("SELECT t.x + 1, lower(t.name), t.x, t.x AS y FROM t")
    assert isinstance(plan, SelectPlan)
    assert plan.columns == ("t.x + 1", "lower(t.name)", "x", "y")
    plan = compile_sql("SELECT count(*), max(t.x) FROM t")
    assert isinstance(plan, SelectPlan)
    assert plan.columns == ("count(*)", "max(t.x)")


# -- parameters -------------------------------------------------------------------------------


def test_qmark_parameters_bind_by_position() -> None:
    plan = compile_sql("SELECT t.id FROM t WHERE t.x = ? AND t.y = ?")
    assert isinstance(plan, SelectPlan)
    assert plan.parameters.positional and len(plan.parameters.names) == 2
    (request,) = plan.bind([3, "b"]).requests
    assert request.selector == {**T, "x": {"$eq": 3}, "y": {"$eq": "b"}}
    with pytest.raises(ProgrammingError, match="2 '\\?' parameters, 1 were given"):
        plan.bind([3])
    with pytest.raises(ProgrammingError, match="pass a sequence"):
        plan.bind({"x": 3})


def test_named_parameter_used_twice_has_one_slot() -> None:
    plan = compile_sql("SELECT t.id FROM t WHERE t.x = :v OR t.y = :v")
    assert isinstance(plan, SelectPlan)
    assert plan.parameters.names == ("v",)
    with pytest.raises(ProgrammingError, match="no value given for parameter :v"):
        plan.bind({"w": 1})
    with pytest.raises(ProgrammingError, match="pass a mapping"):
        plan.bind([1])


def test_mixed_parameter_styles_are_refused() -> None:
    with pytest.raises(ProgrammingError, match="mix"):
        compile_sql("SELECT t.id FROM t WHERE t.x = ? AND t.y = :y")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), object(), b"bytes"])
def test_non_json_parameters_are_refused(value: object) -> None:
    plan = compile_sql("SELECT t.id FROM t WHERE t.x = :x")
    assert isinstance(plan, SelectPlan)
    with pytest.raises(DataError, match="parameter :x"):
        plan.bind({"x": value})


# -- caching ----------------------------------------------------------------------------------


def test_same_sql_same_plan_object_and_no_values_kept() -> None:
    sql = "SELECT t.id FROM t WHERE t.x = :x_1"
    first, second = compile_sql(sql), compile_sql(sql)
    assert first is second
    assert isinstance(first, SelectPlan)
    a, b = first.bind({"x_1": 1}), first.bind({"x_1": 2})
    assert a.requests[0].selector["x"] == {"$in": [1, True]}
    assert b.requests[0].selector["x"] == {"$eq": 2}
    assert first.bind({"x_1": 1}).requests == a.requests
    with pytest.raises(AttributeError):
        first.table = "u"  # type: ignore[misc]


def test_cached_plan_returns_different_rows_for_different_parameters() -> None:
    docs = [{"_id": str(i), "type": "t", "x": i % 3} for i in range(9)]
    plan = compile_sql("SELECT t.id FROM t WHERE t.x = :x_1 ORDER BY t.id")
    assert isinstance(plan, SelectPlan)

    def rows(x: int) -> list[tuple]:
        bound = plan.bind({"x_1": x})
        return list(bound.start().drive(lambda request: [docs], bound.requests))

    assert rows(0) == [("0",), ("3",), ("6",)]
    assert rows(2) == [("2",), ("5",), ("8",)]


# -- INSERT -----------------------------------------------------------------------------------


def test_insert_documents_and_returning() -> None:
    plan = compile_sql("INSERT INTO t (id, name) VALUES (:id, :name) RETURNING t.id, t.rev")
    assert isinstance(plan, InsertPlan)
    assert plan.table == "t" and plan.columns == ("id", "name")
    assert plan.returning_columns == ("id", "rev")
    assert plan.documents({"id": "k1", "name": "a"}) == [{"_id": "k1", "type": "t", "name": "a"}]
    (doc,) = plan.documents({"id": None, "name": "b"})
    assert len(doc["_id"]) == 32 and doc["type"] == "t" and doc["name"] == "b"
    doc["_rev"] = "1-abc"
    assert plan.returning_row(doc) == (doc["_id"], "1-abc")


def test_insert_executemany_and_multirow_values() -> None:
    plan = compile_sql("INSERT INTO t (id, n) VALUES (?, ?)")
    assert isinstance(plan, InsertPlan)
    assert plan.documents_many([["a", 1], ["b", None]]) == [
        {"_id": "a", "type": "t", "n": 1},
        {"_id": "b", "type": "t", "n": None},
    ]
    plan = compile_sql("INSERT INTO t (id, n) VALUES (:id_m0, :n_m0), (:id_m1, 2 + 3)")
    assert isinstance(plan, InsertPlan)
    assert plan.documents({"id_m0": "a", "n_m0": 1, "id_m1": "b"}) == [
        {"_id": "a", "type": "t", "n": 1},
        {"_id": "b", "type": "t", "n": 5},
    ]


def test_insert_sqlalchemy_full_column_list_with_rev_none() -> None:
    plan = compile_sql(
        'INSERT INTO t (id, rev, name, "Weird Col") VALUES (:id, :rev, :name, :Weird_Col)'
    )
    assert isinstance(plan, InsertPlan)
    (doc,) = plan.documents({"id": "a", "rev": None, "name": "n", "Weird_Col": [1, {"b": 2}]})
    assert doc == {"_id": "a", "type": "t", "name": "n", "Weird Col": [1, {"b": 2}]}


def test_insert_default_values() -> None:
    plan = compile_sql("INSERT INTO t DEFAULT VALUES")
    assert isinstance(plan, InsertPlan)
    (doc,) = plan.documents()
    assert set(doc) == {"_id", "type"}
    plan = compile_sql("INSERT INTO t (a, b) VALUES (1, DEFAULT)")
    assert isinstance(plan, InsertPlan)
    assert plan.documents()[0]["a"] == 1 and "b" not in plan.documents()[0]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"id": 5, "rev": None}, "must be a non-empty string"),
        ({"id": "_design/x", "rev": None}, "reserves"),
        ({"id": "a", "rev": "1-x"}, "CouchDB assigns revisions"),
    ],
)
def test_insert_refuses_bad_ids_and_revs(params: dict, message: str) -> None:
    plan = compile_sql("INSERT INTO t (id, rev) VALUES (:id, :rev)")
    assert isinstance(plan, InsertPlan)
    with pytest.raises(DataError, match=message):
        plan.documents(params)


# -- UPDATE / DELETE --------------------------------------------------------------------------


def test_update_finds_applies_and_rechecks() -> None:
    plan = compile_sql("UPDATE t SET n=(t.n + :n_1), s=(t.s || :s_1) WHERE t.id = :id_1")
    assert isinstance(plan, UpdatePlan)
    bound = plan.bind({"n_1": 1, "id_1": "a", "s_1": "!"})
    assert bound.requests == (FindRequest({**T, "_id": {"$eq": "a"}}),)
    doc = {"_id": "a", "_rev": "3-x", "type": "t", "n": 41, "s": "hi", "other": [1]}
    assert bound.matches(doc)
    new = bound.apply(doc)
    assert new == {"_id": "a", "_rev": "3-x", "type": "t", "n": 42, "s": "hi!", "other": [1]}
    assert doc["n"] == 41  # the old row is left alone
    assert not bound.matches({**doc, "_id": "b"})
    assert not bound.matches({**doc, "type": "u"})
    assert bound.apply({"_id": "a", "type": "t"}) == {"_id": "a", "type": "t", "n": None, "s": None}


def test_update_set_sees_the_old_row() -> None:
    plan = compile_sql("UPDATE t SET a = b, b = a")
    assert isinstance(plan, UpdatePlan)
    bound = plan.bind()
    assert bound.requests == (FindRequest(T),)
    new = bound.apply({"_id": "k", "type": "t", "a": 1, "b": 2})
    assert (new["a"], new["b"]) == (2, 1)


def test_update_returning_and_where_never_true() -> None:
    plan = compile_sql("UPDATE t SET a = :a WHERE t.x IN (NULL) AND (1 != 1) RETURNING t.id, t.a")
    assert isinstance(plan, UpdatePlan)
    bound = plan.bind({"a": 1})
    assert bound.requests == ()
    assert bound.returning_row({"_id": "k", "a": 1}) == ("k", 1)


def test_delete_reads_id_rev_and_where_fields() -> None:
    plan = compile_sql("DELETE FROM t WHERE t.x > :x_1")
    assert isinstance(plan, DeletePlan)
    bound = plan.bind({"x_1": 3})
    assert bound.requests == (FindRequest({**T, "x": {"$gte": 3}}, ["_id", "_rev", "type", "x"]),)
    assert bound.matches({"_id": "a", "type": "t", "x": 4})
    assert not bound.matches({"_id": "a", "type": "t", "x": 3})
    assert not bound.matches({"_id": "a", "type": "t"})
    plan = compile_sql("DELETE FROM t")
    assert isinstance(plan, DeletePlan)
    assert plan.bind().requests == (FindRequest(T, ["_id", "_rev", "type"]),)


# -- DDL --------------------------------------------------------------------------------------


def test_create_table_from_sqlalchemy() -> None:
    sql = (
        "\nCREATE TABLE t (\n\tid VARCHAR NOT NULL, \n\tname VARCHAR(50), \n\tn INTEGER DEFAULT 0,"
        " \n\tprice NUMERIC(10, 2), \n\tPRIMARY KEY (id), \n\tUNIQUE (name), "
        "\n\tFOREIGN KEY(n) REFERENCES u (id)\n)\n\n"
    )
    plan = compile_sql(sql)
    assert plan == CreateTablePlan(
        sql,
        "t",
        (
            ColumnSpec("id", "VARCHAR", nullable=False, primary_key=True),
            ColumnSpec("name", "VARCHAR(50)"),
            ColumnSpec("n", "INT"),
            ColumnSpec("price", "DECIMAL(10, 2)"),
        ),
        primary_key=("id",),
        unenforced=("DEFAULT 0 on n", "UNIQUE (name)", "FOREIGN KEY (n) REFERENCES u (id)"),
    )


def test_create_table_other_primary_key_is_reported() -> None:
    plan = compile_sql("CREATE TABLE IF NOT EXISTS t (code VARCHAR PRIMARY KEY, x INTEGER)")
    assert isinstance(plan, CreateTablePlan)
    assert plan.if_not_exists and plan.primary_key == ("code",)
    assert plan.unenforced == ("PRIMARY KEY (code): the document id is 'id'",)


def test_index_and_drop_plans() -> None:
    assert compile_sql("CREATE UNIQUE INDEX ix_t_x ON t (x, id)") == CreateIndexPlan(
        "CREATE UNIQUE INDEX ix_t_x ON t (x, id)", "ix_t_x", "t", ("x", "id"), unique=True
    )
    plan = compile_sql("CREATE INDEX IF NOT EXISTS ix ON t (x)")
    assert isinstance(plan, CreateIndexPlan)
    assert plan.if_not_exists and plan.fields == ("x",)
    assert compile_sql("DROP INDEX ix_t_x") == DropIndexPlan("DROP INDEX ix_t_x", "ix_t_x")
    assert compile_sql("DROP INDEX IF EXISTS ix ON t") == DropIndexPlan(
        "DROP INDEX IF EXISTS ix ON t", "ix", "t", if_exists=True
    )
    assert compile_sql("DROP TABLE IF EXISTS t") == DropTablePlan(
        "DROP TABLE IF EXISTS t", "t", if_exists=True
    )
