"""What each client operation sends, and how it reads the answer (sync and async alike)."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from sqlalchemy_couchdb.dbapi import exceptions as exc
from sqlalchemy_couchdb.dbapi.async_client import AsyncCouchDBClient
from sqlalchemy_couchdb.dbapi.client import CouchDBClient
from sqlalchemy_couchdb.dbapi.operations import ChangesResult
from sqlalchemy_couchdb.dbapi.retry import RetryPolicy

URL = "couchdb://alice:pw@couch.test:5984/shop?timeout=30&connect_timeout=4"


class Api:
    def __init__(self, kind: str, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return handler(request)

        cls = CouchDBClient if kind == "sync" else AsyncCouchDBClient
        self.client: Any = cls.from_url(
            URL, transport=httpx.MockTransport(record), retry=RetryPolicy(0)
        )

    async def __call__(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, name)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    @property
    def last_json(self) -> Any:
        return json.loads(self.last.content)


def ok(body: Any = None, status: int = 200) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, json={"ok": True} if body is None else body)


@pytest.fixture(params=["sync", "async"])
async def api(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Api]]:
    made: list[Api] = []

    def make(handler: Callable[[httpx.Request], httpx.Response] | None = None) -> Api:
        made.append(Api(request.param, handler or ok()))
        return made[-1]

    yield make
    for one in made:
        await one("close")


def target(request: httpx.Request) -> tuple[str, str]:
    return request.method, request.url.raw_path.decode()


# -- documents ---------------------------------------------------------------------------------


async def test_document_ids_are_escaped_but_design_and_local_keep_their_slash(
    api: Callable[..., Api],
) -> None:
    client = api(ok({"_id": "x"}))
    await client("get", "a/b c?d")
    assert target(client.last) == ("GET", "/shop/a%2Fb%20c%3Fd")
    await client("get", "_design/by type")
    assert target(client.last) == ("GET", "/shop/_design/by%20type")
    await client("get", "order-1", rev="2-abc")
    assert target(client.last) == ("GET", "/shop/order-1?rev=2-abc")


async def test_create_with_an_id_puts_and_without_one_posts(api: Callable[..., Api]) -> None:
    client = api(ok({"ok": True, "id": "x", "rev": "1-a"}, status=201))
    await client("create", {"_id": "order-1", "total": 3})
    assert target(client.last) == ("PUT", "/shop/order-1")
    assert client.last_json == {"_id": "order-1", "total": 3}
    assert client.last.headers["content-type"] == "application/json"
    await client("create", {"total": 4})
    assert target(client.last) == ("POST", "/shop")


async def test_put_and_delete_need_what_couchdb_needs(api: Callable[..., Api]) -> None:
    client = api()
    await client("put", {"_id": "order-1", "_rev": "1-a", "total": 5})
    assert target(client.last) == ("PUT", "/shop/order-1")
    await client("delete", "order-1", "2-b")
    assert target(client.last) == ("DELETE", "/shop/order-1?rev=2-b")
    sent = len(client.requests)
    with pytest.raises(exc.InvalidConfiguration, match="_id"):
        await client("put", {"total": 5})
    # CouchDB answers 409 without a rev, PouchDB Server deletes: refuse before sending.
    with pytest.raises(exc.InvalidConfiguration, match="current rev"):
        await client("delete", "order-1", "")
    with pytest.raises(exc.InvalidConfiguration, match="non-empty string"):
        await client("get", "")
    assert len(client.requests) == sent


# -- databases and server ----------------------------------------------------------------------


async def test_database_operations(api: Callable[..., Api]) -> None:
    client = api(ok({"db_name": "x", "couchdb": "Welcome"}))
    await client("server_info")
    assert target(client.last) == ("GET", "/")
    assert await client("create_database") is True
    assert target(client.last) == ("PUT", "/shop")
    await client("create_database", "other")
    assert target(client.last) == ("PUT", "/other")
    await client("database_info")
    assert target(client.last) == ("GET", "/shop")
    assert await client("database_exists") is True
    assert target(client.last) == ("HEAD", "/shop")
    await client("delete_database", "other")
    assert target(client.last) == ("DELETE", "/other")


# -- _all_docs ---------------------------------------------------------------------------------


async def test_all_docs_range_params_are_json(api: Callable[..., Api]) -> None:
    client = api(ok({"rows": []}))
    await client("all_docs", startkey="order-", endkey="order-\ufff0", include_docs=True, limit=5)
    assert client.last.method == "GET"
    params = client.last.url.params
    assert json.loads(params["startkey"]) == "order-"
    assert json.loads(params["endkey"]) == "order-\ufff0"
    assert params["include_docs"] == "true"
    assert params["limit"] == "5"


async def test_all_docs_keys_are_posted(api: Callable[..., Api]) -> None:
    client = api(ok({"rows": []}))
    await client("all_docs", keys=["a", "b/c"], include_docs=True)
    assert target(client.last)[0] == "POST"
    assert client.last.url.path == "/shop/_all_docs"
    assert client.last_json == {"keys": ["a", "b/c"]}
    assert client.last.url.params["include_docs"] == "true"


# -- Mango -------------------------------------------------------------------------------------


async def test_find_sends_every_option(api: Callable[..., Api]) -> None:
    client = api(ok({"docs": [{"_id": "a"}], "bookmark": "g1", "warning": "no index"}))
    result = await client(
        "find", {"type": "order"}, limit=7, skip=2, fields=["_id"], sort=[{"t": "asc"}],
        use_index=["ddoc", "name"], bookmark="g0",
    )  # fmt: skip
    assert target(client.last) == ("POST", "/shop/_find")
    assert client.last_json == {
        "selector": {"type": "order"}, "limit": 7, "skip": 2, "fields": ["_id"],
        "sort": [{"t": "asc"}], "use_index": ["ddoc", "name"], "bookmark": "g0",
    }  # fmt: skip
    assert (result.docs, result.bookmark, result.warning) == ([{"_id": "a"}], "g1", "no index")


async def test_explain_sends_a_find_body_with_a_limit(api: Callable[..., Api]) -> None:
    client = api(ok({"index": {"name": "_all_docs"}}))
    plan = await client("explain", {"type": "order"}, sort=[{"t": "asc"}])
    assert target(client.last) == ("POST", "/shop/_explain")
    assert client.last_json["limit"] > 0
    assert client.last_json["sort"] == [{"t": "asc"}]
    assert plan == {"index": {"name": "_all_docs"}}


async def test_index_create_list_and_delete(api: Callable[..., Api]) -> None:
    client = api(ok({"result": "created", "indexes": [{"name": "by-total"}]}))
    await client(
        "create_index", ["total"], name="by-total", ddoc="_design/orders",
        partial_filter_selector={"type": "order"},
    )  # fmt: skip
    assert target(client.last) == ("POST", "/shop/_index")
    assert client.last_json == {
        "index": {"fields": ["total"], "partial_filter_selector": {"type": "order"}},
        "type": "json", "name": "by-total", "ddoc": "orders",
    }  # fmt: skip
    assert await client("list_indexes") == [{"name": "by-total"}]
    assert target(client.last) == ("GET", "/shop/_index")


@pytest.mark.parametrize("ddoc", ["orders", "_design/orders"])
async def test_delete_index_sends_the_design_id_as_one_segment(
    api: Callable[..., Api], ddoc: str
) -> None:
    # CouchDB takes "_design%2Forders" (or "_design/orders"); PouchDB Server only the
    # single escaped segment, and a bare "orders" makes it answer 400.
    client = api()
    await client("delete_index", ddoc, "by total")
    assert target(client.last) == ("DELETE", "/shop/_index/_design%2Forders/json/by%20total")


# -- _changes ----------------------------------------------------------------------------------


async def test_normal_changes(api: Callable[..., Api]) -> None:
    client = api(ok({"results": [{"id": "a", "seq": "1-g"}], "last_seq": "1-g", "pending": 0}))
    result = await client("changes", since="0", limit=10, include_docs=True)
    params = client.last.url.params
    assert client.last.url.path == "/shop/_changes"
    assert (params["feed"], params["since"], params["limit"]) == ("normal", "0", "10")
    assert params["include_docs"] == "true"
    assert "timeout" not in params
    assert result == ChangesResult([{"id": "a", "seq": "1-g"}], "1-g", 0)


async def test_longpoll_sends_its_timeout_and_waits_a_little_longer(
    api: Callable[..., Api],
) -> None:
    client = api(ok({"results": [], "last_seq": "5-g"}))
    await client("changes", feed="longpoll", since="4-g", timeout_ms=2_000)
    request = client.last
    assert request.url.params["feed"] == "longpoll"
    assert request.url.params["timeout"] == "2000"
    timeouts = request.extensions["timeout"]
    # The read waits past the server's timeout (CouchDB answers then, with a last_seq)
    # but not much past it (PouchDB Server never answers); connecting keeps its limit.
    assert 2.0 < timeouts["read"] <= 4.0
    assert timeouts["connect"] == 4.0
    # PouchDB Server gzips a feed when asked, then sends nothing until it ends.
    assert request.headers["accept-encoding"] == "identity"


async def test_longpoll_client_timeout_returns_an_empty_result(api: Callable[..., Api]) -> None:
    def silent(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    client = api(silent)
    result = await client("changes", feed="longpoll", since="42-g", timeout_ms=100)
    assert result.results == []
    assert result.last_seq == "42-g"  # resume where this call started
    assert len(client.requests) == 1


async def test_normal_feed_read_timeout_is_an_error(api: Callable[..., Api]) -> None:
    def silent(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    with pytest.raises(exc.ConnectionFailed, match="timed out"):
        await api(silent)("changes", since="0")


async def test_streaming_feeds_are_refused(api: Callable[..., Api]) -> None:
    client = api()
    with pytest.raises(exc.InvalidConfiguration, match="feed=normal or feed=longpoll"):
        await client("changes", feed="continuous")
    assert client.requests == []


# -- _local ------------------------------------------------------------------------------------


async def test_local_documents(api: Callable[..., Api]) -> None:
    client = api(ok({"_id": "_local/cp", "_rev": "0-1", "seq": "9-g"}))
    await client("put_local", "cp", {"seq": "9-g"})
    assert target(client.last) == ("PUT", "/shop/_local/cp")
    assert client.last_json == {"seq": "9-g"}
    assert (await client("get_local", "_local/cp"))["seq"] == "9-g"
    assert target(client.last) == ("GET", "/shop/_local/cp")
