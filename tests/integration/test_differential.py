"""Differential test: couchdb:// must answer what SQLite answers on the same rows.

hypothesis generates rows (NULLs, missing fields, ints, floats, tricky strings) and
WHERE / ORDER BY / LIMIT / OFFSET / DISTINCT queries; both backends run the same
SQLAlchemy statement. SQLite uses ``PRAGMA case_sensitive_like = ON`` (SQL's LIKE is
case-sensitive; SQLite's default is not). Strings are restricted to one case-free
alphabet where ORDER BY on strings is compared, because CouchDB's ICU collation orders
``a < A < b`` while SQLite uses code points — the documented, deliberate difference.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlalchemy_couchdb.dbapi import CouchDBClient

metadata = sa.MetaData()
items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("n", sa.Integer),
    sa.Column("x", sa.Float),
    sa.Column("s", sa.String),
)

TRICKY = ["", "a", "b", "ab", "a%b", "a_b", "a.b", "(a)", "[a]", "a*", "a+b", "a\\b", "é", "a b"]
words = st.sampled_from(TRICKY)
MISSING = object()


def value(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.just(MISSING), strategy)


rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "n": value(st.integers(-5, 5)),
            "x": value(st.floats(-3, 3, allow_nan=False).map(lambda f: round(f, 2))),
            "s": value(words),
        }
    ),
    max_size=25,
)

n, x, s = items.c.n, items.c.x, items.c.s
num = st.integers(-5, 5)
conditions = st.recursive(
    st.one_of(
        num.map(lambda v: n == v),
        num.map(lambda v: n != v),
        num.map(lambda v: n < v),
        num.map(lambda v: n >= v),
        st.floats(-3, 3, allow_nan=False).map(lambda v: x > round(v, 2)),
        st.lists(num, max_size=3).map(lambda vs: n.in_(vs)),
        st.lists(num, max_size=3).map(lambda vs: n.not_in(vs)),
        words.map(lambda w: s == w),
        words.map(lambda w: s != w),
        st.sampled_from(["a%", "%b", "%a%", "a_b", "_", "%", "a.b", "(%", "%\\%"]).map(
            lambda p: s.like(p)
        ),
        st.sampled_from(["a%", "%.%", "_"]).map(lambda p: s.not_like(p)),
        st.just(n.is_(None)),
        st.just(s.is_not(None)),
        st.tuples(num, num).map(lambda ab: n.between(min(ab), max(ab))),
    ),
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda ab: sa.and_(*ab)),
        st.tuples(inner, inner).map(lambda ab: sa.or_(*ab)),
        inner.map(sa.not_),
    ),
    max_leaves=4,
)


@pytest.fixture(scope="module")
def backends(couchdb_server_url: str) -> Iterator[tuple[sa.Engine, sa.Engine, str]]:
    from tests.conftest import dialect_url

    url = dialect_url(couchdb_server_url, f"diff_{uuid.uuid4().hex[:12]}")
    couch = sa.create_engine(url)
    lite = sa.create_engine("sqlite://")

    @sa.event.listens_for(lite, "connect")
    def _case_sensitive_like(dbapi_conn: Any, record: Any) -> None:
        dbapi_conn.execute("PRAGMA case_sensitive_like = ON")

    metadata.create_all(couch)
    metadata.create_all(lite)
    yield couch, lite, url
    couch.dispose()
    with CouchDBClient.from_url(url) as client:
        client.delete_database(missing_ok=True)


def load(engines: tuple[sa.Engine, sa.Engine, str], rows: list[dict[str, Any]]) -> None:
    couch, lite, url = engines
    with lite.begin() as conn:
        conn.execute(items.delete())
        for i, row in enumerate(rows):
            conn.execute(
                items.insert().values(
                    id=f"r{i:03}", **{k: None if v is MISSING else v for k, v in row.items()}
                )
            )
    with couch.begin() as conn:
        conn.execute(items.delete())
    # Missing fields are really missing in the documents: write them with the raw client.
    docs = [
        {"_id": f"r{i:03}", "type": "items", **{k: v for k, v in row.items() if v is not MISSING}}
        for i, row in enumerate(rows)
    ]
    with CouchDBClient.from_url(url) as client:
        assert all(r.ok for r in client.bulk_docs(docs))


def both(engines: tuple[sa.Engine, sa.Engine, str], stmt: Any) -> tuple[list[Any], list[Any]]:
    couch, lite, _ = engines
    with couch.connect() as c, lite.connect() as li:
        return [tuple(r) for r in c.execute(stmt)], [tuple(r) for r in li.execute(stmt)]


common = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@common
@given(rows=rows_strategy, cond=conditions)
def test_where_matches_sqlite(backends: Any, rows: list[dict[str, Any]], cond: Any) -> None:
    load(backends, rows)
    got, want = both(backends, sa.select(items.c.id).where(cond).order_by(items.c.id))
    assert got == want


@common
@given(
    rows=rows_strategy,
    cond=st.one_of(st.none(), conditions),
    key=st.sampled_from(["n", "x"]),
    desc=st.booleans(),
    limit=st.one_of(st.none(), st.integers(0, 6)),
    offset=st.one_of(st.none(), st.integers(0, 4)),
)
def test_order_limit_offset_match_sqlite(
    backends: Any,
    rows: list[dict[str, Any]],
    cond: Any,
    key: str,
    desc: bool,
    limit: int | None,
    offset: int | None,
) -> None:
    load(backends, rows)
    col = items.c[key]
    stmt = sa.select(items.c.id, col).order_by(col.desc() if desc else col, items.c.id)
    if cond is not None:
        stmt = stmt.where(cond)
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset is not None:
        stmt = stmt.offset(offset)
    got, want = both(backends, stmt)
    assert got == want


@common
@given(rows=rows_strategy, cond=st.one_of(st.none(), conditions))
def test_aggregates_and_distinct_match_sqlite(
    backends: Any, rows: list[dict[str, Any]], cond: Any
) -> None:
    load(backends, rows)
    agg = sa.select(
        sa.func.count(), sa.func.count(n), sa.func.sum(n), sa.func.min(n), sa.func.max(n)
    )
    dist = sa.select(n).distinct().order_by(n)
    if cond is not None:
        agg, dist = agg.where(cond), dist.where(cond)
    got, want = both(backends, agg)
    assert got == want
    got, want = both(backends, dist)
    assert got == want
