"""The changes feed against a fake server (httpx.MockTransport): requests and parsing.

The real-server behaviour (PouchDB Server's fallbacks, restarts) is covered by the
integration tests; here the protocol details: what is sent, how answers are read.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from couchdb_replicator.backoff import Backoff
from couchdb_replicator.errors import SourceError
from couchdb_replicator.feed import ChangesFeed, FeedChunk, decode_seq, encode_seq
from sqlalchemy_couchdb.dbapi import AsyncCouchDBClient, ConnectionSettings

Handler = Callable[[httpx.Request], httpx.Response]


def make_feed(handler: Handler, **kwargs: Any) -> ChangesFeed:
    settings = ConnectionSettings.from_url("couchdb://admin:s3cret@couch.test:5984/db")
    client = AsyncCouchDBClient(settings, transport=httpx.MockTransport(handler))
    kwargs.setdefault("backoff", Backoff(0.001, 0.002))
    return ChangesFeed(client, **kwargs)


def row(n: int, doc_id: str | None = None, **extra: Any) -> dict[str, Any]:
    doc_id = doc_id or f"d{n}"
    return {
        "seq": f"{n}-g1AAAA",
        "id": doc_id,
        "changes": [{"rev": f"1-{n}"}],
        "doc": {"_id": doc_id, "_rev": f"1-{n}", "type": "t"},
        **extra,
    }


def test_seqs_round_trip_unparsed() -> None:
    for seq in (None, 0, 42, "7-g1AAAAbcd", "now"):
        assert decode_seq(encode_seq(seq) if seq is not None else None) == seq
    assert encode_seq(5) != encode_seq("5")  # an int stays an int


async def test_pages_send_the_seq_back_as_given_and_stop_on_a_short_page() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        since = request.url.params.get("since")
        if since is None:
            body = {"results": [row(1), row(2, "_design/x")], "last_seq": "2-g1AAAA"}
        else:
            body = {"results": [row(3)], "last_seq": "3-g1AAAA"}
        return httpx.Response(200, json=body)

    feed = make_feed(handler, page_size=2)
    chunks = [c async for c in feed.pages(None)]
    assert [[ch.id for ch in c.changes] for c in chunks] == [["d1"], ["d3"]]  # design doc dropped
    assert [c.seq for c in chunks] == ["2-g1AAAA", "3-g1AAAA"]
    assert [c.idle for c in chunks] == [False, True]
    assert seen[1].url.params["since"] == "2-g1AAAA"
    params = seen[0].url.params
    assert params["include_docs"] == "true"
    assert params["style"] == "main_only"
    assert params["limit"] == "2"
    assert seen[0].headers["accept-encoding"] == "identity"


@pytest.mark.parametrize("stop", ["d4", 'é/"4', "ü"])
async def test_pages_stop_after_the_page_with_the_last_id_seen_at_start(stop: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        since = request.url.params.get("since")
        n = 2 if since is None else int(since.split("-")[0]) + 2
        rows = [row(n - 1), row(n, stop if n == 4 else None)]
        # json.dumps escapes non-ASCII as \uXXXX, where CouchDB sends UTF-8: either way.
        body = json.dumps({"results": rows, "last_seq": f"{n}-g1AAAA"})
        return httpx.Response(200, content=body.encode())

    feed = make_feed(handler, page_size=2)
    chunks = [c async for c in feed.pages(None, stop_after_id=stop)]
    assert [[ch.id for ch in c.changes] for c in chunks] == [["d1", "d2"], ["d3", stop]]


async def test_large_pages_are_cut_into_batches_at_rows_that_carry_a_seq() -> None:
    limits: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        limits.append(request.url.params["limit"])
        assert request.url.params["seq_interval"] == "3"
        if "since" not in request.url.params:  # the first page is one batch
            first = [row(100, "a"), row(101, "b"), row(102, "c")]
            return httpx.Response(200, json={"results": first, "last_seq": "0-g1AAAA"})
        rows = [row(n) for n in range(1, 9)]
        for n in (1, 2, 4, 5, 7):  # CouchDB with seq_interval: most rows have none
            rows[n - 1]["seq"] = None
        return httpx.Response(200, json={"results": rows, "last_seq": "8-g1AAAA"})

    feed = make_feed(handler, page_size=10, chunk_size=3)
    chunks = [c async for c in feed.pages(None)]
    assert limits[:2] == ["3", "10"]
    assert [[ch.id for ch in c.changes] for c in chunks] == [
        ["a", "b", "c"],
        ["d1", "d2", "d3"],
        ["d4", "d5", "d6"],
        ["d7", "d8"],
    ]
    assert [c.seq for c in chunks] == ["0-g1AAAA", "3-g1AAAA", "6-g1AAAA", "8-g1AAAA"]
    assert [c.idle for c in chunks] == [False, False, False, True]


async def test_integer_seqs_are_sent_back_as_integers() -> None:
    sinces: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sinces.append(request.url.params.get("since"))
        return httpx.Response(200, json={"results": [], "last_seq": 7})

    feed = make_feed(handler)
    [c async for c in feed.pages(5)]
    # The read-ahead may ask past the end: with the integer it was given.
    assert sinces[0] == "5" and sinces[1:] in ([], ["7"])


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (401, {"error": "unauthorized", "reason": "Name or password is incorrect."}, "401"),
        (403, {"error": "forbidden", "reason": "no"}, "403"),
        (404, {"error": "not_found", "reason": "Database does not exist."}, "does not exist"),
    ],
)
async def test_terminal_errors_raise_a_clear_source_error(
    status: int, body: dict[str, str], words: str
) -> None:
    feed = make_feed(lambda request: httpx.Response(status, json=body))
    with pytest.raises(SourceError, match=words) as info:
        [c async for c in feed.pages(None)]
    assert "s3cret" not in str(info.value)
    with pytest.raises(SourceError, match=words):
        await feed.database_info()


async def test_transient_errors_are_retried() -> None:
    answers = [httpx.Response(500, json={"error": "x"}), httpx.Response(503)]

    def handler(request: httpx.Request) -> httpx.Response:
        if answers:
            return answers.pop(0)
        return httpx.Response(200, json={"results": [row(1)], "last_seq": "1-g1AAAA"})

    reconnects: list[BaseException] = []
    feed = make_feed(handler, on_reconnect=reconnects.append)
    feed.client.retry = feed.client.retry.__class__(retries=0)
    chunks = [c async for c in feed.pages(None)]
    assert len(chunks) == 1 and len(reconnects) == 2


async def test_max_attempts_gives_up_with_a_source_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    feed = make_feed(handler, max_attempts=3)
    feed.client.retry = feed.client.retry.__class__(retries=0)
    with pytest.raises(SourceError, match="still failing after 3 attempts"):
        [c async for c in feed.pages(None)]


def sse(*events: str) -> bytes:
    return "".join(events).encode()


async def test_eventsource_is_read_and_resumed_with_last_event_id() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        assert request.url.params["feed"] == "eventsource"
        if len(requests) == 1:
            body = sse(
                f"data: {json.dumps(row(1))}\nid: 1-g1AAAA\n\n",
                "event: heartbeat\ndata: \n\n",
                f"data: {json.dumps(row(2, '_design/d'))}\nid: 2-g1AAAA\n\n",
            )
        else:
            body = sse(f"data: {json.dumps(row(3))}\nid: 3-g1AAAA\n\n")
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    feed = make_feed(handler)
    chunks: list[FeedChunk] = []
    async for chunk in feed.follow("0-g1AAAA"):
        chunks.append(chunk)
        if len(chunks) == 4:
            break
    assert [c.changes[0].id if c.changes else None for c in chunks] == ["d1", None, None, "d3"]
    assert chunks[1].idle  # the heartbeat
    assert chunks[2].seq == "2-g1AAAA" and not chunks[2].changes  # design doc: position only
    assert requests[0].headers["last-event-id"] == "0-g1AAAA"
    assert requests[1].headers["last-event-id"] == "2-g1AAAA"
    assert requests[1].url.params["since"] == "2-g1AAAA"
    assert requests[0].headers["accept-encoding"] == "identity"
    assert feed.active_mode == "eventsource"


async def test_eventsource_ids_are_the_json_of_the_seq() -> None:
    """CouchDB's frames carry ``id: <JSON of the seq>`` (quoted strings, bare integers):
    a row without its own seq takes the decoded id, which is then resumed from unquoted."""
    requests: list[httpx.Request] = []
    no_seq = {k: v for k, v in row(5).items() if k != "seq"}
    null_seq = {**row(6), "seq": None}

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if len(requests) == 1:
            body = sse(
                "\n",  # CouchDB, caught up with nothing sent yet: a lone newline
                f'data: {json.dumps(no_seq)}\nid: "5-g1AAAA"\n\n',
                f"data: {json.dumps(null_seq)}\nid: 6\n\n",
            )
        else:
            body = sse("event: heartbeat\ndata: \n\n")
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    feed = make_feed(handler)
    chunks: list[FeedChunk] = []
    async for chunk in feed.follow(None):
        chunks.append(chunk)
        if len(chunks) == 3:
            break
    assert [c.seq for c in chunks] == ["5-g1AAAA", 6, None]
    assert [c.changes[0].seq for c in chunks[:2]] == ["5-g1AAAA", 6]
    assert encode_seq(chunks[0].seq) == '"5-g1AAAA"'  # the checkpoint holds the seq itself
    assert requests[1].headers["last-event-id"] == "6"
    assert chunks[2].idle


async def test_auto_falls_back_to_continuous_when_eventsource_is_not_offered() -> None:
    feeds: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        feeds.append(request.url.params["feed"])
        if request.url.params["feed"] == "eventsource":
            # PouchDB Server: a normal feed as text/plain.
            return httpx.Response(200, json={"results": [], "last_seq": 0})
        lines = json.dumps(row(1)) + "\n\n" + json.dumps({"last_seq": "1-g1AAAA"}) + "\n"
        return httpx.Response(200, headers={"content-type": "text/plain"}, content=lines.encode())

    feed = make_feed(handler)
    chunks: list[FeedChunk] = []
    async for chunk in feed.follow(None):
        chunks.append(chunk)
        if len(chunks) == 3:
            break
    assert feeds == ["eventsource", "continuous"]
    assert chunks[0].changes[0].id == "d1" and chunks[0].live
    assert chunks[1].idle  # a blank heartbeat line
    assert chunks[2].seq == "1-g1AAAA" and chunks[2].idle  # CouchDB's end of feed
    assert feed.active_mode == "continuous"


async def test_explicit_eventsource_on_a_server_without_it_is_terminal() -> None:
    feed = make_feed(
        lambda request: httpx.Response(200, json={"results": [], "last_seq": 0}),
        mode="eventsource",
    )
    with pytest.raises(SourceError, match="does not offer feed=eventsource"):
        async for _ in feed.follow(None):
            pass


async def test_a_stream_that_fails_reconnects_from_the_last_seq() -> None:
    sinces: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sinces.append(request.url.params.get("since"))
        if len(sinces) == 1:
            return httpx.Response(502)
        return httpx.Response(200, content=(json.dumps(row(4)) + "\n").encode())

    feed = make_feed(handler, mode="continuous")
    async for chunk in feed.follow("3-g1AAAA"):
        assert chunk.changes[0].id == "d4"
        break
    assert sinces == ["3-g1AAAA", "3-g1AAAA"]


async def test_longpoll() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["feed"] == "longpoll"
        return httpx.Response(200, json={"results": [row(1)], "last_seq": "1-g1AAAA"})

    feed = make_feed(handler, mode="longpoll")
    async for chunk in feed.follow(None):
        assert chunk.changes[0].id == "d1" and chunk.seq == "1-g1AAAA" and chunk.idle
        break


async def test_count_pending_uses_pending_or_counts_pages() -> None:
    def couchdb(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"results": [row(1)], "last_seq": "1-x", "pending": 41})

    assert await make_feed(couchdb).count_pending("0-x") == 42

    def pouchdb(request: httpx.Request) -> httpx.Response:
        limit = int(request.url.params["limit"])
        since = int(request.url.params.get("since", 0))
        rows = [row(n) for n in range(since + 1, min(since + limit, 25) + 1)]
        return httpx.Response(200, json={"results": rows, "last_seq": since + len(rows)})

    assert await make_feed(pouchdb).count_pending(None, page=10) == 25
    assert await make_feed(pouchdb).count_pending(20, page=10) == 5


async def test_last_change_id() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["descending"] == "true"
        return httpx.Response(200, json={"results": [row(9)], "last_seq": "9-x"})

    assert await make_feed(handler).last_change_id() == "d9"
    empty = make_feed(lambda r: httpx.Response(200, json={"results": [], "last_seq": 0}))
    assert await empty.last_change_id() is None


def test_peek_last_seq_reads_the_top_level_key_from_the_tail() -> None:
    from couchdb_replicator.feed import _peek_last_seq

    body = {
        "results": [{"id": "a", "doc": {"last_seq": "a doc field", "x": 'say "last_seq": 1'}}],
        "last_seq": '12-g1AAAA"\\x',
        "pending": 3,
    }
    assert _peek_last_seq(json.dumps(body).encode()) == (True, '12-g1AAAA"\\x')
    assert _peek_last_seq(b'{"results":[],"last_seq":42}') == (True, 42)
    assert _peek_last_seq(b'{"results":[]}') == (False, None)


async def test_the_next_pages_are_requested_before_the_current_one_is_parsed() -> None:
    import asyncio

    sinces: list[str | None] = []
    release = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        since = request.url.params.get("since")
        sinces.append(since)
        if since == "4-g1AAAA":
            await release.wait()
            body = {"results": [row(5)], "last_seq": "5-g1AAAA", "pending": 0}
            return httpx.Response(200, json=body)
        n = 2 if since is None else 4
        return httpx.Response(
            200, json={"results": [row(n - 1), row(n)], "last_seq": f"{n}-g1AAAA"}
        )

    settings = ConnectionSettings.from_url("couchdb://admin:s3cret@couch.test:5984/db")
    client = AsyncCouchDBClient(settings, transport=httpx.MockTransport(handler))
    feed = ChangesFeed(client, page_size=2, backoff=Backoff(0.001, 0.002))
    pages = feed.pages(None)
    first = await anext(pages)
    assert [c.id for c in first.changes] == ["d1", "d2"]
    await asyncio.sleep(0.01)
    # Pages 2 and 3 were asked for while page 1 was handed out, each as soon as the
    # page before it arrived; page 3 is still on its way, so nothing further is asked.
    assert sinces == [None, "2-g1AAAA", "4-g1AAAA"]
    second = await anext(pages)
    await asyncio.sleep(0.01)
    assert [c.id for c in second.changes] == ["d3", "d4"] and len(sinces) == 3
    release.set()
    rest = [c async for c in pages]
    assert [c.seq for c in rest] == ["5-g1AAAA"] and rest[0].idle
    # The short page 3 ended the reading; the read-ahead may have asked one page past it.
    assert sinces[:3] == [None, "2-g1AAAA", "4-g1AAAA"] and sinces[3:] in ([], ["5-g1AAAA"])


async def test_a_full_page_that_says_pending_zero_still_gets_its_next_page() -> None:
    """CouchDB's "pending": 0 stops the read-ahead, not the reading: a page that is full
    is followed by one more request, which a change written meanwhile may fill."""
    sinces: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        since = request.url.params.get("since")
        sinces.append(since)
        if since == "4-g1AAAA":  # written after page 2 said nothing was pending
            body = {"results": [row(5)], "last_seq": "5-g1AAAA", "pending": 0}
            return httpx.Response(200, json=body)
        n = 2 if since is None else 4
        rows = [row(n - 1), row(n)]
        return httpx.Response(
            200, json={"results": rows, "last_seq": f"{n}-g1AAAA", "pending": 4 - n}
        )

    feed = make_feed(handler, page_size=2)
    chunks = await asyncio.wait_for(_all(feed.pages(None)), 5)
    assert [c.id for chunk in chunks for c in chunk.changes] == ["d1", "d2", "d3", "d4", "d5"]
    assert sinces == [None, "2-g1AAAA", "4-g1AAAA"]


async def _all(pages: Any) -> list[Any]:
    return [c async for c in pages]


async def test_no_page_is_read_ahead_past_a_pending_of_zero() -> None:
    sinces: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        since = request.url.params.get("since")
        sinces.append(since)
        n = 0 if since is None else int(since.split("-")[0])
        rows = [row(n + 1), row(n + 2)] if n < 4 else [row(n + 1)]
        end = {"last_seq": f"{n + len(rows)}-g1AAAA", "pending": max(0, 5 - n - len(rows))}
        return httpx.Response(200, json={"results": rows, **end})

    feed = make_feed(handler, page_size=2)
    chunks = [c async for c in feed.pages(None)]
    assert [c.seq for c in chunks] == ["2-g1AAAA", "4-g1AAAA", "5-g1AAAA"]
    await asyncio.sleep(0.05)
    assert sinces == [None, "2-g1AAAA", "4-g1AAAA"]  # CouchDB said nothing follows


async def test_read_ahead_holds_at_most_two_unread_pages_and_drops_a_wrong_guess() -> None:
    import asyncio

    sinces: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        since = request.url.params.get("since")
        sinces.append(since)
        if since == "bogus":  # a since CouchDB never sent: an empty page, for all it knows
            return httpx.Response(200, json={"results": [], "last_seq": "bogus"})
        n = 0 if since is None else int(since.split("-")[0])
        # Page 3's text ends with a "last_seq" inside an object: the guess is wrong.
        body = {"results": [row(n + 1), row(n + 2)], "last_seq": f"{n + 2}-g1AAAA"}
        text = json.dumps(body)
        if n == 4:
            text = text[:-1] + ', "x": {"last_seq": "bogus"}}'
        return httpx.Response(200, content=text.encode())

    settings = ConnectionSettings.from_url("couchdb://admin:s3cret@couch.test:5984/db")
    client = AsyncCouchDBClient(settings, transport=httpx.MockTransport(handler))
    feed = ChangesFeed(client, page_size=2, backoff=Backoff(0.001, 0.002))
    pages = feed.pages(None)
    first = await anext(pages)
    await asyncio.sleep(0.05)
    assert [c.id for c in first.changes] == ["d1", "d2"]
    assert sinces == [None, "2-g1AAAA", "4-g1AAAA"]  # two unread pages, no more
    second = await anext(pages)
    await asyncio.sleep(0.05)
    assert [c.id for c in second.changes] == ["d3", "d4"]
    assert sinces[3:] == ["bogus"]  # room for one more, from page 3's (wrong) tail
    third = await anext(pages)
    assert [c.id for c in third.changes] == ["d5", "d6"] and third.seq == "6-g1AAAA"
    fourth = await anext(pages)  # page 3 parsed says 6: the read-ahead is asked again
    assert [c.id for c in fourth.changes] == ["d7", "d8"] and "6-g1AAAA" in sinces
    await pages.aclose()
