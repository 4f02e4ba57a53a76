"""The changes feed: what CouchDB changed, in order, from a checkpointed position.

Two ways of reading, both yielding :class:`FeedChunk` objects:

* :meth:`ChangesFeed.pages` reads the *normal* feed in pages of ``limit`` rows. It is the
  fastest way through a backlog and the only bounded one, so ``--once`` and the backfill
  before following use it.
* :meth:`ChangesFeed.follow` streams new changes for ever: ``feed=eventsource`` (resumed
  with ``Last-Event-ID``), falling back to ``continuous`` when the answer is not
  ``text/event-stream`` (PouchDB Server answers a normal feed instead), or ``longpoll``.

Every request asks for the winning revision only (``style=main_only``) with the document
included, and sends ``Accept-Encoding: identity``: PouchDB Server gzips a stream when asked
and then sends nothing. Design documents are dropped here; their seq still moves the
position. Seqs are opaque (strings on CouchDB, integers on PouchDB Server): they are
stored and sent back, never compared or parsed.

Transient failures (connection refused or dropped, timeouts, 5xx, 429, a silent stream
past the heartbeat watchdog) reconnect with full-jitter backoff from the last position
handed out — which the sink commits before it asks for more, so it is the committed one
whenever nothing is in flight. Terminal ones (401, 403, a missing database, 400) raise
:class:`~couchdb_replicator.errors.SourceError`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, TypeVar

import httpx
from httpx_sse import aconnect_sse

from sqlalchemy_couchdb.dbapi import AsyncCouchDBClient
from sqlalchemy_couchdb.dbapi.exceptions import (
    BadRequest,
    CouchDBError,
    Forbidden,
    NotFound,
    Unauthorized,
    error_from_response,
)
from sqlalchemy_couchdb.dbapi.operations import Call, db_path
from sqlalchemy_couchdb.mapping import is_design_document

from .backoff import RETRY_CAP, Backoff
from .errors import SourceError

__all__ = [
    "FEED_MODES",
    "Change",
    "ChangesFeed",
    "FeedChunk",
    "FeedMode",
    "Seq",
    "decode_seq",
    "encode_seq",
    "is_terminal",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: An opaque position in the feed: whatever the server sent (str on CouchDB, int on PouchDB).
Seq = Any
FeedMode = Literal["auto", "eventsource", "continuous", "longpoll"]
FEED_MODES: tuple[str, ...] = ("auto", "eventsource", "continuous", "longpoll")

_IDENTITY = {"Accept-Encoding": "identity"}


def encode_seq(seq: Seq) -> str:
    """A seq as text for storage: JSON keeps ``5`` and ``"5-g1A…"`` apart, unparsed."""
    return json.dumps(seq, separators=(",", ":"))


def decode_seq(text: str | None) -> Seq:
    """The seq exactly as the server sent it (None: start from the beginning)."""
    return None if text is None else json.loads(text)


def _since_param(seq: Seq) -> str:
    return seq if isinstance(seq, str) else json.dumps(seq)


class Change(NamedTuple):
    """One row of the feed: the winning revision of a document (None doc: not included).

    A tuple, not a dataclass: a backfill makes one per document, and tuples are built
    several times faster.
    """

    id: str
    rev: str | None
    seq: Seq
    deleted: bool
    doc: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Change:
        changes = row.get("changes")
        # tuple.__new__ directly: the generated __new__ is a Python call per row.
        return _new_tuple(
            cls,
            (
                row["id"],
                changes[0].get("rev") if changes else None,
                row.get("seq"),
                bool(row.get("deleted")),
                row.get("doc"),
            ),
        )


_new_tuple = tuple.__new__


@dataclass(slots=True)
class FeedChunk:
    """Changes read together, and the position reached after them.

    ``seq`` is None when the chunk moves nothing (a heartbeat). ``idle`` says the server had
    nothing more to send at that moment (a short page, a heartbeat): once the chunk is
    committed, the copy was equal to CouchDB then. ``live`` marks a change streamed as it
    happened: when nothing is buffered behind it, committing it leaves the copy current.
    ``pending`` is the server's count of rows after this chunk, when it gives one (CouchDB
    does, PouchDB Server does not).
    """

    changes: list[Change] = field(default_factory=list)
    seq: Seq = None
    idle: bool = False
    pending: int | None = None
    #: Streamed as it happened: with nothing buffered behind it, the copy is current.
    live: bool = False


def is_terminal(exc: BaseException) -> bool:
    """True when retrying cannot help: bad credentials, no permission, no database, 400."""
    return isinstance(exc, (Unauthorized, Forbidden, NotFound, BadRequest))


def _source_error(exc: CouchDBError, where: str) -> SourceError:
    if isinstance(exc, NotFound):
        return SourceError(
            f"the source database does not exist at {where}; create it or fix the URL"
        )
    if isinstance(exc, Unauthorized):
        return SourceError(f"CouchDB at {where} refused the credentials (401); check user/password")
    if isinstance(exc, Forbidden):
        return SourceError(
            f"CouchDB at {where} refused access (403): the user may not read this database"
        )
    return SourceError(f"CouchDB at {where} rejected the request: {exc}")


class ChangesFeed:
    """Reads ``_changes`` of the client's database; see the module docstring."""

    def __init__(
        self,
        client: AsyncCouchDBClient,
        *,
        mode: FeedMode = "auto",
        page_size: int = 1000,
        chunk_size: int | None = None,
        heartbeat: float = 5.0,
        backoff: Backoff | None = None,
        max_attempts: int | None = None,
        on_reconnect: Callable[[BaseException], None] | None = None,
    ) -> None:
        if mode not in FEED_MODES:
            raise ValueError(f"feed mode must be one of {', '.join(FEED_MODES)}")
        self.client = client
        self.mode = mode
        self.page_size = page_size
        self.chunk_size = min(chunk_size or page_size, page_size)
        self.heartbeat = heartbeat
        self.backoff = backoff or Backoff(0.5, RETRY_CAP)
        self.max_attempts = max_attempts
        self._on_reconnect = on_reconnect
        self._eventsource_refused = mode == "continuous"
        self.active_mode: str = "normal"

    @property
    def where(self) -> str:
        return self.client.settings.redacted_url()

    @property
    def _path(self) -> str:
        return f"{db_path(self.client.database)}/_changes"

    @property
    def _watchdog(self) -> float:
        # Three missed heartbeats and the connection is presumed dead (a half-open TCP
        # connection would otherwise hang the daemon for ever).
        return self.heartbeat * 3 + 2

    # -- one-shot requests ---------------------------------------------------------------

    async def _request(self, call: Call[Any]) -> Any:
        try:
            return await self.client.run(call)
        except CouchDBError as exc:
            if is_terminal(exc):
                raise _source_error(exc, self.where) from exc
            raise

    async def database_info(self) -> dict[str, Any]:
        """``GET /db``: checks that the source exists and that the credentials work."""
        result: dict[str, Any] = await self._request(
            Call("GET", db_path(self.client.database), database=self.client.database)
        )
        return result

    async def last_change_id(self) -> str | None:
        """The id of the newest row of the feed (None: the database has no changes).

        ``--once`` stops after the page holding this id: its row sits at the
        ``update_seq`` of the moment, or later if the document changed since. Reading up
        to it covers everything written before, without comparing seqs.
        """
        call: Call[Any] = Call(
            "GET",
            self._path,
            params={"descending": "true", "limit": 1},
            headers=_IDENTITY,
            database=self.client.database,
        )
        body = await self._retrying(lambda: self._request(call))
        results = body.get("results") or []
        return str(results[0]["id"]) if results else None

    async def count_pending(self, since: Seq, *, page: int = 10_000) -> int:
        """How many rows the feed holds after ``since`` (the backlog).

        CouchDB answers ``pending``; PouchDB Server does not, so the rows are counted in
        pages without documents (it treats ``limit=0`` as 1, hence ``limit=1`` first).
        """
        params: dict[str, Any] = {"limit": 1}
        if since is not None:
            params["since"] = _since_param(since)
        body = await self._request(
            Call("GET", self._path, params=params, headers=_IDENTITY, database=self.client.database)
        )
        results = body.get("results") or []
        if isinstance(body.get("pending"), int):
            return int(body["pending"]) + len(results)
        count = 0
        position = since
        while True:
            params = {"limit": page}
            if position is not None:
                params["since"] = _since_param(position)
            body = await self._request(
                Call(
                    "GET",
                    self._path,
                    params=params,
                    headers=_IDENTITY,
                    database=self.client.database,
                )
            )
            rows = body.get("results") or []
            count += len(rows)
            if len(rows) < page:
                return count
            position = body.get("last_seq")

    # -- the normal feed in pages ---------------------------------------------------------

    async def pages(
        self, since: Seq, *, stop_after_id: str | None = None
    ) -> AsyncIterator[FeedChunk]:
        """Pages of the normal feed from ``since`` until one comes back short.

        With ``stop_after_id``, also stop after the page that holds that document id.

        Pages are requested ahead (:class:`_ReadAhead`): the server prepares the next
        ones while this one is parsed and written.
        """
        self.active_mode = "normal"
        position = since
        # The first page is one batch: work starts sooner, and a backlog smaller than
        # that costs one small request.
        limit = self.chunk_size
        ahead = _ReadAhead(self._page, self.page_size, _READ_AHEAD_PAGES)
        stop_marker = _plain_part(stop_after_id)
        try:
            while True:
                raw = await ahead.take(position, limit)
                asked, limit = limit, self.page_size
                body = json.loads(raw)
                rows = body.get("results") or []
                last_seq = body.get("last_seq", position)
                short = len(rows) < asked
                seen_stop = (
                    stop_after_id is not None
                    and (stop_marker is None or stop_marker in raw)
                    and any(r.get("id") == stop_after_id for r in rows)
                )
                pending = body.get("pending")
                rest: list[Change] = []
                for chunk in self._split(rows, rest):
                    yield chunk
                yield FeedChunk(
                    changes=rest,
                    seq=last_seq,
                    idle=short,
                    pending=pending if isinstance(pending, int) else None,
                )
                if short or seen_stop or last_seq is None:
                    return
                position = last_seq
        finally:
            ahead.cancel()

    async def _page(self, since: Seq, limit: int) -> bytes:
        params: dict[str, Any] = {
            "feed": "normal",
            "include_docs": "true",
            "style": "main_only",
            "limit": limit,
            # CouchDB computes a seq for every row unless told otherwise; a chunk only
            # needs the seq of its last row.
            "seq_interval": self.chunk_size,
        }
        if since is not None:
            params["since"] = _since_param(since)
        return await self._retrying(lambda: self._get_raw(params))

    async def _get_raw(self, params: dict[str, Any]) -> bytes:
        """One GET of the feed, as bytes; a terminal answer raises SourceError."""
        response = await self.client.http.get(self._path, params=params, headers=_IDENTITY)
        try:
            await self._raise_for_status(response)
        except CouchDBError as exc:
            if is_terminal(exc):
                raise _source_error(exc, self.where) from exc
            raise
        return response.content

    def _split(self, rows: list[dict[str, Any]], rest: list[Change]) -> Iterator[FeedChunk]:
        """A page as chunks of about ``chunk_size`` rows, cut at rows that carry a seq.

        Pages are large because each request costs the server a seek into its by-seq
        index; chunks keep a batch (one transaction) at ``--batch-size``. With
        ``seq_interval`` CouchDB gives every ``chunk_size``-th row a seq (PouchDB Server
        gives every row one): those rows are where a chunk may end. The changes after the
        last cut are left in ``rest``: they end the page, whose ``last_seq`` is their
        position (a chunk never lacks one).
        """
        changes: list[Change] = []
        from_row = Change.from_row
        count = 0
        last = len(rows) - 1
        for i, row in enumerate(rows):
            count += 1
            if not is_design_document(str(row.get("id"))):
                changes.append(from_row(row))
            seq = row.get("seq")
            if seq is not None and count >= self.chunk_size and i < last:
                yield FeedChunk(changes=changes, seq=seq)
                changes, count = [], 0
        rest.extend(changes)

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Make one request, backing off on transient failures; terminal ones raise."""
        while True:
            try:
                result = await attempt()
            except SourceError:
                raise
            except (CouchDBError, httpx.TransportError, ValueError) as exc:
                self._count_failure(exc)
                await asyncio.sleep(self.backoff.next_delay())
                continue
            self.backoff.reset()
            return result

    def _count_failure(self, exc: BaseException) -> None:
        attempts = self.backoff.attempt + 1
        if self.max_attempts is not None and attempts >= self.max_attempts:
            raise SourceError(
                f"CouchDB at {self.where} still failing after {attempts} attempts: {_brief(exc)}"
            ) from exc
        log.warning(
            "changes feed from %s failed (%s); retrying (attempt %d)",
            self.where,
            _brief(exc),
            attempts,
        )
        if self._on_reconnect is not None:
            self._on_reconnect(exc)

    # -- following for ever ----------------------------------------------------------------

    async def follow(self, since: Seq) -> AsyncIterator[FeedChunk]:
        """Stream changes after ``since`` for ever, reconnecting from the last seq yielded."""
        position = since
        while True:
            try:
                async for chunk in self._one_connection(position):
                    if chunk.seq is not None:
                        position = chunk.seq
                    if chunk.changes or chunk.idle:
                        self.backoff.reset()
                    yield chunk
                # A stream that ended normally (CouchDB's timeout, a longpoll answer):
                # reconnect at once.
                continue
            except SourceError:
                raise
            except CouchDBError as exc:
                if is_terminal(exc):
                    raise _source_error(exc, self.where) from exc
                self._count_failure(exc)
            except (httpx.TransportError, httpx.StreamError, ValueError, KeyError) as exc:
                # ValueError/KeyError: a line cut short by a dropped connection.
                self._count_failure(exc)
            await asyncio.sleep(self.backoff.next_delay())

    def _one_connection(self, since: Seq) -> AsyncIterator[FeedChunk]:
        if self.mode == "longpoll":
            return self._longpoll(since)
        if self.mode in ("auto", "eventsource") and not self._eventsource_refused:
            return self._eventsource(since)
        return self._continuous(since)

    def _stream_params(self, feed: str, since: Seq) -> dict[str, Any]:
        params: dict[str, Any] = {
            "feed": feed,
            "include_docs": "true",
            "style": "main_only",
            "heartbeat": int(self.heartbeat * 1000),
        }
        if since is not None:
            params["since"] = _since_param(since)
        return params

    def _stream_timeout(self) -> httpx.Timeout:
        s = self.client.settings
        return httpx.Timeout(s.timeout, connect=s.connect_timeout, read=self._watchdog)

    async def _raise_for_status(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        await response.aread()
        try:
            body = json.loads(response.content) if response.content else None
        except ValueError:
            body = None
        raise error_from_response(
            response.status_code, body, method="GET", database=self.client.database, doc_id=None
        )

    async def _eventsource(self, since: Seq) -> AsyncIterator[FeedChunk]:
        headers = dict(_IDENTITY)
        if since is not None:
            headers["Last-Event-ID"] = _since_param(since)
        async with aconnect_sse(
            self.client.http,
            "GET",
            self._path,
            params=self._stream_params("eventsource", since),
            headers=headers,
            timeout=self._stream_timeout(),
        ) as source:
            response = source.response
            content_type = response.headers.get("content-type", "")
            if response.status_code == 400 or (
                response.status_code < 400 and "text/event-stream" not in content_type
            ):
                # PouchDB Server has no eventsource feed and answers a normal one.
                if self.mode == "eventsource":
                    raise SourceError(
                        f"CouchDB at {self.where} does not offer feed=eventsource; "
                        "use --feed auto or --feed continuous"
                    )
                log.info("the server has no eventsource feed; following feed=continuous")
                self._eventsource_refused = True
                return
            await self._raise_for_status(response)
            self.active_mode = "eventsource"
            log.debug("following feed=eventsource from %r", since)
            async for event in source.aiter_sse():
                if event.event == "heartbeat":
                    yield FeedChunk(idle=True)
                    continue
                if not event.data.strip():
                    continue
                row = json.loads(event.data)
                if "last_seq" in row and "id" not in row:
                    yield FeedChunk(seq=row["last_seq"], idle=True)
                    return
                yield _chunk_of_row(row, _seq_of_event_id(event.id))

    async def _continuous(self, since: Seq) -> AsyncIterator[FeedChunk]:
        async with self.client.http.stream(
            "GET",
            self._path,
            params=self._stream_params("continuous", since),
            headers=_IDENTITY,
            timeout=self._stream_timeout(),
        ) as response:
            await self._raise_for_status(response)
            self.active_mode = "continuous"
            log.debug("following feed=continuous from %r", since)
            async for line in response.aiter_lines():
                if not line.strip():
                    yield FeedChunk(idle=True)  # a heartbeat: nothing more to send right now
                    continue
                row = json.loads(line)
                if "last_seq" in row and "id" not in row:
                    # CouchDB ends a continuous feed after its timeout; reconnect from here.
                    yield FeedChunk(seq=row["last_seq"], idle=True)
                    return
                yield _chunk_of_row(row, None)

    async def _longpoll(self, since: Seq) -> AsyncIterator[FeedChunk]:
        self.active_mode = "longpoll"
        wait_ms = int(self.heartbeat * 1000 * 6)
        params: dict[str, Any] = {
            "feed": "longpoll",
            "include_docs": "true",
            "style": "main_only",
            "timeout": wait_ms,
            "limit": self.page_size,
        }
        if since is not None:
            params["since"] = _since_param(since)
        # PouchDB Server ignores ``timeout`` on longpoll: stop waiting ourselves.
        call: Call[Any] = Call(
            "GET",
            self._path,
            params=params,
            headers=_IDENTITY,
            database=self.client.database,
            timeout=wait_ms / 1000 + 5,
            on_read_timeout=lambda: {"results": [], "last_seq": since},
        )
        body = await self.client.run(call)
        rows = body.get("results") or []
        yield FeedChunk(
            changes=[Change.from_row(r) for r in rows if not is_design_document(str(r["id"]))],
            seq=body.get("last_seq", since),
            idle=len(rows) < self.page_size,
        )


#: Pages of the normal feed read ahead of the one being written: enough that the server
#: never waits for the replicator to ask, few enough to hold a handful of MB.
_READ_AHEAD_PAGES = 2


class _ReadAhead:
    """Requests pages of the normal feed before they are needed, in order.

    One task reads page after page: a page's ``since`` is the ``last_seq`` of the one
    before, peeked from the end of its bytes (:func:`_peek_last_seq`), so the next request
    goes out the moment a page has arrived, without waiting for the event loop to get
    round to it; at most ``depth`` pages wait unread. The reader checks each guess:
    :meth:`take` with another ``since`` drops what was read ahead and starts again from
    there. Past the last page this asks for one empty page, unless the server said
    ``"pending": 0`` (CouchDB does, PouchDB Server does not).
    """

    def __init__(
        self, fetch: Callable[[Seq, int], Awaitable[bytes]], page_size: int, depth: int
    ) -> None:
        self._fetch = fetch
        self._page_size = page_size
        self._depth = depth
        self._task: asyncio.Task[None] | None = None
        self._pages: asyncio.Queue[tuple[Seq, bytes | BaseException, object]] | None = None
        #: The ``since`` the reader asks for after the last page taken (_STOPPED: none).
        self._following: object = _STOPPED

    async def take(self, since: Seq, limit: int) -> bytes:
        """The page of ``limit`` rows after ``since``."""
        if self._pages is None or self._following is _STOPPED or self._following != since:
            self.cancel()
            # The reader holds one more page while it waits to hand it over.
            self._pages = asyncio.Queue(max(1, self._depth - 1))
            self._task = asyncio.create_task(self._read(self._pages, since, limit))
        got_since, page, self._following = await self._pages.get()
        assert got_since == since
        if isinstance(page, BaseException):
            self.cancel()
            raise page
        return page

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self._task = self._pages = None
        self._following = _STOPPED

    async def _read(self, pages: asyncio.Queue[Any], since: Seq, limit: int) -> None:
        while True:
            try:
                page = await self._fetch(since, limit)
            except Exception as exc:  # handed to the reader, in order
                await pages.put((since, exc, _STOPPED))
                return
            found, guess = _peek_last_seq(page)
            if not found or guess is None or guess == since or _NOTHING_PENDING.search(page):
                await pages.put((since, page, _STOPPED))
                return
            await pages.put((since, page, guess))
            since, limit = guess, self._page_size


#: A reader that asks for nothing more.
_STOPPED = object()

#: The end of a normal-feed answer that says nothing follows (CouchDB's last key).
_NOTHING_PENDING = re.compile(rb'"pending"\s*:\s*0\s*}\s*\Z')
_LAST_SEQ = re.compile(rb'"last_seq"\s*:\s*("(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*|null)')


def _peek_last_seq(raw: bytes) -> tuple[bool, Seq]:
    """The top-level ``last_seq`` of a normal-feed answer, from its last bytes.

    It follows the results, so its key is the last ``"last_seq":`` of the text (a key
    inside a string value would have escaped quotes). Only a guess, to start the next
    request early: the caller checks it against the parsed answer.
    """
    matches = list(_LAST_SEQ.finditer(raw, max(0, len(raw) - 65536)))
    if not matches:
        return False, None
    found = matches[-1]
    try:
        return True, json.loads(found.group(1))
    except ValueError:
        return False, None


def _seq_of_event_id(event_id: str) -> Seq:
    """The seq an eventsource ``id:`` line carries (None: no id).

    CouchDB writes the *JSON* of the seq there (chttpd_db.erl): ``id: "7-g1A…"`` quoted,
    an integer bare. Taken as it is, the quotes would end up in the checkpoint and in
    ``Last-Event-ID``. Text that is not JSON is kept as sent.
    """
    if not event_id:
        return None
    try:
        return json.loads(event_id)
    except ValueError:
        return event_id


_PLAIN = re.compile(r"[A-Za-z0-9_.:-]+")


def _plain_part(doc_id: str | None) -> bytes | None:
    """The longest part of an id that no JSON encoder escapes: when a page's bytes lack
    it, no row of the page has that id, and the rows need not be looked at."""
    runs = _PLAIN.findall(doc_id or "")
    return max(runs, key=len).encode() if runs else None


def _chunk_of_row(row: dict[str, Any], event_seq: Seq) -> FeedChunk:
    # The row's own seq first; the event's id stands in when the row has none (or null).
    seq = row.get("seq")
    if seq is None:
        seq = event_seq
    if is_design_document(str(row.get("id"))):
        return FeedChunk(seq=seq, live=True)
    change = Change.from_row(row)
    if change.seq is None:
        change = change._replace(seq=seq)
    return FeedChunk(changes=[change], seq=seq, live=True)


def _brief(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
