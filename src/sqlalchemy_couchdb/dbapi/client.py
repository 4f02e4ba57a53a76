"""The synchronous CouchDB client, on ``httpx.Client`` with keep-alive pooling."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from .client_base import _RETRY, ClientBase
from .exceptions import CouchDBError, PreconditionFailed
from .operations import (
    DEFAULT_BULK_CHUNK,
    DEFAULT_FIND_PAGE,
    BulkResult,
    Call,
    ChangesResult,
    FindPager,
    FindResult,
    bulk_chunks,
    match_bulk_results,
)
from .retry import RetryPolicy
from .settings import ConnectionSettings

__all__ = ["CouchDBClient"]

T = TypeVar("T")


class CouchDBClient(ClientBase):
    """A CouchDB server and (optionally) one database on it, over one connection pool.

    Errors are typed (:mod:`.exceptions`); idempotent requests are retried on connect
    errors, 429 and 502/503/504 with capped full-jitter backoff.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(settings, retry=retry)
        self.http = httpx.Client(transport=transport, **settings.httpx_options())

    @classmethod
    def from_url(cls, url: str, *, require_database: bool = True, **kwargs: Any) -> CouchDBClient:
        return cls(ConnectionSettings.from_url(url, require_database=require_database), **kwargs)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> CouchDBClient:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def run(self, call: Call[T]) -> T:
        """Send one call, retrying as the policy allows, and return its parsed result."""
        attempt = 0
        kwargs = self._request_kwargs(call)
        while True:
            try:
                response = self.http.request(call.method, self._url(call.path), **kwargs)
            except httpx.TransportError as exc:
                if isinstance(exc, httpx.ReadTimeout) and call.on_read_timeout is not None:
                    return call.on_read_timeout()
                error = self._transport_failure(call, exc, attempt)
                if error is not None:
                    raise error from exc
            else:
                outcome = self._interpret(call, response, attempt)
                if isinstance(outcome, CouchDBError):
                    raise outcome
                if outcome is not _RETRY:
                    return outcome
            time.sleep(self.retry.delay(attempt))
            attempt += 1

    # -- server and databases -----------------------------------------------------------

    def server_info(self) -> dict[str, Any]:
        return self.run(self._server_info())

    def create_database(self, name: str | None = None, *, exist_ok: bool = False) -> bool:
        """Create the database; False when it existed and ``exist_ok`` is set."""
        try:
            self.run(self._create_database(name))
        except PreconditionFailed:
            if not exist_ok:
                raise
            return False
        return True

    def delete_database(self, name: str | None = None, *, missing_ok: bool = False) -> None:
        self.run(self._delete_database(name, missing_ok))

    def database_info(self, name: str | None = None) -> dict[str, Any]:
        return self.run(self._database_info(name))

    def database_exists(self, name: str | None = None) -> bool:
        return self.run(self._database_exists(name))

    # -- documents ------------------------------------------------------------------------

    def get(self, doc_id: str, *, rev: str | None = None) -> dict[str, Any]:
        return self.run(self._get(doc_id, rev, missing_ok=False))

    def get_or_none(self, doc_id: str) -> dict[str, Any] | None:
        return self.run(self._get(doc_id, None, missing_ok=True))

    def create(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """Store a new document (``PUT`` when it has an ``_id``, else ``POST``)."""
        return self.run(self._create(doc))

    def put(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """Create or update a document; an update carries its current ``_rev``."""
        return self.run(self._put(doc))

    def delete(self, doc_id: str, rev: str) -> dict[str, Any]:
        return self.run(self._delete(doc_id, rev))

    def bulk_docs(
        self,
        docs: Sequence[Mapping[str, Any]],
        *,
        chunk_size: int = DEFAULT_BULK_CHUNK,
        new_edits: bool = True,
    ) -> list[BulkResult]:
        """Write documents in chunks; one result per input document, in input order.

        Not atomic: some documents may fail (``result.error``) while the rest are stored.
        """
        results: list[BulkResult] = []
        for chunk in bulk_chunks(docs, chunk_size):
            results.extend(
                match_bulk_results(
                    chunk, self.run(self._bulk(chunk, new_edits)), new_edits=new_edits
                )
            )
        return results

    def all_docs(
        self,
        *,
        keys: Sequence[str] | None = None,
        startkey: Any = None,
        endkey: Any = None,
        include_docs: bool = False,
        limit: int | None = None,
        skip: int = 0,
        descending: bool = False,
        inclusive_end: bool = True,
    ) -> dict[str, Any]:
        return self.run(
            self._all_docs(
                keys=keys,
                startkey=startkey,
                endkey=endkey,
                include_docs=include_docs,
                limit=limit,
                skip=skip,
                descending=descending,
                inclusive_end=inclusive_end,
            )
        )

    # -- Mango ----------------------------------------------------------------------------

    def find(
        self,
        selector: Mapping[str, Any],
        *,
        limit: int = DEFAULT_FIND_PAGE,
        skip: int = 0,
        fields: Sequence[str] | None = None,
        sort: Sequence[Any] | None = None,
        use_index: str | Sequence[str] | None = None,
        bookmark: str | None = None,
    ) -> FindResult:
        """One ``_find`` request (always with an explicit ``limit``)."""
        return self.run(
            self._find(
                selector,
                limit=limit,
                skip=skip,
                fields=fields,
                sort=sort,
                use_index=use_index,
                bookmark=bookmark,
            )
        )

    def iter_find(
        self,
        selector: Mapping[str, Any],
        *,
        fields: Sequence[str] | None = None,
        sort: Sequence[Any] | None = None,
        use_index: str | Sequence[str] | None = None,
        page_size: int = DEFAULT_FIND_PAGE,
        limit: int | None = None,
        skip: int = 0,
    ) -> Iterator[dict[str, Any]]:
        """Every matching document, page by page, until exhausted or ``limit`` reached."""
        pager = FindPager(
            self.database,
            selector,
            fields=fields,
            sort=sort,
            use_index=use_index,
            page_size=page_size,
            limit=limit,
            skip=skip,
        )
        while (call := pager.next_call()) is not None:
            yield from pager.accept(self.run(call))

    def explain(self, selector: Mapping[str, Any], **options: Any) -> dict[str, Any]:
        options.setdefault("limit", DEFAULT_FIND_PAGE)
        return self.run(self._explain(selector, **options))

    def create_index(
        self,
        fields: Sequence[Any],
        *,
        name: str | None = None,
        ddoc: str | None = None,
        partial_filter_selector: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        return self.run(self._create_index(fields, name, ddoc, partial_filter_selector))

    def list_indexes(self) -> list[dict[str, Any]]:
        return self.run(self._list_indexes())

    def delete_index(self, ddoc: str, name: str) -> dict[str, Any]:
        return self.run(self._delete_index(ddoc, name))

    # -- changes and _local ---------------------------------------------------------------

    def changes(
        self,
        *,
        since: Any = None,
        feed: str = "normal",
        limit: int | None = None,
        include_docs: bool = False,
        timeout_ms: int | None = None,
        style: str | None = None,
        descending: bool = False,
    ) -> ChangesResult:
        """One ``_changes`` answer (``normal`` or ``longpoll``); seqs are opaque."""
        return self.run(
            self._changes(
                since=since,
                feed=feed,
                limit=limit,
                include_docs=include_docs,
                timeout_ms=timeout_ms,
                style=style,
                descending=descending,
            )
        )

    def get_local(self, doc_id: str) -> dict[str, Any] | None:
        return self.run(self._get_local(doc_id))

    def put_local(self, doc_id: str, doc: Mapping[str, Any]) -> dict[str, Any]:
        return self.run(self._put_local(doc_id, doc))
