"""CouchDB operations as plain data: the request to send and how to read the answer.

The sync and async clients share everything here and differ only in how they send a
:class:`Call`; paging and chunking are written once as small state machines
(:class:`FindPager`, :func:`bulk_chunks`, :func:`match_bulk_results`).
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from .exceptions import InvalidConfiguration

__all__ = [
    "BulkResult",
    "Call",
    "FindPager",
    "FindResult",
    "bulk_chunks",
    "doc_path",
    "match_bulk_results",
]

T = TypeVar("T")

DEFAULT_FIND_PAGE = 1000
DEFAULT_BULK_CHUNK = 500


def _identity(body: Any) -> Any:
    return body


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One HTTP request and the function that turns its JSON answer into a result.

    ``missing`` is returned instead of raising when the answer is 404 and ``allow_404`` is
    set (e.g. ``database_exists``). ``database`` and ``doc_id`` only serve error messages.
    ``timeout`` overrides the client's read timeout for this request.
    """

    method: str
    path: str
    parse: Callable[[Any], T] = _identity
    params: Mapping[str, Any] | None = None
    json: Any = None
    idempotent: bool = True
    database: str | None = None
    doc_id: str | None = None
    allow_404: bool = False
    missing: Any = None
    timeout: float | None = None
    headers: Mapping[str, str] | None = None
    #: Returned instead of raising when the read times out (a longpoll that saw nothing).
    on_read_timeout: Callable[[], T] | None = None


@dataclass(frozen=True, slots=True)
class BulkResult:
    """The outcome of one document of a ``_bulk_docs`` request."""

    id: str
    rev: str | None = None
    error: str | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class FindResult:
    docs: list[dict[str, Any]]
    bookmark: str | None = None
    warning: str | None = None


def db_path(database: str) -> str:
    # A database name may contain "/", which must travel as %2F.
    return "/" + quote(database, safe="")


def doc_path(database: str, doc_id: str) -> str:
    """Path of a document; ``_design/`` and ``_local/`` keep their slash, others escape it."""
    if not isinstance(doc_id, str) or not doc_id:
        raise InvalidConfiguration(f"document id must be a non-empty string, got {doc_id!r}")
    for prefix in ("_design/", "_local/"):
        if doc_id.startswith(prefix):
            return f"{db_path(database)}/{prefix}{quote(doc_id[len(prefix) :], safe='')}"
    return f"{db_path(database)}/{quote(doc_id, safe='')}"


def json_param(value: Any) -> str:
    """View query parameters such as ``key``/``startkey`` are JSON, not plain strings."""
    return json.dumps(value, separators=(",", ":"))


def find_body(
    selector: Mapping[str, Any],
    *,
    limit: int,
    skip: int = 0,
    fields: Sequence[str] | None = None,
    sort: Sequence[Any] | None = None,
    use_index: str | Sequence[str] | None = None,
    bookmark: str | None = None,
) -> dict[str, Any]:
    # Always send an explicit limit: CouchDB's default page is 25 documents.
    body: dict[str, Any] = {"selector": selector, "limit": limit}
    if skip:
        body["skip"] = skip
    if fields is not None:
        body["fields"] = list(fields)
    if sort:
        body["sort"] = list(sort)
    if use_index:
        body["use_index"] = use_index
    if bookmark:
        body["bookmark"] = bookmark
    return body


def parse_find(body: Any) -> FindResult:
    return FindResult(
        docs=body.get("docs", []), bookmark=body.get("bookmark"), warning=body.get("warning")
    )


class FindPager:
    """Pages through a ``_find`` until it is exhausted or ``limit`` rows were read.

    CouchDB returns a bookmark that resumes the query; PouchDB Server never does, so
    paging falls back to ``skip``. Each request carries an explicit ``limit``.
    """

    def __init__(
        self,
        database: str,
        selector: Mapping[str, Any],
        *,
        fields: Sequence[str] | None = None,
        sort: Sequence[Any] | None = None,
        use_index: str | Sequence[str] | None = None,
        page_size: int = DEFAULT_FIND_PAGE,
        limit: int | None = None,
        skip: int = 0,
    ) -> None:
        if page_size < 1:
            raise InvalidConfiguration("page_size must be at least 1")
        if limit is not None and limit < 0:
            raise InvalidConfiguration(f"limit must be 0 or more, got {limit}")
        if skip < 0:
            raise InvalidConfiguration(f"skip must be 0 or more, got {skip}")
        self._database = database
        self._selector = selector
        self._fields = fields
        self._sort = sort
        self._use_index = use_index
        self._page_size = page_size
        self._remaining = limit
        self._skip = skip
        #: Rows read so far: where a skip-paged request resumes (``skip + consumed``).
        self._consumed = 0
        self._bookmark: str | None = None
        self._done = limit == 0
        self._requested = 0

    def next_call(self) -> Call[FindResult] | None:
        """The request for the next page, or None when the query is exhausted."""
        if self._done:
            return None
        size = self._page_size
        if self._remaining is not None:
            size = min(size, self._remaining)
        self._requested = size
        body = find_body(
            self._selector,
            limit=size,
            # CouchDB resumes after the bookmark and applies ``skip`` again from there
            # (mango_json_bookmark: skip => 1 + Skip), so skip travels with page one only.
            skip=0 if self._bookmark else self._skip + self._consumed,
            fields=self._fields,
            sort=self._sort,
            use_index=self._use_index,
            bookmark=self._bookmark,
        )
        return Call(
            "POST",
            f"{db_path(self._database)}/_find",
            parse_find,
            json=body,
            database=self._database,
        )

    def accept(self, page: FindResult) -> list[dict[str, Any]]:
        """Record a page's answer; returns its documents."""
        docs = page.docs
        self._consumed += len(docs)
        if self._remaining is not None:
            self._remaining -= len(docs)
            if self._remaining <= 0:
                self._done = True
        # The server stops early only when nothing more matches.
        if len(docs) < self._requested:
            self._done = True
        if page.bookmark and not self._bookmark_is_stale(page.bookmark):
            self._bookmark = page.bookmark
        elif self._bookmark is not None:
            # A server that stopped sending bookmarks: resume by position instead.
            self._bookmark = None
        return docs

    def _bookmark_is_stale(self, bookmark: str) -> bool:
        # CouchDB answers "nil" when there is no position to resume from, and repeats
        # the bookmark it was given when the page was empty.
        return bookmark in ("nil", self._bookmark)


def bulk_chunks(
    docs: Sequence[Mapping[str, Any]], chunk_size: int = DEFAULT_BULK_CHUNK
) -> Iterator[list[dict[str, Any]]]:
    """Split documents into ``_bulk_docs`` requests, giving each document an ``_id``.

    Ids are assigned here (a UUID, as CouchDB would) so that every result can be matched
    to its input by id: PouchDB Server reorders results, and CouchDB's bulk is not atomic.
    """
    if chunk_size < 1:
        raise InvalidConfiguration("chunk_size must be at least 1")
    chunk: list[dict[str, Any]] = []
    for doc in docs:
        if not isinstance(doc, Mapping):
            raise InvalidConfiguration(f"a document must be a mapping, got {type(doc).__name__}")
        item = dict(doc)
        if not item.get("_id"):
            item["_id"] = uuid.uuid4().hex
        elif not isinstance(item["_id"], str):
            # CouchDB rejects the whole request for one non-string id.
            raise InvalidConfiguration(
                f"document _id must be a string, got {type(item['_id']).__name__}"
            )
        chunk.append(item)
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def match_bulk_results(
    sent: Sequence[Mapping[str, Any]],
    answer: Sequence[Mapping[str, Any]],
    *,
    new_edits: bool = True,
) -> list[BulkResult]:
    """Per-document results in the order the documents were sent, matched by id.

    With ``new_edits=False`` (replication-style writes) CouchDB lists only the documents
    that failed and answers ``[]`` when all were stored: a document without an entry was
    stored under the ``_rev`` it was sent with.
    """
    if new_edits and len(answer) == len(sent):
        # CouchDB answers in input order: confirm it id by id and skip the matching.
        in_order = [
            BulkResult(
                doc["_id"], rev=item.get("rev"), error=item.get("error"), reason=item.get("reason")
            )
            for doc, item in zip(sent, answer, strict=True)
            if item.get("id") == doc["_id"]
        ]
        if len(in_order) == len(sent):
            return in_order
    by_id: dict[str, deque[Mapping[str, Any]]] = defaultdict(deque)
    for item in answer:
        by_id[str(item.get("id"))].append(item)
    results: list[BulkResult] = []
    for doc in sent:
        doc_id = str(doc["_id"])
        queue = by_id.get(doc_id)
        if not queue:
            if new_edits:
                results.append(
                    BulkResult(
                        doc_id, error="unknown_error", reason="no result returned by the server"
                    )
                )
            else:
                results.append(BulkResult(doc_id, rev=doc.get("_rev")))
            continue
        item = queue.popleft()
        results.append(
            BulkResult(
                doc_id,
                rev=item.get("rev"),
                error=item.get("error"),
                reason=item.get("reason"),
            )
        )
    return results


@dataclass(slots=True)
class ChangesResult:
    """One ``_changes`` answer: its rows, the seq to resume from, and what is pending."""

    results: list[dict[str, Any]] = field(default_factory=list)
    last_seq: Any = None
    pending: int | None = None


def parse_changes(body: Any) -> ChangesResult:
    return ChangesResult(
        results=body.get("results", []),
        last_seq=body.get("last_seq"),
        pending=body.get("pending"),
    )
