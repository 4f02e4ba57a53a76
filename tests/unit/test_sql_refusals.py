"""What the translator refuses: by name, with the way out, never a different answer."""

from __future__ import annotations

import pytest

from sqlalchemy_couchdb.dbapi.exceptions import NotSupportedError, ProgrammingError
from sqlalchemy_couchdb.sql import compile_sql

HYBRID = "couchdb+hybrid://"


@pytest.mark.parametrize(
    ("sql", "construct"),
    [
        ("SELECT a.x FROM a JOIN b ON a.x = b.x", "JOIN"),
        ("SELECT a.x FROM a LEFT OUTER JOIN b ON a.x = b.x", "JOIN"),
        ("SELECT x FROM a, b", "JOIN"),
        ("SELECT x, count(*) FROM t GROUP BY x", "GROUP BY"),
        ("SELECT count(*) FROM t HAVING count(*) > 1", "HAVING"),
        ("SELECT x FROM t WHERE x IN (SELECT y FROM u)", "subqueries"),
        ("SELECT x FROM t WHERE EXISTS (SELECT 1 FROM u)", "subqueries"),
        ("SELECT (SELECT max(y) FROM u) FROM t", "subqueries"),
        ("SELECT x FROM (SELECT x FROM t) AS s", "subquery in FROM"),
        ("SELECT x FROM t UNION SELECT x FROM u", "UNION"),
        ("SELECT x FROM t UNION ALL SELECT x FROM u", "UNION"),
        ("SELECT x FROM t INTERSECT SELECT x FROM u", "INTERSECT"),
        ("SELECT x FROM t EXCEPT SELECT x FROM u", "EXCEPT"),
        ("WITH c AS (SELECT x FROM t) SELECT x FROM c", "CTE"),
        ("SELECT row_number() OVER (ORDER BY x) FROM t", "window functions"),
        ("SELECT sum(x) OVER () FROM t", "window functions"),
        ("SELECT foo(x) FROM t", "FOO()"),
        ("SELECT id FROM t WHERE substr(name, 1, 2) = 'ab'", "SUBSTRING()"),
        ("SELECT round(x) FROM t", "ROUND()"),
        ("SELECT floor(x, 2) FROM t", "floor() with several arguments"),
        ("SELECT x, count(*) FROM t", "column 'x' next to an aggregate"),
        ("SELECT *, count(*) FROM t", "* next to an aggregate"),
        ("SELECT DISTINCT ON (x) x FROM t", "DISTINCT ON"),
        ("INSERT INTO t (x) SELECT x FROM u", "INSERT … SELECT"),
        ("UPDATE t SET x = 1 FROM u WHERE t.id = u.id", "UPDATE … FROM"),
    ],
)
def test_refused_with_the_construct_named_and_the_hybrid_mode(sql: str, construct: str) -> None:
    with pytest.raises(NotSupportedError) as err:
        compile_sql(sql)
    message = str(err.value)
    assert construct in message and "couchdb://" in message and HYBRID in message


@pytest.mark.parametrize(
    ("sql", "text"),
    [
        ("SELECT x FROM t FOR UPDATE", "no row locks"),
        ("UPDATE t SET id = 'b' WHERE id = 'a'", "changing id"),
        ("INSERT INTO t (id) VALUES ('a') ON CONFLICT DO NOTHING", "upsert"),
        ("BEGIN", "commit()"),
        ("ALTER TABLE t ADD COLUMN x INT", "ALTER"),
        ("SELECT x FROM main.t", "schema-qualified"),
        ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
        ("CREATE INDEX ix ON t (lower(x))", "expression"),
        ("SELECT CAST(x AS DATE) FROM t", "CAST to DATE"),
        ("SELECT id FROM t WHERE (x, y) IN ((1, 2))", "row values"),
        ("SELECT DISTINCT x FROM t ORDER BY y", "SELECT DISTINCT"),
        ("INSERT INTO t (id) VALUES ('a') RETURNING *", "RETURNING *"),
        ("INSERT INTO t (id) VALUES ('a') RETURNING :p", "parameters in RETURNING"),
    ],
)
def test_refused_without_a_hybrid_way_out(sql: str, text: str) -> None:
    with pytest.raises(NotSupportedError, match="not supported by couchdb://") as err:
        compile_sql(sql)
    assert text in str(err.value)


@pytest.mark.parametrize(
    ("sql", "text"),
    [
        ("SELEC x FROM t", "cannot parse SQL 'SELEC x FROM t'"),
        ("SELEC x", "not a SQL statement"),
        ("SELECT x FROM", "cannot parse SQL"),
        ("SELECT 'unterminated", "cannot parse SQL"),
        ("SELECT 1; SELECT 2", "expected one SQL statement"),
        ("", "expected one SQL statement"),
        ("SELECT type FROM t", "'type' is reserved"),
        ("SELECT _x FROM t", "reserved"),
        ("SELECT u.x FROM t", "names table 'u'"),
        ("SELECT x FROM t AS a WHERE t.x = 1", "names table 't'"),
        ("SELECT x", "needs a FROM clause"),
        ("SELECT x FROM t WHERE count(*) > 1", "only allowed in the select list"),
        ("SELECT max(count(x)) FROM t", "only allowed in the select list"),
        ("SELECT x FROM t ORDER BY 3", "ORDER BY 3"),
        ("SELECT x FROM t LIMIT x", "LIMIT must be a number"),
        ("INSERT INTO t VALUES (1)", "column list"),
        ("INSERT INTO t (a, b) VALUES (1)", "1 values for 2 columns"),
        ("INSERT INTO t (a, a) VALUES (1, 2)", "named twice"),
        ("INSERT INTO t (a) VALUES (b)", "cannot read columns"),
        ("INSERT INTO t (type) VALUES ('x')", "'type' is reserved"),
        ("UPDATE t SET rev = 'x'", "set by CouchDB"),
        ("UPDATE t SET a = 1, a = 2", "assigned twice"),
        ("SELECT x FROM t WHERE x = ? AND y = :y", "mix"),
    ],
)
def test_programming_errors_quote_the_problem(sql: str, text: str) -> None:
    with pytest.raises(ProgrammingError) as err:
        compile_sql(sql)
    assert text in str(err.value)


def test_syntax_error_quotes_shortened_sql() -> None:
    sql = "SELECT x FROM t WHERE " + " AND ".join(f"x{i} = {i}" for i in range(60)) + " AND ("
    with pytest.raises(ProgrammingError) as err:
        compile_sql(sql)
    message = str(err.value)
    assert "SELECT x FROM t WHERE x0 = 0" in message and "…" in message
    assert len(message) < 400
