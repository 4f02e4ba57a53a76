"""Differential tests: the translator against SQLite on the same rows.

Hypothesis generates rows (NULLs, missing fields, ints, floats, booleans, strings with
``%``, ``_``, regex metacharacters, quotes and unicode) and queries (WHERE trees,
ORDER BY, LIMIT/OFFSET, DISTINCT, aggregates). Each query runs on SQLite with
``PRAGMA case_sensitive_like = ON`` and through the translator against the modelled
``_find`` of :mod:`test_sql_mango`, with and without indexes; the answers must match.
The selector sent to the server must select every row SQLite returns (a superset), and
exactly those rows when the translator claims it is exact.

Columns keep to the domains where SQL databases agree (the translator refuses the rest:
arithmetic on text, floats as text): ``a`` numbers, ``b`` numbers and text, ``s`` text
and integers, ``f`` booleans and small integers. ``lower``/``upper`` are Unicode-aware in
the translator, so SQLite gets Python's versions (its own only map ASCII).
"""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sql_mango import FakeServer, run_sql

from sqlalchemy_couchdb.sql import MangoIndex, SelectPlan, compile_sql
from sqlalchemy_couchdb.sql.selector import compile_selector

COLUMNS = ("a", "b", "s", "f")
MISSING = object()
INDEXES = [
    MangoIndex(("type", c, *rest), "sqla-t", f"ix_{c}{len(rest)}")
    for c in ("a", "b", "s")
    for rest in ((), ("_id",))
]
SETTINGS = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- values -----------------------------------------------------------------------------------

TRICKY = list("aAbBzé😀%_/\\.*+?^$()[]{}|' \n")
texts = st.one_of(
    st.text(st.sampled_from(TRICKY), max_size=5),
    st.sampled_from(["", "a", "A", "a%", "%", "_", "a_b", "ab", "b", "1", "10"]),
    # sqlite3 refuses NUL in SQL text; surrogates cannot be encoded.
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=3),
)
small_ints = st.integers(-3, 12)
ints = st.one_of(small_ints, st.integers(-(10**6), 10**6))
floats = st.one_of(
    st.sampled_from([0.5, -0.5, 1.0, 0.0, 2.5, 1e-7, 3.0]),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)
numbers = st.one_of(ints, floats)
bools_and_bits = st.one_of(st.booleans(), st.sampled_from([0, 1, 2]))
DOMAINS = {
    "a": numbers,
    "b": st.one_of(numbers, texts),
    "s": st.one_of(texts, small_ints),
    "f": bools_and_bits,
}
any_value = st.one_of(numbers, texts, st.booleans(), st.none())


@st.composite
def rows(draw: Any) -> list[dict[str, Any]]:
    out = []
    for i in range(draw(st.integers(0, 12))):
        row: dict[str, Any] = {"id": f"r{i:02d}"}
        for c in COLUMNS:
            kind = draw(st.sampled_from(["value", "value", "value", "null", "missing"]))
            if kind == "value":
                row[c] = draw(DOMAINS[c])
            elif kind == "null":
                row[c] = None
        out.append(row)
    return out


def literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if value is True or value is False:
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


# -- predicates -------------------------------------------------------------------------------


class Params:
    """Named parameters drawn while building one statement."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def put(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f":{name}"


def value_sql(draw: Any, params: Params, strategy: Any = any_value) -> str:
    value = draw(strategy)
    return params.put(value) if draw(st.booleans()) else literal(value)


@st.composite
def atom(draw: Any, params: Params) -> str:
    kind = draw(
        st.sampled_from(
            ["cmp", "cmp", "in", "between", "null", "like", "arith", "truth", "func", "is"]
        )
    )
    col = draw(st.sampled_from(COLUMNS))
    if kind == "cmp":
        op = draw(st.sampled_from(["=", "!=", "<>", "<", "<=", ">", ">="]))
        value = value_sql(draw, params)
        return f"{col} {op} {value}" if draw(st.booleans()) else f"{value} {op} {col}"
    if kind == "in":
        items = [value_sql(draw, params) for _ in range(draw(st.integers(0, 4)))]
        neg = "NOT " if draw(st.booleans()) else ""
        if not items and draw(st.booleans()):  # SQLAlchemy's spelling of an empty IN
            return f"({col} NOT IN (NULL) OR (1 = 1))" if neg else f"({col} IN (NULL) AND (1 != 1))"
        return f"{col} {neg}IN ({', '.join(items)})"
    if kind == "between":
        neg = "NOT " if draw(st.booleans()) else ""
        return f"{col} {neg}BETWEEN {value_sql(draw, params)} AND {value_sql(draw, params)}"
    if kind == "null":
        return f"{col} IS {'NOT ' if draw(st.booleans()) else ''}NULL"
    if kind == "is":
        if draw(st.booleans()):  # a truth test: text is refused as a truth value
            value = literal(draw(st.booleans()))
            col = draw(st.sampled_from(["a", "f"]))
        else:
            value = value_sql(draw, params, st.one_of(st.none(), small_ints))
            if draw(st.booleans()):
                return f"{col} IS {'NOT ' if draw(st.booleans()) else ''}DISTINCT FROM {value}"
        return f"{col} IS {'NOT ' if draw(st.booleans()) else ''}{value}"
    if kind == "like":
        pattern = draw(st.text(st.sampled_from([*"aAbé%_/.*(", "\\"]), max_size=5))
        neg = "NOT " if draw(st.booleans()) else ""
        p = params.put(pattern) if draw(st.booleans()) else literal(pattern)
        escape = " ESCAPE '/'" if draw(st.booleans()) else ""
        if draw(st.integers(0, 3)) == 0:
            return f"lower(s) {neg}LIKE lower({p}){escape}"
        return f"s {neg}LIKE {p}{escape}"
    if kind == "arith":
        num = draw(st.sampled_from(["a", "f"]))
        op = draw(st.sampled_from(["+", "-", "*", "/", "%"]))
        operand = literal(draw(st.one_of(small_ints, st.sampled_from([2.0, 0.5]))))
        cmp = draw(st.sampled_from(["=", "<", ">=", "!="]))
        return f"({num} {op} {operand}) {cmp} {value_sql(draw, params, numbers)}"
    if kind == "truth":
        return "f" if draw(st.booleans()) else "NOT f"
    expr = draw(
        st.sampled_from(
            [
                "length(s)",
                "abs(a)",
                "coalesce(a, 0)",
                "coalesce(b, 'z')",
                "lower(s)",
                "upper(s)",
                "s || 'x'",
                "nullif(a, 1)",
                "CASE WHEN a > 1 THEN 'big' WHEN a IS NULL THEN NULL ELSE s END",
            ]
        )
    )
    op = draw(st.sampled_from(["=", "<", ">=", "!="]))
    return f"{expr} {op} {value_sql(draw, params)}"


@st.composite
def predicate(draw: Any, params: Params, depth: int = 0) -> str:
    if depth >= 2 or draw(st.integers(0, 2)) == 0:
        return draw(atom(params))
    kind = draw(st.sampled_from(["AND", "OR", "NOT"]))
    if kind == "NOT":
        return f"NOT ({draw(predicate(params, depth + 1))})"
    parts = [draw(predicate(params, depth + 1)) for _ in range(draw(st.integers(2, 3)))]
    return "(" + f" {kind} ".join(parts) + ")"


@st.composite
def where_clause(draw: Any) -> tuple[str, dict[str, Any]]:
    params = Params()
    text = draw(predicate(params)) if draw(st.integers(0, 5)) else ""
    return text, params.values


# -- running ----------------------------------------------------------------------------------


def sqlite_db(data: list[dict[str, Any]]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("PRAGMA case_sensitive_like = ON")
    for name, fn in (("lower", str.lower), ("upper", str.upper)):
        db.create_function(name, 1, lambda v, fn=fn: None if v is None else fn(str(v)))
    # No declared types: SQLite applies no conversions, as with JSON values.
    db.execute("CREATE TABLE t (id, a, b, s, f)")
    db.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
        [(r["id"], *(r.get(c) for c in COLUMNS)) for r in data],
    )
    return db


def documents(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    docs = []
    for r in data:
        doc = {"_id": r["id"], "_rev": "1-x", "type": "t"}
        doc.update({c: r[c] for c in COLUMNS if c in r})
        docs.append(doc)
    return docs


def norm(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def norm_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [tuple(norm(v) for v in row) for row in rows]


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, int | float)
            and isinstance(b, int | float)
            and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
        )
    return bool(a == b) and type(a) is type(b)


def both(sql: str, params: dict[str, Any], data: list[dict[str, Any]]) -> tuple[list, list, list]:
    """(SQLite rows, translator rows without indexes, translator rows with indexes)."""
    db = sqlite_db(data)
    expected = norm_rows(db.execute(sql, params).fetchall())
    docs = documents(data)
    plain = norm_rows(run_sql(sql, docs, params, (), page_size=4)[1])
    indexed = norm_rows(run_sql(sql, docs, params, INDEXES, page_size=3)[1])
    return expected, plain, indexed


def check_superset(where: str, params: dict[str, Any], data: list[dict[str, Any]]) -> None:
    if not where:
        return
    sql = f"SELECT id FROM t WHERE {where}"
    truth = {r[0] for r in sqlite_db(data).execute(sql, params)}
    plan = compile_sql(sql)
    assert isinstance(plan, SelectPlan)
    condition = compile_selector(plan.where)(plan.parameters.bind(params))
    server = FakeServer(documents(data))
    matched: set[str] = set()
    for request in plan.bind(params).requests:
        matched |= {d["_id"] for d in server.answer(request)}
    assert truth <= matched, f"selector drops rows {truth - matched}"
    if condition.exact:
        assert truth == matched, f"selector claims exact but also matched {matched - truth}"


# -- the tests --------------------------------------------------------------------------------


@SETTINGS
@given(data=rows(), where=where_clause())
def test_where_matches_sqlite(
    data: list[dict[str, Any]], where: tuple[str, dict[str, Any]]
) -> None:
    text, params = where
    sql = "SELECT id, a, b, s, f FROM t" + (f" WHERE {text}" if text else "")
    expected, plain, indexed = both(sql, params, data)
    key = repr
    assert sorted(plain, key=key) == sorted(expected, key=key), sql
    assert sorted(indexed, key=key) == sorted(expected, key=key), sql
    check_superset(text, params, data)


@st.composite
def order_clause(draw: Any) -> str:
    terms = []
    for col in draw(st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=2, unique=True)):
        terms.append(col)
    same = draw(st.booleans())
    desc = draw(st.booleans())
    out = []
    for col in [*terms, "id"]:
        d = desc if same else draw(st.booleans())
        nulls = draw(st.sampled_from(["", "", " NULLS FIRST", " NULLS LAST"]))
        out.append(f"{col}{' DESC' if d else ''}{nulls if col != 'id' else ''}")
    return ", ".join(out)


@st.composite
def limit_clause(draw: Any) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(["none", "limit", "both", "offset", "params"]))
    n, m = draw(st.integers(0, 8)), draw(st.integers(0, 8))
    if kind == "none":
        return "", {}
    if kind == "limit":
        return f" LIMIT {n}", {}
    if kind == "both":
        return f" LIMIT {n} OFFSET {m}", {}
    if kind == "offset":
        return f" LIMIT -1 OFFSET {m}", {}
    return " LIMIT :lim OFFSET :off", {"lim": n, "off": m}


@SETTINGS
@given(data=rows(), where=where_clause(), order=order_clause(), limit=limit_clause())
def test_order_limit_offset_match_sqlite(
    data: list[dict[str, Any]],
    where: tuple[str, dict[str, Any]],
    order: str,
    limit: tuple[str, dict[str, Any]],
) -> None:
    text, params = where
    sql = "SELECT id, a, b, s, f FROM t" + (f" WHERE {text}" if text else "")
    sql += f" ORDER BY {order}{limit[0]}"
    expected, plain, indexed = both(sql, {**params, **limit[1]}, data)
    assert plain == expected, sql
    assert indexed == expected, sql


@SETTINGS
@given(
    data=rows(),
    where=where_clause(),
    col=st.sampled_from(["a", "b", "s"]),
    desc=st.booleans(),
    nulls=st.sampled_from(["", " NULLS FIRST", " NULLS LAST"]),
    limit=limit_clause(),
)
def test_single_key_order_with_ties(
    data: list[dict[str, Any]],
    where: tuple[str, dict[str, Any]],
    col: str,
    desc: bool,
    nulls: str,
    limit: tuple[str, dict[str, Any]],
) -> None:
    """ORDER BY one key (ties in any order): the server-sorted segments must agree."""
    text, params = where
    base = f"SELECT id, {col} FROM t" + (f" WHERE {text}" if text else "")
    sql = f"{base} ORDER BY {col}{' DESC' if desc else ''}{nulls}{limit[0]}"
    expected, plain, indexed = both(sql, {**params, **limit[1]}, data)
    everything = Counter(norm_rows(sqlite_db(data).execute(base, params).fetchall()))
    for got in (plain, indexed):
        assert [r[1] for r in got] == [r[1] for r in expected], sql
        assert not Counter(got) - everything, sql
        if not limit[0]:
            assert Counter(got) == Counter(expected), sql


@SETTINGS
@given(
    data=rows(),
    where=where_clause(),
    cols=st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=2, unique=True),
)
def test_distinct_matches_sqlite(
    data: list[dict[str, Any]], where: tuple[str, dict[str, Any]], cols: list[str]
) -> None:
    text, params = where
    select = ", ".join(cols)
    sql = f"SELECT DISTINCT {select} FROM t" + (f" WHERE {text}" if text else "")
    sql += f" ORDER BY {select}"
    expected, plain, indexed = both(sql, params, data)
    assert plain == expected, sql
    assert indexed == expected, sql


AGGREGATES = [
    "count(*)",
    "count(b)",
    "count(DISTINCT b)",
    "count(DISTINCT f)",
    "sum(a)",
    "avg(a)",
    "min(a)",
    "max(b)",
    "min(s)",
    "max(f)",
    "sum(f)",
]


@SETTINGS
@given(
    data=rows(),
    where=where_clause(),
    aggs=st.lists(st.sampled_from(AGGREGATES), min_size=1, max_size=4),
)
def test_aggregates_match_sqlite(
    data: list[dict[str, Any]], where: tuple[str, dict[str, Any]], aggs: list[str]
) -> None:
    text, params = where
    sql = f"SELECT {', '.join(aggs)} FROM t" + (f" WHERE {text}" if text else "")
    expected, plain, indexed = both(sql, params, data)
    for got in (plain, indexed):
        assert len(got) == len(expected) == 1, sql
        assert all(same_value(a, b) for a, b in zip(got[0], expected[0], strict=True)), (
            sql,
            got,
            expected,
        )
