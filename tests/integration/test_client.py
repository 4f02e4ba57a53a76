"""The CouchDB HTTP client against a real CouchDB-compatible server, sync and async.

Each test runs twice, through ``CouchDBClient`` and ``AsyncCouchDBClient`` (the ``api``
fixture), on a fresh database. Written for CouchDB 3.x first (``COUCHDB_URL``); where
PouchDB Server differs (bulk result order, sort errors, longpoll timeout) the assertions
hold on both. Seeding and checks that must not trust the client go through the plain
``couchdb_http`` client from conftest.
"""

from __future__ import annotations

import inspect
import secrets
import socket
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from sqlalchemy_couchdb.dbapi import exceptions as exc
from sqlalchemy_couchdb.dbapi.async_client import AsyncCouchDBClient
from sqlalchemy_couchdb.dbapi.client import CouchDBClient


class Api:
    """The sync or the async client behind one awaitable surface."""

    def __init__(self, kind: str, url: str, **kwargs: Any) -> None:
        self.kind = kind
        cls = CouchDBClient if kind == "sync" else AsyncCouchDBClient
        self.client: Any = cls.from_url(url, **kwargs)

    async def __call__(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, name)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def collect(self, name: str, /, *args: Any, **kwargs: Any) -> list[Any]:
        iterator = getattr(self.client, name)(*args, **kwargs)
        if self.kind == "async":
            return [item async for item in iterator]
        return list(iterator)


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def connect(kind: str) -> AsyncIterator[Callable[..., Api]]:
    """Open clients of this test's kind for any URL; all closed afterwards."""
    made: list[Api] = []

    def make(url: str, **kwargs: Any) -> Api:
        made.append(Api(kind, url, **kwargs))
        return made[-1]

    yield make
    for one in made:
        await one("close")


@pytest.fixture
def api(connect: Callable[..., Api], couchdb_url: str) -> Api:
    """A client on this test's fresh database."""
    return connect(couchdb_url)


def with_credentials(url: str, user: str, password: str) -> str:
    parts = urllib.parse.urlsplit(url)
    userinfo = f"{urllib.parse.quote(user, safe='')}:{urllib.parse.quote(password, safe='')}"
    return parts._replace(netloc=f"{userinfo}@{parts.hostname}:{parts.port}").geturl()


def seed(http: httpx.Client, database: str, docs: list[dict[str, Any]]) -> None:
    response = http.post(f"/{database}/_bulk_docs", json={"docs": docs})
    response.raise_for_status()
    assert all("error" not in row for row in response.json())


# -- server and databases ----------------------------------------------------------------------


async def test_server_info(api: Api, couchdb_server_info: dict[str, Any]) -> None:
    info = await api("server_info")
    assert info == couchdb_server_info


async def test_database_lifecycle(
    connect: Callable[..., Api],
    couchdb_url: str,
    couchdb_http: httpx.Client,
    couchdb_server_info: dict[str, Any],
) -> None:
    name = f"test_{secrets.token_hex(6)}"
    client = connect(couchdb_url.replace(urllib.parse.urlsplit(couchdb_url).path, f"/{name}"))
    try:
        assert await client("database_exists") is False
        assert await client("create_database") is True
        assert couchdb_http.get(f"/{name}").status_code == 200
        assert await client("database_exists") is True
        assert await client("create_database", exist_ok=True) is False
        with pytest.raises(exc.PreconditionFailed) as info:
            await client("create_database")
        assert isinstance(info.value, exc.IntegrityError)
        assert f"'{name}'" in str(info.value)
        db_info = await client("database_info")
        assert db_info["db_name"] == name
        assert db_info["doc_count"] == 0
        await client("delete_database")
        assert await client("database_exists") is False
        assert couchdb_http.get(f"/{name}").status_code == 404
        await client("delete_database", missing_ok=True)
        if "couchdb" in couchdb_server_info:
            # PouchDB Server answers 200 to deleting a missing database; CouchDB 404.
            with pytest.raises(exc.NotFound):
                await client("delete_database")
        with pytest.raises(exc.NotFound, match=f"'{name}'"):
            await client("database_info")
    finally:
        couchdb_http.delete(f"/{name}")


async def test_other_database_by_name(api: Api, couchdb_http: httpx.Client) -> None:
    other = f"test_{secrets.token_hex(6)}"
    try:
        assert await api("create_database", other) is True
        assert (await api("database_info", other))["db_name"] == other
        assert await api("database_exists", other) is True
        await api("delete_database", other)
        assert await api("database_exists", other) is False
    finally:
        couchdb_http.delete(f"/{other}")


# -- documents ---------------------------------------------------------------------------------


async def test_document_create_get_put_delete(api: Api, couchdb_database: str) -> None:
    created = await api("create", {"_id": "order/1", "type": "order", "total": 3})
    assert created["ok"] is True
    assert created["id"] == "order/1"  # an id with "/" survives the trip
    doc = await api("get", "order/1")
    assert (doc["total"], doc["_rev"]) == (3, created["rev"])

    updated = await api("put", {**doc, "total": 4})
    assert updated["rev"].startswith("2-")
    assert (await api("get", "order/1"))["total"] == 4
    assert (await api("get", "order/1", rev=created["rev"]))["total"] == 3

    deleted = await api("delete", "order/1", updated["rev"])
    assert deleted["ok"] is True
    assert await api("get_or_none", "order/1") is None
    with pytest.raises(exc.NotFound) as info:
        await api("get", "order/1")
    assert isinstance(info.value, exc.ProgrammingError)
    assert "'order/1'" in str(info.value)
    assert f"'{couchdb_database}'" in str(info.value)


async def test_create_without_id_gets_a_server_id(api: Api) -> None:
    created = await api("create", {"type": "order", "total": 5})
    assert created["id"]
    assert (await api("get", created["id"]))["total"] == 5


async def test_conflict_is_typed(api: Api, couchdb_database: str) -> None:
    first = await api("create", {"_id": "order-1", "total": 1})
    await api("put", {"_id": "order-1", "_rev": first["rev"], "total": 2})
    with pytest.raises(exc.Conflict) as stale:
        await api("put", {"_id": "order-1", "_rev": first["rev"], "total": 3})
    assert isinstance(stale.value, exc.IntegrityError)
    assert stale.value.status == 409
    assert "'order-1'" in str(stale.value)
    assert f"'{couchdb_database}'" in str(stale.value)
    with pytest.raises(exc.Conflict):
        await api("create", {"_id": "order-1", "total": 9})
    assert (await api("get", "order-1"))["total"] == 2


# -- _bulk_docs --------------------------------------------------------------------------------


async def test_bulk_docs_one_conflict_among_good_ones(
    api: Api, couchdb_database: str, couchdb_http: httpx.Client
) -> None:
    seed(couchdb_http, couchdb_database, [{"_id": "taken", "n": -1}])
    docs: list[dict[str, Any]] = [{"_id": f"item-{i:04d}", "n": i} for i in range(1_100)]
    docs.insert(700, {"_id": "taken", "n": 700})  # exists already, sent without its rev
    docs.insert(5, {"_id": "_design/extra", "views": {}})  # PouchDB moves these first
    docs.append({"n": 9_999})  # no id: the client assigns one

    results = await api("bulk_docs", docs, chunk_size=500)

    assert len(results) == len(docs)
    assert [r.id for r in results[:-1]] == [d["_id"] for d in docs[:-1]]  # input order
    failed = [r for r in results if not r.ok]
    assert [(r.id, r.error) for r in failed] == [("taken", "conflict")]
    assert all(r.rev and r.rev.startswith("1-") for r in results if r.ok)

    # The good ones are stored (the bulk is not atomic), checked without the client.
    stored = couchdb_http.post(
        f"/{couchdb_database}/_all_docs", json={"keys": [r.id for r in results]}
    )
    rows = {row["key"]: row for row in stored.json()["rows"]}
    assert all("error" not in rows[r.id] for r in results)
    assert rows["taken"]["value"]["rev"].startswith("1-")  # untouched
    assert couchdb_http.get(f"/{couchdb_database}/taken").json()["n"] == -1
    assert couchdb_http.get(f"/{couchdb_database}/{results[-1].id}").json()["n"] == 9_999


# -- _all_docs ---------------------------------------------------------------------------------


@pytest.fixture
def letters(couchdb_http: httpx.Client, couchdb_database: str) -> list[str]:
    ids = [f"doc-{c}" for c in "abcdefgh"]
    seed(couchdb_http, couchdb_database, [{"_id": i, "letter": i[-1]} for i in ids])
    return ids


async def test_all_docs_keys(api: Api, letters: list[str]) -> None:
    answer = await api("all_docs", keys=["doc-c", "doc-nope", "doc-a"], include_docs=True)
    rows = answer["rows"]
    assert [row["key"] for row in rows] == ["doc-c", "doc-nope", "doc-a"]  # keys order
    assert rows[0]["doc"]["letter"] == "c"
    assert rows[1]["error"] == "not_found"
    assert rows[2]["doc"]["letter"] == "a"


async def test_all_docs_ranges(api: Api, letters: list[str]) -> None:
    answer = await api("all_docs", startkey="doc-b", endkey="doc-e")
    assert [row["id"] for row in answer["rows"]] == ["doc-b", "doc-c", "doc-d", "doc-e"]
    assert "doc" not in answer["rows"][0]
    answer = await api("all_docs", startkey="doc-b", endkey="doc-e", inclusive_end=False)
    assert [row["id"] for row in answer["rows"]] == ["doc-b", "doc-c", "doc-d"]
    answer = await api("all_docs", startkey="doc-g", descending=True, limit=2, skip=1)
    assert [row["id"] for row in answer["rows"]] == ["doc-f", "doc-e"]
    answer = await api("all_docs", include_docs=True)
    assert [row["doc"]["letter"] for row in answer["rows"]] == list("abcdefgh")
    assert answer["total_rows"] == 8


# -- Mango -------------------------------------------------------------------------------------


@pytest.fixture
def items(couchdb_http: httpx.Client, couchdb_database: str) -> list[dict[str, Any]]:
    docs = [{"_id": f"item-{i:02d}", "type": "item", "n": (i * 7) % 20} for i in range(20)]
    seed(couchdb_http, couchdb_database, [*docs, {"_id": "other", "type": "other", "n": 0}])
    return docs


# Both servers need the sort field in an index; PouchDB also needs it in the selector.
ITEMS_BY_N = {"type": "item", "n": {"$gte": 0}}


async def test_find_fields_limit_skip(api: Api, items: list[dict[str, Any]]) -> None:
    result = await api("find", {"type": "item"}, fields=["_id", "n"], limit=5, skip=3)
    assert len(result.docs) == 5
    assert all(set(doc) == {"_id", "n"} for doc in result.docs)
    everything = await api("find", {"type": "item"})
    assert len(everything.docs) == 20  # an explicit limit, not CouchDB's default 25 rows
    assert {doc["_id"] for doc in everything.docs} == {doc["_id"] for doc in items}


async def test_find_sort_needs_an_index(api: Api, items: list[dict[str, Any]]) -> None:
    with pytest.raises(exc.NoUsableIndex) as info:
        await api("find", ITEMS_BY_N, sort=[{"n": "asc"}])
    assert isinstance(info.value, exc.ProgrammingError)
    await api("create_index", ["n"], name="by-n", ddoc="items")
    result = await api("find", ITEMS_BY_N, sort=[{"n": "desc"}], limit=4, skip=2)
    expected = sorted((doc["n"] for doc in items), reverse=True)[2:6]
    assert [doc["n"] for doc in result.docs] == expected


async def test_find_use_index(api: Api, items: list[dict[str, Any]]) -> None:
    await api("create_index", ["n"], name="by-n", ddoc="items")
    for use_index in ("items", ["items", "by-n"]):
        result = await api(
            "find", ITEMS_BY_N, sort=[{"n": "asc"}], use_index=use_index, fields=["n"]
        )
        assert [doc["n"] for doc in result.docs] == sorted(doc["n"] for doc in items)


async def test_explain_names_the_index(api: Api, items: list[dict[str, Any]]) -> None:
    await api("create_index", ["n"], name="by-n", ddoc="items")
    plan = await api("explain", ITEMS_BY_N, sort=[{"n": "asc"}], use_index=["items", "by-n"])
    assert plan["index"]["name"] == "by-n"
    assert plan["index"]["ddoc"] == "_design/items"
    assert plan["limit"] > 0


async def test_index_create_list_delete(api: Api) -> None:
    created = await api("create_index", ["n", "type"], name="by-n-type", ddoc="_design/items")
    assert (created["result"], created["id"], created["name"]) == (
        "created", "_design/items", "by-n-type",
    )  # fmt: skip
    assert (await api("create_index", ["n", "type"], name="by-n-type", ddoc="items"))[
        "result"
    ] == "exists"
    listed = {index["name"]: index for index in await api("list_indexes")}
    assert listed["by-n-type"]["ddoc"] == "_design/items"
    assert listed["by-n-type"]["def"]["fields"] == [{"n": "asc"}, {"type": "asc"}]
    assert (await api("delete_index", "items", "by-n-type"))["ok"] is True
    assert "by-n-type" not in {index["name"] for index in await api("list_indexes")}


@pytest.mark.slow
async def test_iter_find_returns_all_12000_documents(
    api: Api, couchdb_http: httpx.Client, couchdb_database: str
) -> None:
    docs = [{"_id": f"row-{i:05d}", "type": "row", "i": i} for i in range(12_000)]
    results = await api("bulk_docs", docs, chunk_size=1_000)
    assert all(r.ok for r in results)
    assert couchdb_http.get(f"/{couchdb_database}").json()["doc_count"] == 12_000

    started = time.monotonic()
    got = await api.collect("iter_find", {"type": "row"}, fields=["_id", "i"])
    elapsed = time.monotonic() - started
    ids = [doc["_id"] for doc in got]
    assert len(ids) == 12_000
    assert len(set(ids)) == 12_000
    assert set(ids) == {doc["_id"] for doc in docs}
    print(f"iter_find ({api.kind}): 12,000 documents in {elapsed:.2f} s")

    limited = await api.collect("iter_find", {"type": "row"}, page_size=700, limit=2_500)
    assert len({doc["_id"] for doc in limited}) == 2_500


# -- _changes ----------------------------------------------------------------------------------


async def test_changes_normal(api: Api, couchdb_http: httpx.Client, couchdb_database: str) -> None:
    seed(couchdb_http, couchdb_database, [{"_id": f"c{i}"} for i in range(5)])
    result = await api("changes")
    assert sorted(row["id"] for row in result.results) == [f"c{i}" for i in range(5)]
    assert result.last_seq is not None
    first_two = await api("changes", limit=2, include_docs=True)
    assert len(first_two.results) == 2
    assert all("doc" in row for row in first_two.results)
    rest = await api("changes", since=first_two.last_seq)
    # Resuming from last_seq loses nothing (a clustered CouchDB may repeat a row).
    assert {row["id"] for row in first_two.results} | {row["id"] for row in rest.results} == {
        f"c{i}" for i in range(5)
    }
    assert 3 <= len(rest.results) <= 5
    assert (await api("changes", since=result.last_seq)).results == []


async def test_longpoll_returns_when_a_write_happens(
    api: Api, couchdb_http: httpx.Client, couchdb_database: str
) -> None:
    seed(couchdb_http, couchdb_database, [{"_id": "before"}])
    since = (await api("changes")).last_seq
    writer = threading.Timer(
        0.5, lambda: couchdb_http.put(f"/{couchdb_database}/during", json={"x": 1})
    )
    writer.start()
    try:
        started = time.monotonic()
        result = await api("changes", feed="longpoll", since=since, timeout_ms=20_000)
        elapsed = time.monotonic() - started
    finally:
        writer.join()
    assert [row["id"] for row in result.results] == ["during"]
    assert 0.3 < elapsed < 10.0  # woke up on the write, long before the timeout
    assert (await api("changes", since=result.last_seq)).results == []


async def test_longpoll_returns_within_its_timeout_when_nothing_happens(
    api: Api, couchdb_http: httpx.Client, couchdb_database: str
) -> None:
    seed(couchdb_http, couchdb_database, [{"_id": "only"}])
    since = (await api("changes")).last_seq
    started = time.monotonic()
    result = await api("changes", feed="longpoll", since=since, timeout_ms=1_000)
    elapsed = time.monotonic() - started
    assert result.results == []
    # CouchDB answers at its timeout; PouchDB Server ignores it and the client stops
    # waiting shortly after.
    assert 0.9 <= elapsed < 4.0
    # The seq it returns resumes without loss.
    await api("create", {"_id": "after"})
    assert [r["id"] for r in (await api("changes", since=result.last_seq)).results] == ["after"]


# -- _local ------------------------------------------------------------------------------------


async def test_local_documents(api: Api, couchdb_http: httpx.Client, couchdb_database: str) -> None:
    assert await api("get_local", "checkpoint") is None
    first = await api("put_local", "checkpoint", {"seq": "1-a"})
    assert first["id"] == "_local/checkpoint"
    stored = await api("get_local", "checkpoint")
    assert stored["seq"] == "1-a"
    await api("put_local", "_local/checkpoint", {"seq": "2-b", "_rev": stored["_rev"]})
    assert (await api("get_local", "_local/checkpoint"))["seq"] == "2-b"
    # Local documents stay out of the feed that replicators follow.
    assert (await api("changes")).results == []
    assert couchdb_http.get(f"/{couchdb_database}/_local/checkpoint").json()["seq"] == "2-b"


# -- failures ----------------------------------------------------------------------------------


async def test_wrong_password_is_unauthorized(
    connect: Callable[..., Api], couchdb_url: str
) -> None:
    # A user of its own: CouchDB 3.4+ locks a user out (even with the right password)
    # after 5 failures from one address within 5 minutes ([chttpd_auth_lockout]), so
    # failing as the suite's admin would break the tests that follow.
    user = f"intruder_{secrets.token_hex(4)}"
    wrong = "not-the-Pa55word"
    client = connect(with_credentials(couchdb_url, user, wrong))
    with pytest.raises(exc.Unauthorized) as info:
        await client("database_info")
    error = info.value
    assert isinstance(error, exc.OperationalError)
    assert error.status == 401
    assert f"'{user}'" in str(error)
    for text in (str(error), repr(error), repr(client.client)):
        assert wrong not in text


async def test_unreachable_port_fails_fast(connect: Callable[..., Api]) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = connect(f"couchdb://admin:s3cret-pw@127.0.0.1:{port}/shop")
    started = time.monotonic()
    with pytest.raises(exc.ConnectionFailed) as info:
        await client("database_info")
    elapsed = time.monotonic() - started
    assert elapsed < 10.0
    assert isinstance(info.value, exc.OperationalError)
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "s3cret-pw" not in str(info.value)
    assert "s3cret-pw" not in repr(info.value)
    print(f"unreachable port ({client.kind}): ConnectionFailed after {elapsed:.3f} s")
