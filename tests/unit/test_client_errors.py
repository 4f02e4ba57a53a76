"""Answers to typed errors: HTTP status and CouchDB ``error`` code to PEP 249 classes.

Every test runs against the sync and the async client (``api`` fixture), over
``httpx.MockTransport``.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from sqlalchemy_couchdb.dbapi import exceptions as exc
from sqlalchemy_couchdb.dbapi.async_client import AsyncCouchDBClient
from sqlalchemy_couchdb.dbapi.client import CouchDBClient
from sqlalchemy_couchdb.dbapi.retry import RetryPolicy

PASSWORD = "hunter2-Xy9"
URL = f"couchdb://alice:{PASSWORD}@couch.test:5984/shop"
NO_WAIT = RetryPolicy(retries=3, base=0.0, cap=0.0)

Handler = Callable[[httpx.Request], httpx.Response]


class Api:
    """The sync or the async client behind one awaitable surface."""

    def __init__(self, kind: str, handler: Handler, url: str = URL) -> None:
        self.requests: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return handler(request)

        transport = httpx.MockTransport(record)
        cls = CouchDBClient if kind == "sync" else AsyncCouchDBClient
        self.client: Any = cls.from_url(url, transport=transport, retry=NO_WAIT)

    async def __call__(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, name)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def close(self) -> None:
        await self("close")


@pytest.fixture(params=["sync", "async"])
async def api(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Api]]:
    made: list[Api] = []

    def make(handler: Handler, url: str = URL) -> Api:
        made.append(Api(request.param, handler, url))
        return made[-1]

    yield make
    for one in made:
        await one.close()


def answer(status: int, body: Any = None, **kwargs: Any) -> Handler:
    return lambda request: httpx.Response(status, json=body, **kwargs)


# status, body, typed class, PEP 249 base
MAPPING = [
    (401, {"error": "unauthorized", "reason": "Name or password is incorrect."},
     exc.Unauthorized, exc.OperationalError),
    (403, {"error": "forbidden", "reason": "You are not allowed to access this db."},
     exc.Forbidden, exc.OperationalError),
    (404, {"error": "not_found", "reason": "missing"}, exc.NotFound, exc.ProgrammingError),
    (409, {"error": "conflict", "reason": "Document update conflict."},
     exc.Conflict, exc.IntegrityError),
    (412, {"error": "file_exists", "reason": "The database could not be created."},
     exc.PreconditionFailed, exc.IntegrityError),
    (400, {"error": "bad_request", "reason": "invalid UTF-8 JSON"},
     exc.BadRequest, exc.ProgrammingError),
    (400, {"error": "no_usable_index", "reason": "No index exists for this sort, try indexing"},
     exc.NoUsableIndex, exc.ProgrammingError),
    # PouchDB Server: no error code for an unsortable _find, and ``message`` not ``reason``.
    (400, {"error": "bad_request", "message": 'Cannot sort on field(s) "x" when using the '
     "default index"}, exc.NoUsableIndex, exc.ProgrammingError),
    (413, {"error": "document_too_large", "reason": "doc"}, exc.RequestTooLarge, exc.DataError),
    (500, {"error": "unknown_error", "reason": "function_clause"},
     exc.ServerError, exc.OperationalError),
    (503, {"error": "service_unavailable", "reason": "busy"},
     exc.ServerError, exc.OperationalError),
    (429, {"error": "too_many_requests", "reason": "slow down"},
     exc.TooManyRequests, exc.OperationalError),
]  # fmt: skip


@pytest.mark.parametrize(("status", "body", "cls", "pep249"), MAPPING)
async def test_status_and_error_code_pick_the_class(
    api: Callable[..., Api], status: int, body: dict[str, str], cls: type, pep249: type
) -> None:
    client = api(answer(status, body))
    with pytest.raises(cls) as info:
        await client("get", "order-1")
    error = info.value
    assert isinstance(error, pep249)
    assert isinstance(error, exc.CouchDBError)
    assert isinstance(error, exc.DatabaseError)
    assert error.status == status
    assert error.error == body["error"]
    assert error.reason == body.get("reason", body.get("message"))
    # The message names what was addressed, and what the server said.
    assert "'order-1'" in str(error)
    assert "'shop'" in str(error)
    assert (body.get("reason") or body["message"]) in str(error)


async def test_unauthorized_names_the_user_not_the_password(api: Callable[..., Api]) -> None:
    client = api(answer(401, {"error": "unauthorized", "reason": "Name or password is incorrect."}))
    with pytest.raises(exc.Unauthorized) as info:
        await client("server_info")
    assert "'alice'" in str(info.value)
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in repr(info.value)


async def test_conflict_is_an_integrity_error(api: Callable[..., Api]) -> None:
    client = api(answer(409, {"error": "conflict", "reason": "Document update conflict."}))
    with pytest.raises(exc.IntegrityError) as info:
        await client("put", {"_id": "order-1", "_rev": "1-old", "total": 3})
    assert isinstance(info.value, exc.Conflict)
    assert info.value.doc_id == "order-1"
    assert info.value.database == "shop"


async def test_existing_database_is_precondition_failed_unless_exist_ok(
    api: Callable[..., Api],
) -> None:
    client = api(answer(412, {"error": "file_exists", "reason": "The database exists."}))
    with pytest.raises(exc.PreconditionFailed, match="database 'shop'"):
        await client("create_database")
    assert await client("create_database", exist_ok=True) is False


async def test_error_without_a_json_body_still_has_its_type(api: Callable[..., Api]) -> None:
    client = api(lambda r: httpx.Response(500, text="<html>Internal Server Error</html>"))
    with pytest.raises(exc.ServerError, match="500: no reason given") as info:
        await client("get", "order-1")
    assert info.value.error is None


async def test_unknown_4xx_is_still_a_database_error(api: Callable[..., Api]) -> None:
    client = api(answer(405, {"error": "method_not_allowed", "reason": "Only GET allowed"}))
    with pytest.raises(exc.CouchDBError) as info:
        await client("get", "order-1")
    assert isinstance(info.value, exc.DatabaseError)
    assert info.value.status == 405


async def test_success_that_is_not_json_is_an_invalid_response(api: Callable[..., Api]) -> None:
    client = api(lambda r: httpx.Response(200, text="<html>proxy login</html>"))
    with pytest.raises(exc.InvalidResponse, match="not JSON") as info:
        await client("server_info")
    assert isinstance(info.value, exc.OperationalError)


# -- 404 that means "absent", not an error -------------------------------------------------


async def test_missing_document_is_none_with_get_or_none(api: Callable[..., Api]) -> None:
    client = api(answer(404, {"error": "not_found", "reason": "missing"}))
    assert await client("get_or_none", "nope") is None
    assert await client("get_local", "checkpoint") is None
    assert await client("database_exists") is False
    assert await client("delete_database", missing_ok=True) is None
    with pytest.raises(exc.NotFound):
        await client("delete_database")


# -- connection failures ---------------------------------------------------------------------


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


async def test_connection_refused_is_connection_failed(api: Callable[..., Api]) -> None:
    client = api(refuse)
    with pytest.raises(exc.ConnectionFailed) as info:
        await client("server_info")
    error = info.value
    assert isinstance(error, exc.OperationalError)
    assert isinstance(error.__cause__, httpx.ConnectError)  # raised "from" the cause
    assert "couch.test:5984" in str(error)
    assert "could not connect" in str(error)
    assert error.status is None


async def test_read_timeout_is_connection_failed_with_a_hint(api: Callable[..., Api]) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = api(slow)
    with pytest.raises(exc.ConnectionFailed, match=r"timed out.*\?timeout="):
        await client("get", "order-1")


async def test_dropped_connection_says_so(api: Callable[..., Api]) -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("Server disconnected", request=request)

    client = api(drop)
    with pytest.raises(exc.ConnectionFailed, match="lost the connection") as info:
        await client("create", {"total": 1})
    assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)


# -- the password never appears in any error ---------------------------------------------------


@pytest.mark.parametrize(
    "handler",
    [refuse, *(answer(status, body) for status, body, _cls, _base in MAPPING)],
)
async def test_no_error_shows_the_password(api: Callable[..., Api], handler: Handler) -> None:
    client = api(handler)
    for name, args in (("server_info", ()), ("get", ("order-1",)), ("create_database", ())):
        with pytest.raises(exc.Error) as info:
            await client(name, *args)
        error = info.value
        for text in (str(error), repr(error), str(error.args)):
            assert PASSWORD not in text
        assert PASSWORD not in str(error.__cause__ or "")
