"""The sync dialect through SQLAlchemy Core and text(), against a real server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import exc

from sqlalchemy_couchdb.dbapi import CouchDBClient

metadata = sa.MetaData()
people = sa.Table(
    "people",
    metadata,
    sa.Column("id", sa.String, primary_key=True, server_default=sa.FetchedValue()),
    sa.Column("rev", sa.String),
    sa.Column("name", sa.String(50)),
    sa.Column("age", sa.Integer, index=True),
    sa.Column("city", sa.String),
)
counters = sa.Table(
    "counters",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("rev", sa.String),
    sa.Column("n", sa.Integer),
    sa.Column("label", sa.String),
)

ROWS = [
    {"id": "p1", "name": "Ada", "age": 36, "city": "London"},
    {"id": "p2", "name": "Grace", "age": 45, "city": "New York"},
    {"id": "p3", "name": "Linus", "age": 28, "city": None},
    {"id": "p4", "name": "Barbara", "age": None, "city": "Boston"},
    {"id": "p5", "name": "Alan", "age": 41, "city": "London"},
]


@pytest.fixture
def engine(couchdb_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(couchdb_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def filled(engine: sa.Engine) -> sa.Engine:
    with engine.begin() as conn:
        conn.execute(people.insert(), ROWS)
    return engine


def names(rows: Any) -> list[str]:
    return [r.name for r in rows]


def test_select_star_returns_id_rev_then_fields(filled: sa.Engine) -> None:
    with filled.connect() as conn:
        result = conn.execute(sa.text("SELECT * FROM people WHERE id = :id"), {"id": "p1"})
        row = result.one()
    assert list(result.keys())[:2] == ["id", "rev"]
    assert row.id == "p1" and row.rev.startswith("1-")
    assert (row.name, row.age, row.city) == ("Ada", 36, "London")


def test_where_and_order_by(filled: sa.Engine) -> None:
    with filled.connect() as conn:
        q = sa.select(people.c.name).where(people.c.age > 30).order_by(people.c.age.desc())
        assert names(conn.execute(q)) == ["Grace", "Alan", "Ada"]
        q = sa.select(people.c.name).where(people.c.city != "London").order_by(people.c.name)
        # NULL city is excluded by != (three-valued logic)
        assert names(conn.execute(q)) == ["Barbara", "Grace"]
        q = sa.select(people.c.name).where(sa.not_(people.c.city == "London"))
        assert sorted(names(conn.execute(q))) == ["Barbara", "Grace"]


def test_order_by_keeps_rows_lacking_the_field(filled: sa.Engine) -> None:
    # age is indexed; Barbara has age NULL and must still come back (first, as in SQLite).
    with filled.connect() as conn:
        rows = conn.execute(sa.select(people.c.name, people.c.age).order_by(people.c.age))
        assert [r.name for r in rows] == ["Barbara", "Linus", "Ada", "Alan", "Grace"]
        rows = conn.execute(sa.select(people.c.name).order_by(people.c.city.desc(), people.c.name))
        assert names(rows) == ["Grace", "Ada", "Alan", "Barbara", "Linus"]


def test_limit_offset_and_every_row_without_limit(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(people.insert(), [{"name": f"n{i:03}", "age": i} for i in range(130)])
    with engine.connect() as conn:
        assert len(conn.execute(sa.select(people)).all()) == 130  # never Mango's 25
        q = sa.select(people.c.age).order_by(people.c.age).limit(5).offset(10)
        assert conn.execute(q).scalars().all() == [10, 11, 12, 13, 14]


def test_in_like_between_null(filled: sa.Engine) -> None:
    with filled.connect() as conn:

        def q(cond: Any) -> list[str]:
            return sorted(names(conn.execute(sa.select(people.c.name).where(cond))))

        assert q(people.c.name.in_(["Ada", "Alan", "Nobody"])) == ["Ada", "Alan"]
        assert q(people.c.name.in_([])) == []
        assert q(people.c.name.not_in([])) == ["Ada", "Alan", "Barbara", "Grace", "Linus"]
        assert q(people.c.name.like("A%")) == ["Ada", "Alan"]
        assert q(people.c.name.like("a%")) == []  # LIKE is case-sensitive
        assert q(people.c.name.ilike("a%")) == ["Ada", "Alan"]
        assert q(people.c.name.not_like("A%")) == ["Barbara", "Grace", "Linus"]
        assert q(people.c.age.between(30, 41)) == ["Ada", "Alan"]
        assert q(people.c.city.is_(None)) == ["Linus"]
        assert q(people.c.age.is_not(None) & (people.c.age < 30)) == ["Linus"]
        assert q(sa.or_(people.c.age < 30, people.c.city == "Boston")) == ["Barbara", "Linus"]


def test_like_treats_regex_metacharacters_literally(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            people.insert(),
            [{"name": "a.c"}, {"name": "abc"}, {"name": "50%"}, {"name": "500"}, {"name": "(x)"}],
        )
    with engine.connect() as conn:

        def q(cond: Any) -> list[str]:
            return sorted(names(conn.execute(sa.select(people.c.name).where(cond))))

        assert q(people.c.name.like("a.c")) == ["a.c"]
        assert q(people.c.name.like("50/%", escape="/")) == ["50%"]
        assert q(people.c.name.like("(%)")) == ["(x)"]
        assert q(people.c.name.like("_b_")) == ["abc"]


def test_distinct_and_aggregates(filled: sa.Engine) -> None:
    with filled.connect() as conn:
        cities = conn.execute(sa.select(people.c.city).distinct()).scalars().all()
        assert sorted(cities, key=lambda c: (c is not None, c)) == [
            None,
            "Boston",
            "London",
            "New York",
        ]
        row = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.count(people.c.age),
                sa.func.sum(people.c.age),
                sa.func.min(people.c.age),
                sa.func.max(people.c.age),
                sa.func.avg(people.c.age),
            )
        ).one()
        assert tuple(row[:5]) == (5, 4, 150, 28, 45)
        assert float(row[5]) == pytest.approx(37.5)
        empty = conn.execute(
            sa.select(sa.func.count(), sa.func.sum(people.c.age)).where(people.c.age > 100)
        ).one()
        assert tuple(empty) == (0, None)


def test_cached_statement_binds_fresh_parameters(filled: sa.Engine) -> None:
    q = sa.select(people.c.name).where(people.c.age > sa.bindparam("min_age"))
    with filled.connect() as conn:
        first = sorted(conn.execute(q, {"min_age": 40}).scalars())
        second = sorted(conn.execute(q, {"min_age": 30}).scalars())
    assert first == ["Alan", "Grace"]
    assert second == ["Ada", "Alan", "Grace"]


def test_insert_returning_and_generated_ids(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        result = conn.execute(people.insert().values(name="Eve", age=30))
        new_id = result.inserted_primary_key[0]
        assert isinstance(new_id, str) and new_id
        row = conn.execute(
            people.insert().values(id="given", name="Dan").returning(people.c.id, people.c.rev)
        ).one()
        assert row.id == "given" and row.rev.startswith("1-")
    with engine.connect() as conn:
        got = conn.execute(sa.select(people.c.name).where(people.c.id == new_id)).scalar_one()
    assert got == "Eve"


def test_executemany_duplicate_id_is_integrity_error(engine: sa.Engine, couchdb_url: str) -> None:
    with engine.begin() as conn:
        conn.execute(people.insert(), [{"id": "dup", "name": "first"}])
    with pytest.raises(exc.IntegrityError) as err, engine.begin() as conn:
        conn.execute(people.insert(), [{"id": "ok1", "name": "a"}, {"id": "dup", "name": "b"}])
    assert "dup" in str(err.value)
    with engine.connect() as conn:
        # CouchDB bulk writes are not atomic: the good row was stored.
        stored = conn.execute(sa.select(people.c.id, people.c.name)).all()
    assert sorted(stored) == [("dup", "first"), ("ok1", "a")]


def test_update_with_expressions_and_rowcount(filled: sa.Engine) -> None:
    with filled.begin() as conn:
        result = conn.execute(
            people.update().where(people.c.city == "London").values(age=people.c.age + 1)
        )
        assert result.rowcount == 2
        conn.execute(people.update().where(people.c.id == "p3").values(name=people.c.name + "!"))
    with filled.connect() as conn:
        rows = dict(conn.execute(sa.select(people.c.name, people.c.age)).all())
    assert rows["Ada"] == 37 and rows["Alan"] == 42 and "Linus!" in rows


def test_delete_with_and_without_where(filled: sa.Engine) -> None:
    with filled.begin() as conn:
        assert conn.execute(people.delete().where(people.c.age < 40)).rowcount == 2
        assert conn.execute(people.delete()).rowcount == 3
    with filled.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(people)).scalar() == 0


def test_no_lost_updates_under_concurrency(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(counters.insert().values(id="c", n=0))

    def work() -> None:
        for _ in range(15):
            with engine.begin() as conn:
                conn.execute(
                    counters.update().where(counters.c.id == "c").values(n=counters.c.n + 1)
                )

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engine.connect() as conn:
        assert conn.execute(sa.select(counters.c.n)).scalar_one() == 90


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT p.name FROM people p JOIN counters c ON c.id = p.id",
        "SELECT city, count(*) FROM people GROUP BY city",
        "SELECT name FROM people WHERE age > (SELECT min(n) FROM counters)",
        "SELECT name FROM people UNION SELECT label FROM counters",
        "WITH x AS (SELECT name FROM people) SELECT name FROM x",
        "SELECT name, row_number() OVER (ORDER BY age) FROM people",
    ],
)
def test_unsupported_sql_is_refused(filled: sa.Engine, sql: str) -> None:
    with filled.connect() as conn, pytest.raises(exc.NotSupportedError) as err:
        conn.execute(sa.text(sql)).all()
    assert "hybrid" in str(err.value) or "relational copy" in str(err.value)


def test_dict_parameter_is_never_an_operator(filled: sa.Engine) -> None:
    with filled.connect() as conn:
        try:
            rows = conn.execute(
                sa.text("SELECT name FROM people WHERE name = :n"), {"n": {"$gt": ""}}
            ).all()
        except exc.DBAPIError:
            return  # refused: acceptable
        assert rows == []


def test_ddl_creates_indexes_and_drop_removes_everything(
    filled: sa.Engine, couchdb_url: str
) -> None:
    insp = sa.inspect(filled)
    assert {"people", "counters"} <= set(insp.get_table_names())
    assert insp.has_table("people")
    assert not insp.has_table("nope")
    assert [i["column_names"] for i in insp.get_indexes("people")] == [["age"]]
    assert insp.get_pk_constraint("people")["constrained_columns"] == ["id"]
    columns = {c["name"]: c for c in insp.get_columns("people")}
    assert isinstance(columns["age"]["type"], sa.Integer)
    people.drop(filled)
    insp = sa.inspect(filled)
    assert not insp.has_table("people")
    with CouchDBClient.from_url(couchdb_url) as client:
        leftover = list(client.iter_find({"type": "people"}))
        assert leftover == []
        assert all(
            not str(i.get("ddoc") or "").endswith("sqla-people") for i in client.list_indexes()
        )


def test_create_all_creates_missing_database(couchdb_server_url: str) -> None:
    from tests.conftest import dialect_url

    url = dialect_url(couchdb_server_url, "created_by_create_all")
    engine = sa.create_engine(url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(people.insert().values(name="x"))
        with CouchDBClient.from_url(url) as client:
            assert client.database_exists()
    finally:
        with CouchDBClient.from_url(url) as client:
            client.delete_database(missing_ok=True)
        engine.dispose()


def test_stream_results_fetches_page_by_page(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(people.insert(), [{"name": f"s{i}", "age": i} for i in range(2500)])
    with engine.connect() as conn:
        result = conn.execution_options(yield_per=100).execute(sa.select(people.c.age))
        seen = 0
        for partition in result.partitions():
            assert len(partition) <= 100
            seen += len(partition)
        assert seen == 2500


def test_pandas_round_trip(engine: sa.Engine) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"id": ["a", "b"], "name": ["x", "y"], "age": [1, 2]})
    frame.to_sql("people", engine, if_exists="append", index=False)
    back = pd.read_sql(sa.select(people.c.id, people.c.name, people.c.age), engine)
    assert sorted(back.itertuples(index=False, name=None)) == [("a", "x", 1), ("b", "y", 2)]
