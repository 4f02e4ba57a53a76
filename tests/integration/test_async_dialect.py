"""The async dialect (``couchdb+async://``) through AsyncConnection and AsyncSession.

Everything runs against the real test server (or ``COUCHDB_URL``). Where a test needs to
see which requests the driver sent, it reads them from an httpx event hook on the driver's
own ``httpx.AsyncClient``: the server's answers are never faked.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import socket
import sys
import time
import tracemalloc
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
)

ROWS: list[dict[str, Any]] = [
    {"id": "p1", "name": "Ada", "age": 36, "city": "London"},
    {"id": "p2", "name": "Grace", "age": 45, "city": "New York"},
    {"id": "p3", "name": "Linus", "age": 28, "city": None},
    {"id": "p4", "name": "Barbara", "age": None, "city": "Boston"},
    {"id": "p5", "name": "Alan", "age": 41, "city": "London"},
]


class Base(DeclarativeBase):
    pass


class Person(Base):
    __tablename__ = "person"
    id: Mapped[str] = mapped_column(primary_key=True, server_default=sa.FetchedValue())
    rev: Mapped[str | None] = mapped_column(
        server_default=sa.FetchedValue(), server_onupdate=sa.FetchedValue()
    )
    name: Mapped[str] = mapped_column(sa.String(50))
    age: Mapped[int | None] = mapped_column(index=True)


def async_url(couchdb_url: str) -> str:
    return couchdb_url.replace("couchdb://", "couchdb+async://", 1)


@pytest.fixture
async def engine(couchdb_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(async_url(couchdb_url))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
async def filled(engine: AsyncEngine) -> AsyncEngine:
    async with engine.begin() as conn:
        await conn.execute(people.insert(), ROWS)
    return engine


class RequestLog:
    """Every request the driver sends on the connections it is attached to."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.started = asyncio.Event()
        self.on_request: Callable[[str, str], None] | None = None

    async def __call__(self, request: httpx.Request) -> None:
        entry = (request.method, request.url.path)
        self.requests.append(entry)
        if self.on_request is not None:
            self.on_request(*entry)

    def count(self, method: str, suffix: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p.endswith(suffix))

    def attach_to_pool(self, engine: AsyncEngine) -> RequestLog:
        """Hook every connection the engine's pool opens from now on."""

        @event.listens_for(engine.sync_engine, "connect")
        def on_connect(dbapi_connection: Any, record: Any) -> None:
            driver_http(dbapi_connection).event_hooks = {"request": [self], "response": []}

        return self


def driver_http(dbapi_connection: Any) -> httpx.AsyncClient:
    """The ``httpx.AsyncClient`` under an adapted (pooled) DB-API connection."""
    client: httpx.AsyncClient = dbapi_connection.driver_connection.client.http
    return client


async def attach(conn: AsyncConnection, log: RequestLog) -> httpx.AsyncClient:
    http = driver_http(await conn.get_raw_connection())
    http.event_hooks = {"request": [log], "response": []}
    return http


# -- URLs and the driver ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "scheme", ["couchdb+async", "couchdb+httpx_async", "couchdb", "couchdb+httpx"]
)
async def test_both_url_forms_use_the_async_driver(couchdb_url: str, scheme: str) -> None:
    engine = create_async_engine(couchdb_url.replace("couchdb", scheme, 1))
    try:
        assert engine.dialect.is_async and engine.dialect.driver == "httpx_async"
        assert isinstance(engine.pool, sa.pool.AsyncAdaptedQueuePool)
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            result = await conn.execute(people.insert().values(name="Eve", age=30))
            new_id = result.inserted_primary_key[0]
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert isinstance(driver_http(raw), httpx.AsyncClient)
            row = (await conn.execute(sa.select(people).where(people.c.id == new_id))).one()
        assert (row.name, row.age) == ("Eve", 30) and row.rev.startswith("1-")
    finally:
        await engine.dispose()


# -- Core and text() -------------------------------------------------------------------------


async def test_core_select_where_order_limit(filled: AsyncEngine) -> None:
    async with filled.connect() as conn:
        q = sa.select(people.c.name).where(people.c.age > 30).order_by(people.c.age.desc())
        assert (await conn.execute(q)).scalars().all() == ["Grace", "Alan", "Ada"]
        # NULL is excluded by != (three-valued logic), as in SQL.
        q = sa.select(people.c.name).where(people.c.city != "London").order_by(people.c.name)
        assert (await conn.execute(q)).scalars().all() == ["Barbara", "Grace"]
        q = sa.select(people.c.name).order_by(people.c.age).limit(2).offset(1)
        assert (await conn.execute(q)).scalars().all() == ["Linus", "Ada"]
        count = await conn.scalar(sa.select(sa.func.count()).select_from(people))
        assert count == 5


async def test_core_insert_returning_update_delete(filled: AsyncEngine) -> None:
    async with filled.begin() as conn:
        result = await conn.execute(people.insert().values(name="Eve", age=30))
        eve_id = result.inserted_primary_key[0]
        assert isinstance(eve_id, str) and eve_id
        row = (
            await conn.execute(
                people.insert().values(id="given", name="Dan").returning(people.c.id, people.c.rev)
            )
        ).one()
        assert row.id == "given" and row.rev.startswith("1-")
        result = await conn.execute(
            people.update().where(people.c.city == "London").values(age=people.c.age + 1)
        )
        assert result.rowcount == 2
        result = await conn.execute(people.delete().where(people.c.age < 35))
        assert result.rowcount == 2  # Linus (28) and Eve (30)
    async with filled.connect() as conn:
        rows = dict((await conn.execute(sa.select(people.c.name, people.c.age))).all())
    assert rows == {"Ada": 37, "Grace": 45, "Barbara": None, "Alan": 42, "Dan": None}


async def test_text_statements_with_parameters(filled: AsyncEngine) -> None:
    async with filled.begin() as conn:
        await conn.execute(
            sa.text("INSERT INTO people (id, name, age) VALUES (:id, :name, :age)"),
            {"id": "t1", "name": "Tim", "age": 50},
        )
        result = await conn.execute(
            sa.text("SELECT id, name FROM people WHERE age >= :min ORDER BY age"), {"min": 41}
        )
        assert result.keys() == ["id", "name"]
        assert result.all() == [("p5", "Alan"), ("p2", "Grace"), ("t1", "Tim")]
        result = await conn.execute(
            sa.text("UPDATE people SET city = :c WHERE id = :id"), {"c": "Rome", "id": "t1"}
        )
        assert result.rowcount == 1
    async with filled.connect() as conn:
        city = await conn.scalar(sa.text("SELECT city FROM people WHERE id = 't1'"))
    assert city == "Rome"


async def test_executemany_writes_through_bulk_docs(engine: AsyncEngine) -> None:
    rows = [{"id": f"m{i:04}", "name": f"n{i}", "age": i % 90} for i in range(1200)]
    log = RequestLog()
    async with engine.begin() as conn:
        await attach(conn, log)
        result = await conn.execute(people.insert(), rows)
    assert result.rowcount == 1200
    # 1200 documents in _bulk_docs chunks (500 each), never one request per row.
    assert log.count("POST", "/_bulk_docs") == 3
    assert log.count("PUT", "") == 0
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(people)) == 1200
        got = await conn.scalar(sa.select(people.c.name).where(people.c.id == "m0777"))
    assert got == "n777"


async def test_concurrent_increments_lose_no_update(couchdb_url: str) -> None:
    engine = create_async_engine(async_url(couchdb_url), pool_size=6, max_overflow=0)
    log = RequestLog().attach_to_pool(engine)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(counters.insert().values(id="c", n=0))

        async def work() -> None:
            for _ in range(10):
                async with engine.begin() as conn:
                    await conn.execute(
                        counters.update().where(counters.c.id == "c").values(n=counters.c.n + 1)
                    )

        await asyncio.gather(*(work() for _ in range(6)))
        async with engine.connect() as conn:
            assert await conn.scalar(sa.select(counters.c.n)) == 60
        # The tasks did collide: a 409 makes the driver re-read the document by id.
        assert log.count("POST", "/_all_docs") > 0
    finally:
        await engine.dispose()


# -- ORM -------------------------------------------------------------------------------------


async def test_orm_crud_through_async_session(couchdb_url: str) -> None:
    engine = create_async_engine(async_url(couchdb_url))
    try:
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        sessions = functools.partial(AsyncSession, engine, expire_on_commit=False)

        async with sessions() as session:
            ada = Person(name="Ada", age=36)
            session.add_all([ada, Person(name="Alan", age=41), Person(name="Grace", age=45)])
            await session.commit()
            assert ada.id  # generated by CouchDB, returned by INSERT … RETURNING
            await session.refresh(ada, ["rev"])
            assert ada.rev and ada.rev.startswith("1-")
            ada_id = ada.id

        async with sessions() as session:
            got = await session.get(Person, ada_id)
            assert got is not None and got.name == "Ada"
            got.age = 37
            await session.commit()
            # server_onupdate: the new rev is expired, re-read it (no lazy IO under asyncio).
            await session.refresh(got, ["rev"])
            assert got.rev and got.rev.startswith("2-")

        async with sessions() as session:
            older = await session.scalars(
                sa.select(Person).where(Person.age > 36).order_by(Person.age)
            )
            assert [p.name for p in older] == ["Ada", "Alan", "Grace"]
            grace = (await session.scalars(sa.select(Person).where(Person.name == "Grace"))).one()
            await session.delete(grace)
            await session.commit()

        async with sessions() as session:
            names = (await session.scalars(sa.select(Person.name).order_by(Person.name))).all()
            assert names == ["Ada", "Alan"]
            streamed = await session.stream_scalars(sa.select(Person).order_by(Person.name))
            assert [p.name async for p in streamed] == ["Ada", "Alan"]
            assert (await session.get(Person, ada_id)).age == 37  # type: ignore[union-attr]
    finally:
        await engine.dispose()


# -- DDL and reflection ----------------------------------------------------------------------


async def test_ddl_and_reflection_through_run_sync(filled: AsyncEngine) -> None:
    async with filled.connect() as conn:
        names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
        assert {"people", "counters"} <= set(names)
        assert await conn.run_sync(lambda c: sa.inspect(c).has_table("people"))
        assert not await conn.run_sync(lambda c: sa.inspect(c).has_table("nope"))
        columns = await conn.run_sync(lambda c: sa.inspect(c).get_columns("people"))
        by_name = {c["name"]: c for c in columns}
        assert {"id", "name", "age", "city"} <= set(by_name)
        assert isinstance(by_name["age"]["type"], sa.Integer)
        indexes = await conn.run_sync(lambda c: sa.inspect(c).get_indexes("people"))
        assert [i["column_names"] for i in indexes] == [["age"]]

        reflected = sa.MetaData()
        await conn.run_sync(lambda c: reflected.reflect(c, only=["people"]))
        assert set(reflected.tables["people"].c.keys()) >= {"id", "name", "age", "city"}

    async with filled.begin() as conn:
        await conn.run_sync(lambda c: people.drop(c))
    async with filled.connect() as conn:
        assert not await conn.run_sync(lambda c: sa.inspect(c).has_table("people"))
        assert await conn.run_sync(lambda c: sa.inspect(c).has_table("counters"))


# -- streaming -------------------------------------------------------------------------------


async def test_stream_reads_page_by_page_as_the_caller_iterates(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(people.insert(), [{"name": f"s{i}", "age": i} for i in range(2500)])
    log = RequestLog()
    async with engine.connect() as conn:
        await attach(conn, log)
        result = await conn.stream(sa.select(people.c.age))
        first = await result.fetchone()
        assert first is not None
        pages_after_first_row = log.count("POST", "/_find")
        seen = 1 + sum([1 async for _ in result])
    assert seen == 2500
    assert pages_after_first_row == 1  # one page of 1000, not the whole result
    assert log.count("POST", "/_find") == 3

    async with engine.connect() as conn:
        scalars = await conn.stream_scalars(
            sa.select(people.c.age).where(people.c.age < 1200).order_by(people.c.age)
        )
        assert [a async for a in scalars] == list(range(1200))


STREAM_ROWS = 100_000
FIRST_ROWS = 10_000


def _row_bytes(row: Any) -> int:
    """What holding this row takes at the least: its tuple and its values."""
    values = tuple(row)
    return sys.getsizeof(values) + sum(sys.getsizeof(v) for v in values)


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_streaming_100k_rows_keeps_memory_flat(
    couchdb_url: str, couchdb_http: httpx.Client, couchdb_database: str
) -> None:
    # Seeded with raw _bulk_docs (the point is reading). No CREATE TABLE, so no Mango index:
    # on PouchDB Server a skip-paged _find over an index gets slower with every page.
    for start in range(0, STREAM_ROWS, 5000):
        docs = [
            {"_id": f"r{i:07}", "type": "people", "name": f"name {i:07}", "age": i}
            for i in range(start, min(STREAM_ROWS, start + 5000))
        ]
        couchdb_http.post(f"/{couchdb_database}/_bulk_docs", json={"docs": docs}).raise_for_status()
    engine = create_async_engine(async_url(couchdb_url) + "?timeout=300")
    count = total = held_bytes = 0
    first_peak = 0
    gc.collect()
    tracemalloc.start()
    try:
        async with engine.connect() as conn:
            result = await conn.stream(sa.select(people.c.id, people.c.name, people.c.age))
            base, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            async for row in result:
                assert row.name == f"name {row.age:07}" and row.id == f"r{row.age:07}"
                count += 1
                total += row.age
                held_bytes += _row_bytes(row)
                if count == FIRST_ROWS:
                    first_peak = tracemalloc.get_traced_memory()[1] - base
            peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
        await engine.dispose()
    assert count == STREAM_ROWS and total == sum(range(STREAM_ROWS))
    print(
        f"\nstreaming {STREAM_ROWS:,} rows: peak {peak / 2**20:.2f} MiB "
        f"(after {FIRST_ROWS:,} rows {first_peak / 2**20:.2f} MiB); "
        f"the rows themselves take {held_bytes / 2**20:.1f} MiB"
    )
    # Streaming holds a small fraction of what keeping every row would take (a lower bound
    # of what buffering takes). The peak is not perfectly flat: each page's httpx.Response
    # sits in a reference cycle (inside httpx) until the cyclic GC runs, so it saw-tooths
    # within a few pages' worth of bytes; buffering would grow with every row.
    assert peak < held_bytes / 4


# -- concurrency and the pool ----------------------------------------------------------------


async def test_gather_50_queries_over_the_pool(couchdb_url: str) -> None:
    engine = create_async_engine(async_url(couchdb_url), pool_size=5, max_overflow=5)
    out = most_out = 0

    @event.listens_for(engine.sync_engine, "checkout")
    def on_checkout(*args: Any) -> None:
        nonlocal out, most_out
        out += 1
        most_out = max(most_out, out)

    @event.listens_for(engine.sync_engine, "checkin")
    def on_checkin(*args: Any) -> None:
        nonlocal out
        out -= 1

    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(
                people.insert(), [{"id": f"g{i:02}", "name": f"n{i}", "age": i} for i in range(50)]
            )

        async def query(i: int) -> list[tuple[Any, ...]]:
            async with engine.connect() as conn:
                result = await conn.execute(
                    sa.select(people.c.id, people.c.name).where(people.c.age == sa.bindparam("a")),
                    {"a": i},
                )
                return [tuple(r) for r in result]

        results = await asyncio.gather(*(query(i) for i in range(50)))
        assert results == [[(f"g{i:02}", f"n{i}")] for i in range(50)]
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        # The queries ran side by side, on at most pool_size + max_overflow connections.
        assert 1 < most_out <= 10
        assert engine.pool.checkedin() <= 5  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_pool_size_and_overflow_come_from_engine_arguments(couchdb_url: str) -> None:
    engine = create_async_engine(
        async_url(couchdb_url), pool_size=2, max_overflow=1, pool_timeout=0.5, pool_pre_ping=True
    )
    pool: Any = engine.pool
    try:
        assert pool.size() == 2 and pool.timeout() == 0.5
        held = [await engine.connect() for _ in range(3)]  # two pooled, one overflow
        for conn in held:
            assert await conn.scalar(sa.text("SELECT count(*) FROM people")) == 0
        assert pool.checkedout() == 3 and pool.overflow() == 1
        with pytest.raises(exc.TimeoutError):
            await engine.connect()
        for conn in held:
            await conn.close()
        assert pool.checkedout() == 0 and pool.checkedin() == 2  # the overflow one closed
    finally:
        await engine.dispose()


async def _single_connection_engine(couchdb_url: str) -> AsyncEngine:
    engine = create_async_engine(
        async_url(couchdb_url), pool_size=1, max_overflow=0, pool_timeout=5
    )
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.execute(people.insert(), [{"name": f"c{i}", "age": i} for i in range(3000)])
    return engine


async def _pool_is_usable(engine: AsyncEngine) -> None:
    pool: Any = engine.pool
    assert pool.checkedout() == 0 and pool.checkedin() == 1
    # With one connection and no overflow, a connection that was not returned would make
    # this wait out pool_timeout and raise.
    async with engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(people)) == 3000
        assert (await conn.execute(sa.select(people.c.name).where(people.c.age == 7))).all() == [
            ("c7",)
        ]


async def test_cancelled_query_returns_its_connection_usable(couchdb_url: str) -> None:
    engine = await _single_connection_engine(couchdb_url)
    try:
        async with engine.connect() as conn:
            http = await attach(conn, log := RequestLog())
        in_flight = asyncio.Event()
        log.on_request = lambda method, path: in_flight.set() if path.endswith("_find") else None

        async def query() -> None:
            async with engine.connect() as conn:
                await conn.execute(sa.select(people))
                pytest.fail("the query should have been cancelled")

        task = asyncio.create_task(query())
        await in_flight.wait()  # the _find request is on the wire: cancel mid-query
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The half-read HTTP connection went with the invalidated DB-API connection.
        assert http.is_closed
        await _pool_is_usable(engine)
    finally:
        await engine.dispose()


async def test_wait_for_timeout_mid_stream_returns_the_connection(couchdb_url: str) -> None:
    engine = await _single_connection_engine(couchdb_url)
    try:
        async with engine.connect() as conn:
            await attach(conn, log := RequestLog())
        rows_read = 0
        streaming = asyncio.Event()

        async def slow_consumer() -> None:
            nonlocal rows_read
            async with engine.connect() as conn:
                async for _ in await conn.stream(sa.select(people)):
                    rows_read += 1
                    streaming.set()
                    if rows_read % 10 == 0:
                        await asyncio.sleep(0.01)  # 3000 rows take 3 s at least

        task = asyncio.create_task(slow_consumer())
        await streaming.wait()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(task, timeout=0.3)
        assert task.cancelled()
        assert 0 < rows_read < 3000  # stopped in the middle of the stream
        assert log.count("POST", "/_find") < 3  # and the rest was never fetched
        await _pool_is_usable(engine)
    finally:
        await engine.dispose()


# -- errors ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_server_is_operational_error_quickly() -> None:
    port = _free_port()
    engine = create_async_engine(f"couchdb+async://u:sekrit@127.0.0.1:{port}/db")
    started = time.monotonic()
    try:
        with pytest.raises(exc.OperationalError) as err:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT id FROM t"))
    finally:
        await engine.dispose()
    assert time.monotonic() - started < 10
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message
    assert "sekrit" not in message and "sekrit" not in repr(err.value)


async def test_wrong_password_is_operational_error_naming_the_user(couchdb_url: str) -> None:
    parts = urllib.parse.urlsplit(async_url(couchdb_url))
    # A throwaway user: CouchDB locks out an account after repeated failed logins.
    bad = parts._replace(netloc=f"nobody_async:wrong-pw@{parts.hostname}:{parts.port}")
    engine = create_async_engine(urllib.parse.urlunsplit(bad))
    try:
        with pytest.raises(exc.OperationalError) as err:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT id FROM t"))
    finally:
        await engine.dispose()
    assert "nobody_async" in str(err.value)
    assert "wrong-pw" not in str(err.value)


async def test_duplicate_id_is_integrity_error(filled: AsyncEngine) -> None:
    async with filled.connect() as conn:
        with pytest.raises(exc.IntegrityError) as err:
            await conn.execute(people.insert().values(id="p1", name="again"))
        assert "p1" in str(err.value)
        with pytest.raises(exc.IntegrityError) as err:
            await conn.execute(
                people.insert(), [{"id": "new", "name": "a"}, {"id": "p2", "name": "b"}]
            )
        assert "p2" in str(err.value)
    # The connection is still usable after the errors, and the first row is unchanged.
    async with filled.connect() as conn:
        assert await conn.scalar(sa.select(people.c.name).where(people.c.id == "p1")) == "Ada"


async def test_join_is_not_supported_error(filled: AsyncEngine) -> None:
    async with filled.connect() as conn:
        with pytest.raises(exc.NotSupportedError) as err:
            await conn.execute(
                sa.text("SELECT p.name FROM people p JOIN counters c ON c.id = p.id")
            )
        assert "JOIN" in str(err.value)
        # Refused statements leave the connection usable.
        assert await conn.scalar(sa.select(sa.func.count()).select_from(people)) == 5
