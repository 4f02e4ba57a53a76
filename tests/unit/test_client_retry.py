"""Retry policy: what is retried, what is not, how many attempts, and the backoff bound."""

from __future__ import annotations

import inspect
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqlalchemy_couchdb.dbapi import async_client as async_client_module
from sqlalchemy_couchdb.dbapi import client as client_module
from sqlalchemy_couchdb.dbapi import exceptions as exc
from sqlalchemy_couchdb.dbapi.async_client import AsyncCouchDBClient
from sqlalchemy_couchdb.dbapi.client import CouchDBClient
from sqlalchemy_couchdb.dbapi.retry import RetryPolicy

URL = "couchdb://alice:pw@couch.test:5984/shop"
OK = {"ok": True, "id": "x", "rev": "1-a"}

# -- the backoff bound -------------------------------------------------------------------------


@given(
    attempt=st.integers(min_value=0, max_value=2000),
    base=st.floats(min_value=0.0, max_value=10.0),
    cap=st.floats(min_value=0.0, max_value=60.0),
    seed=st.integers(),
)
def test_delay_is_within_the_full_jitter_bound(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    delay = RetryPolicy(base=base, cap=cap).delay(attempt, random.Random(seed))
    bound = cap if attempt > 1000 else min(cap, base * 2.0**attempt)
    assert 0.0 <= delay <= bound


def test_delay_is_full_jitter_over_the_whole_range() -> None:
    # Full jitter: uniform over [0, bound], not a fixed step nor "half plus jitter".
    policy = RetryPolicy(base=0.1, cap=2.0)
    rng = random.Random(7)
    for attempt, bound in ((0, 0.1), (1, 0.2), (3, 0.8), (4, 1.6), (5, 2.0), (30, 2.0)):
        samples = [policy.delay(attempt, rng) for _ in range(2000)]
        assert max(samples) <= bound
        assert min(samples) < bound * 0.05
        assert max(samples) > bound * 0.95


# -- through the clients -----------------------------------------------------------------------


class Script:
    """Answers requests from a list of steps: a status (with a JSON body) or an exception."""

    def __init__(self, *steps: int | type[httpx.TransportError]) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        if isinstance(step, int):
            body = OK if step < 400 else {"error": "x", "reason": f"status {step}"}
            return httpx.Response(step, json=body)
        raise step("simulated", request=request)


class Api:
    def __init__(self, kind: str, script: Script, retries: int, sleeps: list[float]) -> None:
        self.script = script
        self.kind = kind
        cls = CouchDBClient if kind == "sync" else AsyncCouchDBClient
        policy = RetryPolicy(retries=retries, base=0.05, cap=0.15)
        self.client: Any = cls.from_url(URL, transport=httpx.MockTransport(script), retry=policy)
        self.sleeps = sleeps

    async def __call__(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, name)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    @property
    def attempts(self) -> int:
        return len(self.script.requests)


@pytest.fixture(params=["sync", "async"])
async def api(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., Api]]:
    sleeps: list[float] = []

    async def fake_async_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    # Record the waits instead of waiting; each client sleeps through its own module.
    monkeypatch.setattr(client_module.time, "sleep", sleeps.append)
    monkeypatch.setattr(async_client_module.asyncio, "sleep", fake_async_sleep)
    made: list[Api] = []

    def make(*steps: int | type[httpx.TransportError], retries: int = 3) -> Api:
        made.append(Api(request.param, Script(*steps), retries, sleeps))
        return made[-1]

    yield make
    for one in made:
        await one("close")


RETRIED = [429, 502, 503, 504, httpx.ConnectError, httpx.ConnectTimeout]


@pytest.mark.parametrize("failure", RETRIED)
async def test_idempotent_request_is_retried_then_succeeds(
    api: Callable[..., Api], failure: int | type[httpx.TransportError]
) -> None:
    client = api(failure, failure, 200)
    assert await client("get", "order-1") == OK
    assert client.attempts == 3
    # One wait per retry, each within min(cap, base * 2**n).
    assert len(client.sleeps) == 2
    assert 0 <= client.sleeps[0] <= 0.05
    assert 0 <= client.sleeps[1] <= 0.10


@pytest.mark.parametrize("failure", RETRIED)
async def test_retries_stop_after_the_configured_number(
    api: Callable[..., Api], failure: int | type[httpx.TransportError]
) -> None:
    client = api(failure, retries=3)
    with pytest.raises(exc.OperationalError):
        await client("get", "order-1")
    assert client.attempts == 4  # the first try and 3 retries
    assert len(client.sleeps) == 3
    assert all(0 <= s <= bound for s, bound in zip(client.sleeps, (0.05, 0.1, 0.15), strict=True))


async def test_final_connect_failure_is_connection_failed(api: Callable[..., Api]) -> None:
    client = api(httpx.ConnectError, retries=2)
    with pytest.raises(exc.ConnectionFailed):
        await client("server_info")
    assert client.attempts == 3


async def test_retries_zero_means_one_attempt(api: Callable[..., Api]) -> None:
    client = api(503, retries=0)
    with pytest.raises(exc.ServerError):
        await client("database_info")
    assert client.attempts == 1
    assert client.sleeps == []


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("server_info", ()),
        ("database_info", ()),
        ("database_exists", ()),
        ("get", ("order-1",)),
        ("put", ({"_id": "order-1", "_rev": "1-a"},)),
        ("delete", ("order-1", "1-a")),
        ("find", ({"type": "order"},)),
        ("all_docs", ()),
        ("explain", ({"type": "order"},)),
        ("list_indexes", ()),
        ("changes", ()),
        ("get_local", ("cp",)),
        ("put_local", ("cp", {"seq": "1-a"})),
    ],
)
async def test_every_idempotent_operation_is_retried(
    api: Callable[..., Api], name: str, args: tuple[Any, ...]
) -> None:
    client = api(503, 200)
    await client(name, *args)
    assert client.attempts == 2


@pytest.mark.parametrize("failure", [*RETRIED, 500])
async def test_post_that_creates_a_document_is_never_retried(
    api: Callable[..., Api], failure: int | type[httpx.TransportError]
) -> None:
    # CouchDB may have stored the document before the answer was lost: a retry
    # could store it twice under two generated ids.
    client = api(failure, 201)
    with pytest.raises(exc.OperationalError):
        await client("create", {"type": "order", "total": 3})
    assert client.attempts == 1
    assert client.script.requests[0].method == "POST"


async def test_create_database_is_not_retried(api: Callable[..., Api]) -> None:
    client = api(503, 201)
    with pytest.raises(exc.ServerError):
        await client("create_database")
    assert client.attempts == 1


@pytest.mark.parametrize("status", [500, 400, 401, 403, 404, 409, 412])
async def test_500_and_4xx_are_not_retried(api: Callable[..., Api], status: int) -> None:
    client = api(status, 200)
    with pytest.raises(exc.CouchDBError) as info:
        await client("get", "order-1")
    assert info.value.status == status
    assert client.attempts == 1
    assert client.sleeps == []


async def test_read_timeout_is_not_retried(api: Callable[..., Api]) -> None:
    # The request reached the server: only failures to connect are known to be safe.
    client = api(httpx.ReadTimeout, 200)
    with pytest.raises(exc.ConnectionFailed, match="timed out"):
        await client("get", "order-1")
    assert client.attempts == 1


async def test_retry_count_comes_from_the_url() -> None:
    script = Script(503)
    url = f"{URL}?retries=1"
    with CouchDBClient.from_url(url, transport=httpx.MockTransport(script)) as client:
        client.retry = RetryPolicy(retries=client.retry.retries, base=0.0, cap=0.0)
        with pytest.raises(exc.ServerError):
            client.server_info()
    assert len(script.requests) == 2
