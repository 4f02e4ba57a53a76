"""What the dialect knows about declared tables: keys, indexes, reflection, RETURNING."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import exc

metadata = sa.MetaData()
items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("x", sa.Integer, index=True),
    sa.Column("label", sa.String(20)),
)
pairs = sa.Table(
    "pairs",
    metadata,
    sa.Column("id", sa.String(10)),
    sa.Column("name", sa.String(10)),
    sa.Column("attr", sa.Integer),
    sa.PrimaryKeyConstraint("name", "id", "attr"),
)


@pytest.fixture
def engine(couchdb_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(couchdb_url)
    with pytest.warns(UserWarning, match="PRIMARY KEY"):  # (name, id, attr) is not enforced
        metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(items.insert(), [{"id": i, "x": 10 - i, "label": f"l{i}"} for i in range(5)])
    yield engine
    engine.dispose()


def test_an_index_dropped_elsewhere_is_planned_around(
    engine: sa.Engine, couchdb_http: httpx.Client, couchdb_url: str
) -> None:
    query = sa.select(items.c.id).where(items.c.x >= 7).order_by(items.c.x)
    with engine.connect() as conn:
        assert conn.execute(query).scalars().all() == [3, 2, 1, 0]
    # Another process drops the table's indexes: this process still has them cached.
    database = couchdb_url.rsplit("/", 1)[1]
    ddoc = couchdb_http.get(f"/{database}/_design/sqla-items").json()
    couchdb_http.delete(f"/{database}/_design/sqla-items", params={"rev": ddoc["_rev"]})
    with engine.connect() as conn:
        assert conn.execute(query).scalars().all() == [3, 2, 1, 0]
    with engine.begin() as conn:
        result = conn.execute(items.update().where(items.c.x == 9).values(label="nine"))
        assert result.rowcount == 1


def test_reflected_primary_key_is_the_declared_one_in_order(engine: sa.Engine) -> None:
    insp = sa.inspect(engine)
    assert insp.get_pk_constraint("pairs")["constrained_columns"] == ["name", "id", "attr"]
    assert insp.get_pk_constraint("items")["constrained_columns"] == ["id"]
    columns = {c["name"]: c for c in insp.get_columns("items")}
    assert isinstance(columns["label"]["type"], sa.VARCHAR)
    assert columns["label"]["type"].length == 20
    assert "autoincrement" not in columns["id"]  # nothing is generated
    with pytest.raises(exc.NoSuchTableError):
        insp.get_pk_constraint("nope")
    with pytest.raises(exc.NoSuchTableError):
        insp.get_indexes("nope")


def test_undeclared_table_is_keyed_by_its_document_id(
    engine: sa.Engine, couchdb_http: httpx.Client, couchdb_url: str
) -> None:
    database = couchdb_url.rsplit("/", 1)[1]
    couchdb_http.post(f"/{database}", json={"_id": "d1", "type": "loose", "v": 1})
    assert sa.inspect(engine).get_pk_constraint("loose")["constrained_columns"] == ["id"]


def test_delete_returning_gives_the_deleted_row(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        stmt = items.delete().where(items.c.id == 2).returning(items.c.id, items.c.label)
        assert conn.execute(stmt).all() == [(2, "l2")]
        stmt = items.update().where(items.c.id == 3).values(label="new")
        assert conn.execute(stmt.returning(items.c.id, items.c.label)).all() == [(3, "new")]
