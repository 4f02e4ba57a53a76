"""The copy follows CouchDB on SQLite, PostgreSQL and MariaDB: backfill, updates,
deletes, type changes, documents without type, inferred and declared schemas, poison
documents and their dead letters, and an idempotent replay."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa
from test_replicator_support import (
    DROP,
    Copy,
    Couch,
    assert_copy_equals_couchdb,
    copy_fixture,
    couch_fixture,
    target_url_fixture,
    unique_type,
)

from couchdb_replicator import (
    InferredSchema,
    Replicator,
    ReplicatorError,
    RunOptions,
    replicate_async,
)
from couchdb_replicator.feed import Change
from couchdb_replicator.sink import Batch, Sink
from couchdb_replicator.state import source_key
from couchdb_replicator.targets import create_target_engine
from sqlalchemy_couchdb.dbapi import ConnectionSettings

# pytest finds the shared fixtures by these imports.
FIXTURES = (copy_fixture, couch_fixture, target_url_fixture)


def people(kind: str, n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "_id": f"{kind}-{i:04d}",
            "type": kind,
            "name": f"name {i}",
            "age": 20 + i % 50,
            "score": i / 4,
            "active": i % 2 == 0,
            "tags": ["a", str(i)],
            "address": {"city": "Z", "zip": i},
        }
        for i in range(start, start + n)
    ]


@pytest.mark.parametrize(
    "target_url", ["sqlite", "postgresql", "mariadb", "psycopg"], indirect=True
)
async def test_backfill_updates_deletes_and_type_changes(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    users, orders = unique_type("user"), unique_type("order")
    couch.bulk(people(users, 60))
    couch.bulk(
        [
            {"_id": f"o{i}", "type": orders, "user": f"{users}-{i:04d}", "total": i}
            for i in range(40)
        ]
    )
    couch.bulk([{"_id": "_design/app", "views": {}}, {"_id": "no-type", "x": 1}])

    summary = await replicate_async(couchdb_url, target_url, batch_size=25)
    assert summary.counts.upserted == 100 and summary.counts.skipped_untyped == 1
    assert_copy_equals_couchdb(copy, couch)
    assert copy.registered_tables() == {users, orders}

    for i in range(10):
        couch.update(f"{users}-{i:04d}", age=99, name=None, score=DROP)
    for i in range(10, 15):
        couch.delete(f"{users}-{i:04d}")
    for i in range(15, 20):  # a type change moves the row
        couch.update(f"{users}-{i:04d}", type=orders)
    for i in range(20, 22):  # losing the type removes the row
        couch.update(f"{users}-{i:04d}", type=DROP)
    couch.update("o0", total=1000)

    summary = await replicate_async(couchdb_url, target_url, batch_size=7)
    assert summary.counts.deleted == 5 and summary.counts.skipped_untyped == 2
    copies = assert_copy_equals_couchdb(copy, couch)
    assert f"{users}-0015" in copies[orders] and f"{users}-0015" not in copies[users]
    assert copies[users][f"{users}-0000"]["age"] == 99
    assert copies[users][f"{users}-0000"]["score"] is None  # a removed field is NULL
    checkpoint = copy.checkpoint()
    assert checkpoint.seq is not None and checkpoint.caught_up_at is not None
    assert checkpoint.skipped_untyped == 3


async def test_replay_from_the_start_over_a_complete_copy_changes_nothing(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    kind = unique_type("item")
    couch.bulk(people(kind, 50))
    for i in range(5):
        couch.update(f"{kind}-{i:04d}", age=1)
        couch.delete(f"{kind}-{i + 10:04d}")
    await replicate_async(couchdb_url, target_url)
    before = copy.snapshot()
    copy.reset_checkpoint()
    summary = await replicate_async(couchdb_url, target_url, batch_size=9)
    assert summary.counts.upserted == 45 and summary.counts.deleted == 5
    assert copy.snapshot() == before
    assert_copy_equals_couchdb(copy, couch)


async def test_inferred_columns_are_added_and_widened(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    kind = unique_type("w")
    couch.bulk([{"_id": f"a{i}", "type": kind, "n": i, "flag": True} for i in range(5)])
    await replicate_async(couchdb_url, target_url)
    couch.bulk(
        [
            {"_id": "b1", "type": kind, "n": 1.5, "flag": 7},  # int -> float, bool -> int
            {"_id": "b2", "type": kind, "new": "field", "obj": {"k": [1]}},
            {"_id": "b3", "type": kind, "only_null": None},
        ]
    )
    await replicate_async(couchdb_url, target_url)
    rows = assert_copy_equals_couchdb(copy, couch)[kind]
    assert rows["b1"]["n"] == 1.5 and rows["a3"]["n"] == 3
    assert same_kind(rows["a1"]["flag"], 1)
    columns = set(rows["b2"])
    assert {"new", "obj"} <= columns and "only_null" not in columns
    couch.bulk([{"_id": "c1", "type": kind, "n": "many", "obj": "flat", "flag": False}])
    await replicate_async(couchdb_url, target_url)
    rows = assert_copy_equals_couchdb(copy, couch)[kind]
    assert rows["c1"]["n"] == "many" and rows["a2"]["n"] in ("2", "2.0")


def same_kind(stored: Any, value: Any) -> bool:
    return bool(stored == value)


async def test_awkward_field_names_and_types(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    kind = unique_type("odd")
    long_name = "f" * 70  # longer than PostgreSQL's and MySQL's identifiers
    couch.bulk(
        [
            {
                "_id": "x1",
                "type": kind,
                "a b": 1,
                "naïve": "ü",
                "%p": "percent",
                ":c": "colon",
                "Mixed": "Case",
                long_name: 1,
                "id": "shadow",
            },
            {"_id": "x2", "type": "t" * 70, "v": 1},  # cannot be a table on PG/MySQL
            # Ids differ by case only (MySQL's default collation would merge them).
            {"_id": "Case", "type": kind, "v": "upper 😀"},
            {"_id": "case", "type": kind, "v": "lower"},
        ]
    )
    summary = await replicate_async(couchdb_url, target_url)
    dead = set(copy.dead_letters())
    if copy.backend == "sqlite":
        assert dead == set()
        copy.extra_tables.add("t" * 70)
    else:
        assert dead == {"x2"}
        assert "cannot be a table" in copy.dead_letters()["x2"].error
    rows = assert_copy_equals_couchdb(copy, couch, dead=dead)[kind]
    row = rows["x1"]
    assert row["a b"] == 1 and row["naïve"] == "ü"
    assert row.get("%p", "percent") == "percent"
    assert row["id"] == "x1"
    assert rows["Case"]["v"] == "upper 😀" and rows["case"]["v"] == "lower"
    # "id"; the long name on PostgreSQL and MySQL; "%p" on MySQL.
    dropped = 1 + (copy.backend != "sqlite") + (copy.backend == "mysql")
    assert summary.counts.fields_dropped == dropped


def declared(users: str, orders: str) -> sa.MetaData:
    md = sa.MetaData()
    sa.Table(
        users,
        md,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("rev", sa.String(64)),
        sa.Column("name", sa.String(10)),
        sa.Column("age", sa.Integer),
        sa.Column("active", sa.Boolean),
    )
    sa.Table(
        orders,
        md,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("rev", sa.String(64)),
        sa.Column("user", sa.String(64)),
        sa.Column("total", sa.Numeric(10, 2)),
    )
    return md


async def test_declared_tables_poison_documents_and_dead_letters(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    users, orders = unique_type("user"), unique_type("order")
    copy.extra_tables |= {users, orders}
    md = declared(users, orders)
    couch.bulk(
        [
            {"_id": f"u{i}", "type": users, "name": f"n{i}", "age": i, "active": True, "x": 1}
            for i in range(30)
        ]
        + [
            {"_id": "bad-int", "type": users, "name": "ok", "age": "old"},
            {"_id": "bad-long", "type": users, "name": "much too long for ten"},
            {"_id": "other", "type": unique_type("unmapped"), "v": 1},
            {"_id": "o1", "type": orders, "user": "u1", "total": 12.5},
        ]
    )
    summary = await replicate_async(couchdb_url, target_url, metadata=md, batch_size=10)
    counts = summary.counts
    assert counts.dead_lettered == 2 and counts.skipped_unmapped == 1
    assert counts.upserted == 31 and counts.fields_dropped == 30  # the undeclared "x"
    dead = copy.dead_letters()
    assert set(dead) == {"bad-int", "bad-long"}
    assert "age" in dead["bad-int"].error and "not an integer" in dead["bad-int"].error
    assert "too long" in dead["bad-long"].error
    assert dead["bad-int"].table_name == users and dead["bad-int"].rev.startswith("1-")
    wanted = {users: {"name", "age", "active"}, orders: {"user", "total"}}
    assert_copy_equals_couchdb(
        copy, couch, columns=wanted.get, dead={"bad-int", "bad-long"}, only=wanted
    )

    # A good revision is applied and clears the dead letter; a deletion clears one too.
    couch.update("bad-int", age=41)
    couch.delete("bad-long")
    couch.update("u3", age="poison now")  # a good row turned bad leaves the copy
    summary = await replicate_async(couchdb_url, target_url, metadata=md)
    assert set(copy.dead_letters()) == {"u3"}
    rows = assert_copy_equals_couchdb(copy, couch, columns=wanted.get, dead={"u3"}, only=wanted)
    assert rows[users]["bad-int"]["age"] == 41 and "u3" not in rows[users]


async def test_rows_the_database_refuses_become_dead_letters(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    """A constraint only the database checks: the batch is retried change by change."""
    kind = unique_type("strict")
    copy.extra_tables.add(kind)
    md = sa.MetaData()
    sa.Table(
        kind,
        md,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("rev", sa.String(64)),
        sa.Column("qty", sa.Integer, nullable=False),
        sa.CheckConstraint("qty >= 0", name=f"{kind}_qty"),
    )
    couch.bulk(
        [{"_id": f"q{i}", "type": kind, "qty": i} for i in range(20)]
        + [{"_id": "neg", "type": kind, "qty": -1}, {"_id": "none", "type": kind}]
    )
    summary = await replicate_async(couchdb_url, target_url, metadata=md, batch_size=100)
    assert summary.counts.upserted == 20 and summary.counts.dead_lettered == 2
    assert set(copy.dead_letters()) == {"neg", "none"}
    assert "refused" in copy.dead_letters()["neg"].error
    assert_copy_equals_couchdb(copy, couch, dead={"neg", "none"})
    couch.update("neg", qty=5)
    await replicate_async(couchdb_url, target_url, metadata=md)
    assert set(copy.dead_letters()) == {"none"}
    assert_copy_equals_couchdb(copy, couch, dead={"none"})


@pytest.mark.parametrize("target_url", ["sqlite"], indirect=True)
async def test_declared_table_missing_columns_is_a_clear_error(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    kind = unique_type("partial")
    copy.extra_tables.add(kind)
    with copy.engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE TABLE "{kind}" (id VARCHAR(64) PRIMARY KEY, rev TEXT)')
    md = sa.MetaData()
    sa.Table(
        kind,
        md,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("rev", sa.String(64)),
        sa.Column("qty", sa.Integer),
    )
    with pytest.raises(ReplicatorError, match="lacks column"):
        await replicate_async(couchdb_url, target_url, metadata=md)


@pytest.mark.parametrize("target_url", ["postgresql", "mariadb"], indirect=True)
async def test_a_deletion_the_target_refuses_is_a_dead_letter_not_a_crash(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    """A foreign key between declared tables refuses the parent's deletion."""
    parents, children = unique_type("parent"), unique_type("child")
    copy.extra_tables |= {parents, children}
    md = sa.MetaData()
    sa.Table(
        parents,
        md,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("rev", sa.String(64)),
    )
    sa.Table(
        children,
        md,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("rev", sa.String(64)),
        sa.Column("parent", sa.String(64), sa.ForeignKey(f"{parents}.id")),
    )
    couch.bulk([{"_id": "p1", "type": parents}, {"_id": "p2", "type": parents}])
    couch.bulk([{"_id": "c1", "type": children, "parent": "p1"}])
    await replicate_async(couchdb_url, target_url, metadata=md)
    couch.delete("p1")
    couch.delete("p2")
    summary = await replicate_async(couchdb_url, target_url, metadata=md)
    assert summary.counts.deleted == 1 and summary.counts.dead_lettered == 1
    assert set(copy.dead_letters()) == {"p1"}
    assert "refused" in copy.dead_letters()["p1"].error
    assert set(copy.rows(parents)) == {"p1"}  # kept: its child still refers to it
    with copy.engine.begin() as conn:  # drop the child first: the FK orders the cleanup
        sa.Table(children, sa.MetaData()).drop(conn)


class LiveReplicator:
    """A replicator following live changes in a task; stopped and awaited on exit."""

    def __init__(self, couchdb_url: str, target_url: str) -> None:
        self.target = create_target_engine(target_url)
        self.replicator = Replicator(
            ConnectionSettings.from_url(couchdb_url),
            self.target,
            InferredSchema(),
            RunOptions(batch_size=10, batch_delay=0.05, heartbeat=1.0),
        )
        self.summary: Any = None

    async def __aenter__(self) -> LiveReplicator:
        self.task = asyncio.create_task(self.replicator.run())
        return self

    async def until(self, check: Any, timeout: float = 30) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not check():
            assert not self.task.done(), self.task.exception()
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.05)

    async def __aexit__(self, *exc: object) -> None:
        self.replicator.request_stop()
        try:
            self.summary = await asyncio.wait_for(self.task, 30)
        finally:
            await self.target.dispose()


async def test_following_live_changes_in_the_first_run(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    """Type changes and deletions of documents the same run copied earlier (the first
    backfill into an empty copy skips deletes only for ids it has not written)."""
    a, b = unique_type("a"), unique_type("b")
    couch.bulk([{"_id": f"d{i}", "type": a, "n": i} for i in range(40)])
    async with LiveReplicator(couchdb_url, target_url) as live:
        await live.until(lambda: len(copy.rows(a)) == 40)
        for i in range(10):
            couch.update(f"d{i}", type=b)
        for i in range(10, 15):
            couch.delete(f"d{i}")
        couch.update("d15", type=DROP)
        couch.bulk([{"_id": "new", "type": b, "n": -1}])
        await live.until(lambda: len(copy.rows(b)) == 11 and len(copy.rows(a)) == 24)
    assert live.summary is not None and live.summary.stopped
    assert_copy_equals_couchdb(copy, couch)


async def test_a_table_dropped_under_the_daemon_is_created_again(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    """Not every document a dead letter: the table comes back and the batch is retried."""
    kind = unique_type("gone")
    couch.bulk([{"_id": f"d{i}", "type": kind, "n": i} for i in range(10)])
    async with LiveReplicator(couchdb_url, target_url) as live:
        await live.until(lambda: len(copy.rows(kind)) == 10)
        with copy.engine.begin() as conn:
            sa.Table(kind, sa.MetaData()).drop(conn)
        couch.bulk([{"_id": f"e{i}", "type": kind, "n": i} for i in range(5)])
        await live.until(lambda: len(copy.rows(kind)) == 5)
    assert copy.dead_letters() == {}
    assert set(copy.rows(kind)) == {f"e{i}" for i in range(5)}  # d* went with the table


async def test_new_tables_and_columns_in_the_middle_of_a_backfill(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    """The next batch is planned while this one is written, but never changes a table:
    a batch that needs a new table, a new column or a wider one is planned again."""
    first, second = unique_type("mid"), unique_type("late")
    docs: list[dict[str, Any]] = []
    for i in range(120):
        doc: dict[str, Any] = {"_id": f"m{i:03d}", "type": first, "n": i}
        if i >= 30:
            doc["extra"] = f"from {i}"  # a new column from the fourth batch on
        if i >= 60:
            doc["n"] = i + 0.5  # int -> float
        if i >= 90:
            doc["type"] = second  # a new table
        docs.append(doc)
    couch.bulk(docs)
    summary = await replicate_async(couchdb_url, target_url, batch_size=10)
    assert summary.counts.upserted == 120 and summary.counts.dead_lettered == 0
    rows = assert_copy_equals_couchdb(copy, couch)
    assert len(rows[first]) == 90 and len(rows[second]) == 30
    assert rows[first]["m059"]["n"] == 59 and rows[first]["m060"]["n"] == 60.5


async def test_a_row_another_writer_put_in_an_empty_copy_is_overwritten(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    """A first backfill inserts rows the copy cannot hold yet rather than upserting them;
    when one is there after all, the batch is written again with upserts, losing nothing."""
    kind = unique_type("race")
    couch.bulk([{"_id": f"r{i}", "type": kind, "n": i} for i in range(10)])
    target = create_target_engine(target_url, replicating=True)
    try:
        source = ConnectionSettings.from_url(couchdb_url)
        sink = Sink(target, InferredSchema(), source_key(source))
        await sink.start()
        changes = [
            Change(d["_id"], d["_rev"], None, False, {k: v for k, v in d.items()})
            for d in (couch.get(f"r{i}") for i in range(10))
        ]
        await sink.apply(Batch(changes[:5], seq=None))
        with copy.engine.begin() as conn:  # another writer, between two batches
            table = sa.Table(kind, sa.MetaData(), autoload_with=conn)
            conn.execute(sa.insert(table).values(id="r7", rev="0-other", n=-1))
        result = await sink.apply(Batch(changes[5:], seq=None))
    finally:
        await target.dispose()
    assert result.change_by_change and result.counts.upserted == 5
    assert copy.dead_letters() == {}
    stored = copy.rows(kind)
    assert set(stored) == {f"r{i}" for i in range(10)}
    assert stored["r7"]["n"] == 7 and stored["r7"]["rev"] == couch.get("r7")["_rev"]


async def test_a_batch_planned_ahead_is_planned_again_after_a_schema_change(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    """Planning ahead leaves tables alone; rows planned before a column was added are
    built again when written, not sent in the old shape."""
    kind = unique_type("ahead")
    couch.bulk([{"_id": f"p{i}", "type": kind, "n": i} for i in range(4)])
    couch.bulk([{"_id": "wide", "type": kind, "n": 9, "added": "x"}])
    docs = {d: couch.get(d) for d in ("p0", "p1", "p2", "p3", "wide")}

    def batch(*ids: str) -> Batch:
        return Batch([Change(i, docs[i]["_rev"], None, False, dict(docs[i])) for i in ids], None)

    target = create_target_engine(target_url, replicating=True)
    try:
        sink = Sink(target, InferredSchema(), source_key(ConnectionSettings.from_url(couchdb_url)))
        await sink.start()
        first = batch("p0", "p1")
        assert await sink.plan(first, change_schema=False) is None  # it needs a new table
        assert kind not in copy.table_names()
        await sink.apply(first, await sink.plan(first))
        later = batch("p2", "p3")
        ahead = await sink.plan(later, change_schema=False)
        assert ahead is not None
        await sink.apply(batch("wide"))  # adds the column "added"
        result = await sink.apply(later, ahead)
    finally:
        await target.dispose()
    assert result.counts.upserted == 2 and not result.change_by_change
    assert copy.dead_letters() == {}
    assert_copy_equals_couchdb(copy, couch)
