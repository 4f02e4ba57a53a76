"""Tables with an INTEGER ``id``: every table numbers its rows from 1 in one database.

Id ``n`` of table ``t`` is stored as the document id ``"t:n"`` and read back as the int
``n``; ranges and ORDER BY compare numbers, not text.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import exc

metadata = sa.MetaData()
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(50)),
)
orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("user_id", sa.Integer),
    sa.Column("total", sa.Integer),
)


@pytest.fixture
def engine(couchdb_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(couchdb_url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(users.insert(), [{"id": i, "name": f"u{i}"} for i in range(1, 13)])
        conn.execute(orders.insert(), [{"id": i, "user_id": 13 - i, "total": i} for i in (1, 2)])
    yield engine
    engine.dispose()


def test_ids_of_different_tables_do_not_collide(
    engine: sa.Engine, couchdb_http: httpx.Client, couchdb_url: str
) -> None:
    database = couchdb_url.rsplit("/", 1)[1]
    body = couchdb_http.post(
        f"/{database}/_find", json={"selector": {"type": "orders"}, "limit": 10}
    ).json()
    assert sorted(d["_id"] for d in body["docs"]) == ["orders:1", "orders:2"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(users.c.name).where(users.c.id == 1)).scalar() == "u1"
        assert conn.execute(sa.select(orders.c.total).where(orders.c.id == 1)).scalar() == 1


def test_ids_read_back_as_ints_and_order_as_numbers(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        ids = conn.execute(sa.select(users.c.id).order_by(users.c.id.desc()).limit(4)).all()
        assert [r.id for r in ids] == [12, 11, 10, 9]
        assert conn.execute(sa.text("SELECT id FROM users WHERE id = 10")).scalar() == 10
        q = sa.select(users.c.id).where(users.c.id > 9).order_by(users.c.id)
        assert conn.execute(q).scalars().all() == [10, 11, 12]
        q = sa.select(users.c.id).where(users.c.id.in_([2, 11, 40])).order_by(users.c.id)
        assert conn.execute(q).scalars().all() == [2, 11]
        q = sa.select(sa.func.max(users.c.id))
        assert conn.execute(q).scalar() == 12


def test_update_delete_and_returning(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        result = conn.execute(users.update().where(users.c.id >= 10).values(name="big"))
        assert result.rowcount == 3
        assert conn.execute(users.delete().where(users.c.id == 12)).rowcount == 1
        inserted = conn.execute(
            users.insert().returning(users.c.id, users.c.name), {"id": 40, "name": "x"}
        )
        assert inserted.one() == (40, "x")
    with engine.connect() as conn:
        q = sa.select(users.c.id, users.c.name).where(users.c.name == "big").order_by(users.c.id)
        assert conn.execute(q).all() == [(10, "big"), (11, "big")]


def test_duplicate_and_missing_integer_ids_are_refused(engine: sa.Engine) -> None:
    with pytest.raises(exc.IntegrityError), engine.begin() as conn:
        conn.execute(users.insert(), {"id": 1, "name": "again"})
    with pytest.raises(exc.NotSupportedError, match="cannot number rows"), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (name) VALUES ('no id')"))


def test_select_star_is_the_declared_columns(engine: sa.Engine) -> None:
    # A declared table: its columns in their order (no rev: users does not declare it).
    with engine.connect() as conn:
        result = conn.execute(sa.text("SELECT * FROM users WHERE id = 3"))
        assert list(result.keys()) == ["id", "name"]
        assert result.all() == [(3, "u3")]
