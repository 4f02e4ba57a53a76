"""``_find`` paging and ``_bulk_docs`` chunking, as state machines and through the clients."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqlalchemy_couchdb.dbapi import exceptions as exc
from sqlalchemy_couchdb.dbapi.async_client import AsyncCouchDBClient
from sqlalchemy_couchdb.dbapi.client import CouchDBClient
from sqlalchemy_couchdb.dbapi.operations import (
    FindPager,
    FindResult,
    bulk_chunks,
    match_bulk_results,
)
from sqlalchemy_couchdb.dbapi.retry import RetryPolicy

URL = "couchdb://alice:pw@couch.test:5984/shop"
SELECTOR = {"type": "order"}

# -- FindPager, without I/O ------------------------------------------------------------------


def docs(*ids: int) -> list[dict[str, Any]]:
    return [{"_id": f"d{i:05d}"} for i in ids]


def test_every_request_carries_an_explicit_limit() -> None:
    pager = FindPager("shop", SELECTOR, page_size=3)
    call = pager.next_call()
    assert call is not None
    assert (call.method, call.path) == ("POST", "/shop/_find")
    assert call.json == {"selector": SELECTOR, "limit": 3}


def test_pages_with_the_bookmark_when_the_server_returns_one() -> None:
    pager = FindPager("shop", SELECTOR, page_size=2, skip=5)
    first = pager.next_call()
    assert first is not None and first.json["skip"] == 5
    assert pager.accept(FindResult(docs(5, 6), bookmark="g1AAAA-1")) == docs(5, 6)
    second = pager.next_call()
    assert second is not None
    assert second.json["bookmark"] == "g1AAAA-1"
    # The bookmark resumes after the last row; the initial skip must not apply twice.
    assert "skip" not in second.json
    assert second.json["limit"] == 2


def test_pages_with_skip_when_the_server_returns_no_bookmark() -> None:
    pager = FindPager("shop", SELECTOR, page_size=2, skip=1)
    bodies = []
    for page in (docs(1, 2), docs(3, 4), docs(5)):
        call = pager.next_call()
        assert call is not None
        bodies.append(call.json)
        pager.accept(FindResult(page))
    assert [b.get("skip") for b in bodies] == [1, 3, 5]
    assert all("bookmark" not in b for b in bodies)
    assert all(b["limit"] == 2 for b in bodies)
    assert pager.next_call() is None  # the short page ended it


def test_nil_bookmark_falls_back_to_skip() -> None:
    pager = FindPager("shop", SELECTOR, page_size=2)
    pager.next_call()
    pager.accept(FindResult(docs(0, 1), bookmark="nil"))
    call = pager.next_call()
    assert call is not None
    assert call.json.get("skip") == 2
    assert "bookmark" not in call.json


def test_losing_the_bookmark_resumes_at_the_right_position() -> None:
    pager = FindPager("shop", SELECTOR, page_size=2, skip=3)
    pager.next_call()
    pager.accept(FindResult(docs(3, 4), bookmark="b1"))
    pager.next_call()
    pager.accept(FindResult(docs(5, 6), bookmark="b1"))  # the same bookmark again
    call = pager.next_call()
    assert call is not None
    assert call.json.get("skip") == 7  # 3 skipped + 4 read
    assert "bookmark" not in call.json


def test_limit_is_honoured_across_pages() -> None:
    pager = FindPager("shop", SELECTOR, page_size=10, limit=25)
    limits = []
    while (call := pager.next_call()) is not None:
        limits.append(call.json["limit"])
        pager.accept(FindResult(docs(*range(call.json["limit"])), bookmark=f"b{len(limits)}"))
    assert limits == [10, 10, 5]


def test_a_short_page_ends_the_query() -> None:
    pager = FindPager("shop", SELECTOR, page_size=10)
    pager.next_call()
    pager.accept(FindResult(docs(*range(9)), bookmark="b1"))
    assert pager.next_call() is None


def test_empty_page_ends_the_query() -> None:
    pager = FindPager("shop", SELECTOR, page_size=10)
    pager.next_call()
    pager.accept(FindResult(docs(*range(10)), bookmark="b1"))
    pager.next_call()
    pager.accept(FindResult([], bookmark="b1"))
    assert pager.next_call() is None


def test_limit_zero_sends_nothing() -> None:
    assert FindPager("shop", SELECTOR, limit=0).next_call() is None


@pytest.mark.parametrize(
    "kwargs", [{"page_size": 0}, {"limit": -1}, {"skip": -1}], ids=["page", "limit", "skip"]
)
def test_bad_paging_arguments_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(exc.InvalidConfiguration, match="must be"):
        FindPager("shop", SELECTOR, **kwargs)


def test_fields_sort_and_index_are_sent_on_every_page() -> None:
    pager = FindPager(
        "shop", SELECTOR, fields=["_id", "total"], sort=[{"total": "desc"}], use_index="by-total",
        page_size=1,
    )  # fmt: skip
    for _ in range(2):
        call = pager.next_call()
        assert call is not None
        assert call.json["fields"] == ["_id", "total"]
        assert call.json["sort"] == [{"total": "desc"}]
        assert call.json["use_index"] == "by-total"
        pager.accept(FindResult(docs(1), bookmark=None))


# -- fake servers, to page through with the real clients ------------------------------------


class FakeFind:
    """A ``_find`` over ``rows`` documents, paging like CouchDB (bookmarks, default limit
    25) or like PouchDB Server (no bookmark)."""

    def __init__(self, rows: int, *, bookmarks: bool) -> None:
        self.docs = [{"_id": f"d{i:06d}", "type": "order"} for i in range(rows)]
        self.bookmarks = bookmarks
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/shop/_find"
        body = json.loads(request.content)
        self.bodies.append(body)
        start = 0
        if "bookmark" in body:
            assert self.bookmarks, "PouchDB Server never returns bookmarks to send back"
            start = int(body["bookmark"].removeprefix("opaque-"))
        start += body.get("skip", 0)
        page = self.docs[start : start + body.get("limit", 25)]
        answer: dict[str, Any] = {"docs": page}
        if self.bookmarks:
            answer["bookmark"] = f"opaque-{start + len(page)}" if page else "nil"
        return httpx.Response(200, json=answer)


class Api:
    def __init__(self, kind: str, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        self.kind = kind
        cls = CouchDBClient if kind == "sync" else AsyncCouchDBClient
        self.client: Any = cls.from_url(
            URL, transport=httpx.MockTransport(handler), retry=RetryPolicy(0)
        )

    async def __call__(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, name)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def collect(self, name: str, /, *args: Any, **kwargs: Any) -> list[Any]:
        iterator = getattr(self.client, name)(*args, **kwargs)
        if self.kind == "async":
            return [item async for item in iterator]
        return list(iterator)


@pytest.fixture(params=["sync", "async"])
async def api(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Api]]:
    made: list[Api] = []

    def make(handler: Callable[[httpx.Request], httpx.Response]) -> Api:
        made.append(Api(request.param, handler))
        return made[-1]

    yield make
    for one in made:
        await one("close")


@pytest.mark.parametrize("bookmarks", [True, False], ids=["couchdb", "pouchdb"])
async def test_iter_find_returns_every_document_once(
    api: Callable[..., Api], bookmarks: bool
) -> None:
    server = FakeFind(2_345, bookmarks=bookmarks)
    got = await api(server).collect("iter_find", SELECTOR, page_size=500)
    assert [d["_id"] for d in got] == [d["_id"] for d in server.docs]
    assert len(server.bodies) == 5  # 4 full pages and a short one; no extra request
    assert all(body["limit"] == 500 for body in server.bodies)
    assert ("bookmark" in server.bodies[1]) is bookmarks


@pytest.mark.parametrize("bookmarks", [True, False], ids=["couchdb", "pouchdb"])
async def test_iter_find_honours_limit_and_skip(api: Callable[..., Api], bookmarks: bool) -> None:
    server = FakeFind(100, bookmarks=bookmarks)
    got = await api(server).collect("iter_find", SELECTOR, page_size=10, limit=35, skip=20)
    assert [d["_id"] for d in got] == [d["_id"] for d in server.docs[20:55]]
    assert [b["limit"] for b in server.bodies] == [10, 10, 10, 5]


async def test_iter_find_on_an_exact_multiple_stops_at_the_empty_page(
    api: Callable[..., Api],
) -> None:
    server = FakeFind(30, bookmarks=True)
    got = await api(server).collect("iter_find", SELECTOR, page_size=10)
    assert len(got) == 30
    assert len(server.bodies) == 4


async def test_find_sends_an_explicit_limit_by_default(api: Callable[..., Api]) -> None:
    server = FakeFind(60, bookmarks=True)
    result = await api(server)("find", SELECTOR)
    assert len(result.docs) == 60  # not CouchDB's default page of 25
    assert server.bodies[0]["limit"] >= 60
    assert result.bookmark == "opaque-60"


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(0, 60),
    page_size=st.integers(1, 20),
    limit=st.none() | st.integers(0, 70),
    skip=st.integers(0, 70),
    bookmarks=st.booleans(),
)
def test_pager_returns_exactly_the_requested_slice(
    rows: int, page_size: int, limit: int | None, skip: int, bookmarks: bool
) -> None:
    server = FakeFind(rows, bookmarks=bookmarks)
    with CouchDBClient.from_url(URL, transport=httpx.MockTransport(server)) as client:
        got = list(client.iter_find(SELECTOR, page_size=page_size, limit=limit, skip=skip))
    end = None if limit is None else skip + limit
    assert got == server.docs[skip:end]
    assert all("limit" in body for body in server.bodies)


# -- _bulk_docs --------------------------------------------------------------------------------


def test_bulk_chunks_split_and_give_every_document_an_id() -> None:
    chunks = list(bulk_chunks([{"n": i} for i in range(1_201)], chunk_size=500))
    assert [len(c) for c in chunks] == [500, 500, 201]
    ids = [d["_id"] for c in chunks for d in c]
    assert len(set(ids)) == 1_201
    assert [d["n"] for c in chunks for d in c] == list(range(1_201))


def test_bulk_chunks_keep_given_ids_and_do_not_touch_the_input() -> None:
    source = [{"_id": "a", "n": 1}, {"n": 2}]
    (chunk,) = bulk_chunks(source)
    assert chunk[0]["_id"] == "a"
    assert "_id" not in source[1]


@pytest.mark.parametrize(
    ("doc", "rule"), [(["not", "a", "dict"], "must be a mapping"), ({"_id": 5}, "must be a string")]
)
def test_bulk_chunks_refuse_bad_documents(doc: Any, rule: str) -> None:
    with pytest.raises(exc.InvalidConfiguration, match=rule):
        list(bulk_chunks([doc]))


def test_results_are_matched_by_id_not_position() -> None:
    sent = [{"_id": "a"}, {"_id": "_design/v"}, {"_id": "b"}]
    # PouchDB Server moves _design/ results first.
    answer = [
        {"ok": True, "id": "_design/v", "rev": "1-v"},
        {"id": "b", "error": "conflict", "reason": "Document update conflict."},
        {"ok": True, "id": "a", "rev": "1-a"},
    ]
    results = match_bulk_results(sent, answer)
    assert [(r.id, r.rev, r.error, r.ok) for r in results] == [
        ("a", "1-a", None, True),
        ("_design/v", "1-v", None, True),
        ("b", None, "conflict", False),
    ]
    assert results[2].reason == "Document update conflict."


def test_duplicate_ids_get_one_result_each() -> None:
    sent = [{"_id": "a", "n": 1}, {"_id": "a", "n": 2}]
    answer = [{"id": "a", "rev": "1-x"}, {"id": "a", "error": "conflict"}]
    assert [r.error for r in match_bulk_results(sent, answer)] == [None, "conflict"]


def test_missing_result_is_reported_as_an_error() -> None:
    (result,) = match_bulk_results([{"_id": "a"}], [])
    assert not result.ok
    assert result.reason == "no result returned by the server"


def test_new_edits_false_lists_only_failures() -> None:
    # CouchDB answers [] when every replicated revision was stored.
    sent = [{"_id": "a", "_rev": "3-abc"}, {"_id": "b", "_rev": "1-def"}]
    answer = [{"id": "b", "error": "forbidden", "reason": "validation"}]
    results = match_bulk_results(sent, answer, new_edits=False)
    assert [(r.id, r.ok, r.rev) for r in results] == [("a", True, "3-abc"), ("b", False, None)]


class FakeBulk:
    """Stores documents like CouchDB (conflict on an existing id without its rev) and
    answers in reverse order, as a server that reorders would."""

    def __init__(self, existing: set[str]) -> None:
        self.stored: dict[str, dict[str, Any]] = {}
        self.existing = existing
        self.chunk_sizes: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("POST", "/shop/_bulk_docs")
        docs = json.loads(request.content)["docs"]
        self.chunk_sizes.append(len(docs))
        answer = []
        for doc in docs:
            if doc["_id"] in self.existing:
                answer.append({"id": doc["_id"], "error": "conflict", "reason": "conflict"})
            else:
                self.stored[doc["_id"]] = doc
                answer.append({"ok": True, "id": doc["_id"], "rev": f"1-{doc['_id']}"})
        return httpx.Response(201, json=answer[::-1])


async def test_bulk_docs_in_chunks_matched_by_id(api: Callable[..., Api]) -> None:
    server = FakeBulk(existing={"taken"})
    docs_in = [{"n": i} for i in range(7)]
    docs_in.insert(3, {"_id": "taken", "n": 99})
    results = await api(server)("bulk_docs", docs_in, chunk_size=3)
    assert server.chunk_sizes == [3, 3, 2]
    assert len(results) == 8
    assert results[3].id == "taken" and results[3].error == "conflict"
    good = [r for i, r in enumerate(results) if i != 3]
    assert all(r.ok and r.rev == f"1-{r.id}" for r in good)
    assert sorted(server.stored[r.id]["n"] for r in good) == list(range(7))
