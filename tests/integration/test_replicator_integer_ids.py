"""Tables the dialect created with an INTEGER ``id``, copied with integer ids.

The dialect stores row ``n`` of table ``t`` as the document ``"t:n"``. The copy holds
``n`` in an integer ``id`` column — declared by ``--metadata``, or, without it, because
the dialect's catalog (``_local/sqlalchemy_couchdb.schema``) declares the id INTEGER — so
a JOIN on an integer foreign key gives the answer a relational database gives for the
same rows. Other ids in such a table are dead letters that keep their ``_id``.
"""

from __future__ import annotations

import asyncio
import decimal
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from test_replicator_support import (
    Copy,
    Couch,
    copy_fixture,
    couch_fixture,
    target_url_fixture,
    unique_type,
)

from couchdb_replicator import InferredSchema, Replicator, RunOptions, replicate_async
from couchdb_replicator.targets import create_target_engine
from couchdb_replicator.verify import verify_async
from sqlalchemy_couchdb.dbapi import ConnectionSettings

# pytest finds the shared fixtures by these imports.
FIXTURES = (copy_fixture, couch_fixture, target_url_fixture)


class Shop:
    """Tables made through the dialect: users and orders (INTEGER ids, orders.user_id
    refers to users.id) and archive (a text id)."""

    def __init__(self, couchdb_url: str) -> None:
        self.metadata = sa.MetaData()
        self.users = sa.Table(
            unique_type("users"),
            self.metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("name", sa.String(50)),
        )
        self.orders = sa.Table(
            unique_type("orders"),
            self.metadata,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("user_id", sa.Integer),
            sa.Column("total", sa.Integer),
        )
        self.archive = sa.Table(
            unique_type("archive"),
            self.metadata,
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("rev", sa.String(64)),
            sa.Column("name", sa.String(50)),
            sa.Column("total", sa.Integer),
        )
        self.engine = sa.create_engine(couchdb_url)
        self.metadata.create_all(self.engine)

    @property
    def names(self) -> set[str]:
        return set(self.metadata.tables)

    def seed(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                self.users.insert(), [{"id": i, "name": f"u{i % 5}"} for i in range(1, 13)]
            )
            conn.execute(
                self.orders.insert(),
                [
                    # Some orders refer to users that do not exist, some to none.
                    {"id": i, "user_id": None if i % 9 == 0 else i % 15 + 1, "total": i * 10}
                    for i in range(1, 31)
                ],
            )

    def change(self) -> None:
        """Updates, deletions and an insert, all through the dialect."""
        with self.engine.begin() as conn:
            # (IN, not >=: the other program's ids in the table are strings, and the
            # dialect compares them as CouchDB collates, after every number.)
            big = self.users.c.id.in_([10, 11, 12])
            conn.execute(self.users.update().where(big).values(name="big"))
            conn.execute(self.orders.update().where(self.orders.c.id == 2).values(user_id=1))
            conn.execute(self.users.delete().where(self.users.c.id == 3))
            conn.execute(self.orders.delete().where(self.orders.c.id.in_([5, 6])))
            conn.execute(self.users.insert(), {"id": 40, "name": "new"})
            conn.execute(self.orders.insert(), {"id": 31, "user_id": 40, "total": 5})

    def rows(self, table: sa.Table) -> list[dict[str, Any]]:
        """Every row as the dialect reads it (ids of other forms stay strings)."""
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(table))]

    def reference(self) -> sa.Engine:
        """SQLite holding the rows the dialect reads whose ids are integers."""
        engine = sa.create_engine("sqlite://")
        self.metadata.create_all(engine, tables=[self.users, self.orders])
        with engine.begin() as conn:
            for table in (self.users, self.orders):
                rows = [r for r in self.rows(table) if isinstance(r["id"], int)]
                conn.execute(table.insert(), rows)
        return engine

    def join(self, conn: sa.Connection) -> list[tuple[Any, ...]]:
        """Per user: its orders' count and total, by the integer foreign key."""
        u, o = self.users.name, self.orders.name
        result = conn.execute(
            sa.text(
                f"SELECT u.id, u.name, COUNT(o.id), SUM(o.total) FROM {u} u "
                f"JOIN {o} o ON o.user_id = u.id GROUP BY u.id, u.name ORDER BY u.id"
            )
        )
        return [tuple(int(v) if isinstance(v, decimal.Decimal) else v for v in r) for r in result]


@pytest.fixture
def shop(couchdb_url: str, copy: Copy) -> Iterator[Shop]:
    shop = Shop(couchdb_url)
    copy.extra_tables.update(shop.names)
    try:
        yield shop
    finally:
        shop.engine.dispose()


def integer_ids(copy: Copy, table: str) -> dict[int, dict[str, Any]]:
    """The copy's rows of ``table``, which must have an integer ``id`` column."""
    columns = {c["name"]: c["type"] for c in sa.inspect(copy.engine).get_columns(table)}
    assert isinstance(columns["id"], sa.Integer), columns["id"]
    rows = copy.rows(table)
    assert all(type(i) is int for i in rows), sorted(map(repr, rows))[:5]
    return rows


def assert_copy_matches_the_dialect(shop: Shop, copy: Copy) -> None:
    """Same integer ids and values as the dialect reads, and the same JOIN answer as
    SQLite holding the same rows."""
    users, orders = integer_ids(copy, shop.users.name), integer_ids(copy, shop.orders.name)
    expected_users = {r["id"]: r["name"] for r in shop.rows(shop.users) if type(r["id"]) is int}
    assert {i: r["name"] for i, r in users.items()} == expected_users
    assert {i: (r["user_id"], r["total"]) for i, r in orders.items()} == {
        r["id"]: (r["user_id"], r["total"]) for r in shop.rows(shop.orders)
    }
    reference = shop.reference()
    try:
        with reference.connect() as conn:
            expected = shop.join(conn)
    finally:
        reference.dispose()
    with copy.engine.connect() as conn:
        joined = shop.join(conn)
    assert len(expected) >= 8  # users with orders: the JOIN has something to match
    assert joined == expected


@pytest.mark.parametrize("declared", [True, False], ids=["metadata", "inferred"])
async def test_integer_ids_are_copied_as_integers_and_joins_match(
    shop: Shop, couch: Couch, copy: Copy, couchdb_url: str, target_url: str, declared: bool
) -> None:
    metadata = shop.metadata if declared else None
    users, orders, archive = shop.users.name, shop.orders.name, shop.archive.name
    shop.seed()
    # Written by another program: ids the integer table cannot hold, and a document of
    # the text-id table that later moves into users.
    couch.bulk(
        [
            {"_id": "bob", "type": users, "name": "bob"},
            {"_id": f"{users}:007", "type": users, "name": "zeros"},
            {"_id": f"{users}:77", "type": archive, "name": "moving", "total": 1},
        ]
    )
    first = await replicate_async(couchdb_url, target_url, metadata=metadata)
    assert first.counts.dead_lettered == 2
    assert_copy_matches_the_dialect(shop, copy)
    assert set(copy.rows(archive)) == {f"{users}:77"}

    shop.change()
    couch.update(f"{users}:77", type=users)  # archive -> users: becomes row 77
    couch.update(f"{orders}:7", type=archive)  # orders -> archive: keeps its _id as text
    second = await replicate_async(couchdb_url, target_url, metadata=metadata)
    assert second.counts.deleted == 3
    assert second.counts.dead_lettered == 0

    assert_copy_matches_the_dialect(shop, copy)
    copied_users = integer_ids(copy, users)
    assert 3 not in copied_users and copied_users[77]["name"] == "moving"
    assert copied_users[40]["name"] == "new" and copied_users[11]["name"] == "big"
    assert not {5, 6, 7} & set(integer_ids(copy, orders))
    assert set(copy.rows(archive)) == {f"{orders}:7"}
    assert copy.rows(archive)[f"{orders}:7"]["total"] == 70

    letters = copy.dead_letters()
    assert set(letters) == {"bob", f"{users}:007"}  # the original _id, not a decoded one
    for doc_id, letter in letters.items():
        assert letter.table_name == users
        assert repr(doc_id) in letter.error and f"'{users}:<n>'" in letter.error
        assert "integer" in letter.error

    # Fixed at the source (deleted, or rewritten in the canonical form): the dead
    # letters clear and the row appears under its integer.
    couch.delete("bob")
    couch.delete(f"{users}:007")
    couch.bulk([{"_id": f"{users}:13", "type": users, "name": "zeros"}])
    await replicate_async(couchdb_url, target_url, metadata=metadata)
    assert copy.dead_letters() == {}
    assert integer_ids(copy, users)[13]["name"] == "zeros"
    assert_copy_matches_the_dialect(shop, copy)


@pytest.mark.parametrize("target_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_table_the_dialect_creates_while_the_daemon_runs(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    """The catalog is read again when a new table appears: a table created through the
    dialect after the daemon started still gets an integer id column."""
    couch.bulk([{"_id": "first", "type": unique_type("other"), "n": 1}])
    target = create_target_engine(target_url)
    replicator = Replicator(
        ConnectionSettings.from_url(couchdb_url),
        target,
        InferredSchema(),
        RunOptions(batch_size=10, batch_delay=0.05, heartbeat=1.0),
    )
    task = asyncio.create_task(replicator.run())
    try:
        while not replicator.following:
            assert not task.done(), task.exception()
            await asyncio.sleep(0.05)
        shop = Shop(couchdb_url)
        copy.extra_tables.update(shop.names)
        try:
            shop.seed()
            for _ in range(600):
                if len(copy.rows(shop.orders.name)) == 30:
                    break
                assert not task.done(), task.exception()
                await asyncio.sleep(0.05)
            assert_copy_matches_the_dialect(shop, copy)
        finally:
            shop.engine.dispose()
    finally:
        replicator.request_stop()
        await asyncio.wait_for(task, 30)
        await target.dispose()


@pytest.mark.parametrize("target_url", ["sqlite"], indirect=True)
async def test_a_text_id_table_from_before_the_catalog_is_copied_again_by_repair(
    couch: Couch,
    copy: Copy,
    couchdb_url: str,
    target_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Documents copied before their table was declared INTEGER keep a text id (the copy
    does not change under the user); the start warns, and dropping the table and running
    ``verify --repair`` copies it again with integer ids."""
    name = unique_type("late")
    copy.extra_tables.add(name)
    couch.bulk([{"_id": f"{name}:{i}", "type": name, "n": i} for i in range(1, 6)])
    await replicate_async(couchdb_url, target_url)
    assert set(copy.rows(name)) == {f"{name}:{i}" for i in range(1, 6)}

    table = sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("n", sa.Integer),
    )
    dialect = sa.create_engine(couchdb_url)
    try:
        table.create(dialect)
    finally:
        dialect.dispose()
    await replicate_async(couchdb_url, target_url)
    assert f"table {name!r} holds its ids as text" in caplog.text

    with copy.engine.begin() as conn:
        table.drop(conn)
    report = await verify_async(couchdb_url, target_url, repair=True, show=10)
    assert report.ok, report.lines()
    assert {i: r["n"] for i, r in integer_ids(copy, name).items()} == {i: i for i in range(1, 6)}
    assert (await verify_async(couchdb_url, target_url)).equal
