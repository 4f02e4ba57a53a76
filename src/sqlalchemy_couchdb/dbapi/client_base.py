"""What the sync and async CouchDB clients share: request building, answers, retries.

The clients differ only in how they send a :class:`~.operations.Call` and how they
sleep between retries; everything a request means is decided here once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from .exceptions import (
    ConnectionFailed,
    CouchDBError,
    InvalidConfiguration,
    InvalidResponse,
    Unauthorized,
    describe_target,
    error_from_response,
)
from .operations import (
    Call,
    ChangesResult,
    db_path,
    doc_path,
    find_body,
    json_param,
    parse_changes,
    parse_find,
)
from .retry import RetryPolicy
from .settings import ConnectionSettings, validate_database_name

__all__ = ["ClientBase"]

log = logging.getLogger(__name__)

_RETRY = object()
#: Absolute request URLs kept per client; beyond this many paths (one-off document ids)
#: the cache starts over. Statements reuse a handful of paths (``_find``, ``_bulk_docs``).
_URL_CACHE_SIZE = 512


def _is_connect_failure(exc: httpx.TransportError) -> bool:
    # Nothing reached the server: safe to retry an idempotent request.
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))


def _database_name(name: str | None, default: str | None) -> str:
    chosen = name if name is not None else default
    if chosen is None:
        raise InvalidConfiguration("no database given, and the URL names none")
    return validate_database_name(chosen) if name is not None else chosen


class ClientBase:
    """Settings, retry policy and the meaning of every request; no I/O."""

    def __init__(self, settings: ConnectionSettings, *, retry: RetryPolicy | None = None) -> None:
        self.settings = settings
        self.retry = retry or RetryPolicy(
            settings.retries, settings.backoff_base, settings.backoff_cap
        )
        self._urls: dict[str, httpx.URL] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.settings.redacted_url()}>"

    @property
    def database(self) -> str:
        """The database named by the URL (required for document operations)."""
        if self.settings.database is None:
            raise InvalidConfiguration("this client's URL names no database")
        return self.settings.database

    # -- answers -------------------------------------------------------------------------

    def _interpret(self, call: Call[Any], response: httpx.Response, attempt: int) -> Any:
        """The call's result, ``_RETRY``, or raise the typed error for the answer."""
        status = response.status_code
        log.debug("%s %s -> %s", call.method, call.path, status)
        if status < 400:
            try:
                body = json.loads(response.content) if response.content else None
            except ValueError:
                return InvalidResponse(
                    f"{call.method} on {describe_target(call.database, call.doc_id)}: "
                    f"the answer ({status}, {response.headers.get('content-type', 'no type')}) "
                    "is not JSON; is the URL pointing at CouchDB?",
                    status=status,
                    database=call.database,
                    doc_id=call.doc_id,
                )
            return call.parse(body)
        if status == 404 and call.allow_404:
            return call.missing
        if self.retry.should_retry_status(status, attempt, call.idempotent):
            return _RETRY
        try:
            body = json.loads(response.content) if response.content else None
        except ValueError:
            body = None
        error = error_from_response(
            status, body, method=call.method, database=call.database, doc_id=call.doc_id
        )
        if isinstance(error, Unauthorized):
            who = f"user {self.settings.username!r}" if self.settings.username else "no user"
            error.args = (f"{error.args[0]} (authenticating as {who}; check the credentials)",)
        return error

    def _transport_failure(
        self, call: Call[Any], exc: httpx.TransportError, attempt: int
    ) -> CouchDBError | None:
        """None to retry, else the error to raise for a request that got no answer."""
        # (A read timeout on a call with ``on_read_timeout`` is handled by the caller.)
        if _is_connect_failure(exc) and self.retry.should_retry_connect(attempt, call.idempotent):
            log.debug("%s %s: %s; retrying", call.method, call.path, type(exc).__name__)
            return None
        if isinstance(exc, httpx.TimeoutException):
            what = f"timed out ({type(exc).__name__})"
            hint = "raise ?timeout= or ?connect_timeout= in the URL if the server is slow"
        elif isinstance(exc, httpx.ConnectError):
            what = f"could not connect ({exc or type(exc).__name__})"
            hint = "check that CouchDB is running and that host and port in the URL are right"
        else:
            # The request may have reached the server: a write may or may not have happened.
            what = f"lost the connection ({exc or type(exc).__name__})"
            hint = "the server or a proxy closed it; check the server's logs"
        return ConnectionFailed(
            f"{call.method} to CouchDB at {self.settings.address} {what}: {hint}",
            database=call.database,
            doc_id=call.doc_id,
        )

    def _url(self, path: str) -> httpx.URL:
        """The absolute URL of a call's path, parsed once per path.

        Given a relative path, httpx parses it and merges it into ``base_url`` on every
        request: two URL parses, a fifth of the client-side cost of a cached point query
        (bench/: ``sync.client_cost``). An absolute ``httpx.URL`` is used as it is.
        """
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()
            url = self._urls[path] = httpx.URL(self.settings.base_url + path)
        return url

    def _request_kwargs(self, call: Call[Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if call.params:
            kwargs["params"] = call.params
        if call.json is not None:
            kwargs["content"] = json.dumps(call.json, separators=(",", ":")).encode()
            kwargs["headers"] = {"Content-Type": "application/json", **(call.headers or {})}
        elif call.headers:
            kwargs["headers"] = dict(call.headers)
        if call.timeout is not None:
            # Only the wait for the answer changes; connecting keeps its own limit.
            kwargs["timeout"] = httpx.Timeout(call.timeout, connect=self.settings.connect_timeout)
        return kwargs

    # -- server and databases -----------------------------------------------------------

    def _server_info(self) -> Call[dict[str, Any]]:
        return Call("GET", "/")

    def _create_database(self, name: str | None) -> Call[dict[str, Any]]:
        db = _database_name(name, self.settings.database)
        return Call("PUT", db_path(db), database=db, idempotent=False)

    def _delete_database(self, name: str | None, missing_ok: bool) -> Call[Any]:
        db = _database_name(name, self.settings.database)
        return Call("DELETE", db_path(db), database=db, allow_404=missing_ok)

    def _database_info(self, name: str | None) -> Call[dict[str, Any]]:
        db = _database_name(name, self.settings.database)
        return Call("GET", db_path(db), database=db)

    def _database_exists(self, name: str | None) -> Call[bool]:
        db = _database_name(name, self.settings.database)
        return Call("HEAD", db_path(db), lambda _: True, database=db, allow_404=True, missing=False)

    # -- documents ------------------------------------------------------------------------

    def _get(self, doc_id: str, rev: str | None, missing_ok: bool) -> Call[Any]:
        db = self.database
        params = {"rev": rev} if rev else None
        return Call(
            "GET",
            doc_path(db, doc_id),
            params=params,
            database=db,
            doc_id=doc_id,
            allow_404=missing_ok,
        )

    def _create(self, doc: Mapping[str, Any]) -> Call[dict[str, Any]]:
        db = self.database
        doc_id = doc.get("_id")
        if doc_id:
            # PUT with an id is idempotent in effect: a replay gets 409, never a duplicate.
            return Call("PUT", doc_path(db, doc_id), json=doc, database=db, doc_id=doc_id)
        return Call("POST", db_path(db), json=doc, database=db, idempotent=False)

    def _put(self, doc: Mapping[str, Any]) -> Call[dict[str, Any]]:
        db = self.database
        doc_id = doc.get("_id")
        if not doc_id:
            raise InvalidConfiguration("put() needs a document with an _id")
        return Call("PUT", doc_path(db, doc_id), json=doc, database=db, doc_id=doc_id)

    def _delete(self, doc_id: str, rev: str) -> Call[dict[str, Any]]:
        db = self.database
        if not rev:
            # CouchDB answers 409 without a rev; PouchDB Server deletes the current one.
            raise InvalidConfiguration(f"deleting document {doc_id!r} needs its current rev")
        return Call("DELETE", doc_path(db, doc_id), params={"rev": rev}, database=db, doc_id=doc_id)

    def _bulk(self, chunk: Sequence[Mapping[str, Any]], new_edits: bool) -> Call[Any]:
        db = self.database
        body: dict[str, Any] = {"docs": chunk}
        if not new_edits:
            body["new_edits"] = False
        # Every document carries an _id (see bulk_chunks): a replay conflicts, never doubles.
        return Call("POST", f"{db_path(db)}/_bulk_docs", json=body, database=db)

    def _all_docs(
        self,
        *,
        keys: Sequence[str] | None,
        startkey: Any,
        endkey: Any,
        include_docs: bool,
        limit: int | None,
        skip: int,
        descending: bool,
        inclusive_end: bool,
    ) -> Call[dict[str, Any]]:
        db = self.database
        params: dict[str, Any] = {}
        if include_docs:
            params["include_docs"] = "true"
        if startkey is not None:
            params["startkey"] = json_param(startkey)
        if endkey is not None:
            params["endkey"] = json_param(endkey)
        if limit is not None:
            params["limit"] = limit
        if skip:
            params["skip"] = skip
        if descending:
            params["descending"] = "true"
        if not inclusive_end:
            params["inclusive_end"] = "false"
        if keys is not None:
            return Call(
                "POST",
                f"{db_path(db)}/_all_docs",
                params=params,
                json={"keys": list(keys)},
                database=db,
            )
        return Call("GET", f"{db_path(db)}/_all_docs", params=params, database=db)

    # -- Mango ----------------------------------------------------------------------------

    def _find(self, selector: Mapping[str, Any], **options: Any) -> Call[Any]:
        db = self.database
        return Call(
            "POST",
            f"{db_path(db)}/_find",
            parse_find,
            json=find_body(selector, **options),
            database=db,
        )

    def _explain(self, selector: Mapping[str, Any], **options: Any) -> Call[dict[str, Any]]:
        db = self.database
        return Call(
            "POST", f"{db_path(db)}/_explain", json=find_body(selector, **options), database=db
        )

    def _create_index(
        self,
        fields: Sequence[Any],
        name: str | None,
        ddoc: str | None,
        partial_filter_selector: Mapping[str, Any] | None,
    ) -> Call[dict[str, Any]]:
        db = self.database
        index: dict[str, Any] = {"fields": list(fields)}
        if partial_filter_selector is not None:
            index["partial_filter_selector"] = partial_filter_selector
        body: dict[str, Any] = {"index": index, "type": "json"}
        if name:
            body["name"] = name
        if ddoc:
            body["ddoc"] = ddoc.removeprefix("_design/")
        # Creating an existing index answers {"result": "exists"}: safe to repeat.
        return Call("POST", f"{db_path(db)}/_index", json=body, database=db)

    def _list_indexes(self) -> Call[list[dict[str, Any]]]:
        db = self.database
        return Call(
            "GET",
            f"{db_path(db)}/_index",
            lambda body: list(body.get("indexes", [])),
            database=db,
        )

    def _delete_index(self, ddoc: str, name: str) -> Call[dict[str, Any]]:
        db = self.database
        # "_design/<name>" travels as one segment, "_design%2F<name>": CouchDB decodes each
        # path segment and accepts the full id there (mango_httpd), while PouchDB Server's
        # route takes one segment and needs the full id (a bare name is a 400 there).
        ddoc_id = ddoc if ddoc.startswith("_design/") else f"_design/{ddoc}"
        return Call(
            "DELETE",
            f"{db_path(db)}/_index/{quote_segment(ddoc_id)}/json/{quote_segment(name)}",
            database=db,
            doc_id=ddoc_id,
        )

    # -- changes and _local ---------------------------------------------------------------

    def _changes(
        self,
        *,
        since: Any,
        feed: str,
        limit: int | None,
        include_docs: bool,
        timeout_ms: int | None,
        style: str | None,
        descending: bool,
    ) -> Call[ChangesResult]:
        if feed not in ("normal", "longpoll"):
            raise InvalidConfiguration(
                f"changes() reads feed=normal or feed=longpoll, not {feed!r}; the "
                "replicator's feed module follows the streaming feeds"
            )
        db = self.database
        params: dict[str, Any] = {"feed": feed}
        if since is not None:
            params["since"] = since
        if limit is not None:
            params["limit"] = limit
        if include_docs:
            params["include_docs"] = "true"
        if style:
            params["style"] = style
        if descending:
            params["descending"] = "true"
        client_timeout = None
        if feed == "longpoll":
            wait_ms = timeout_ms if timeout_ms is not None else 60_000
            if wait_ms < 0:
                raise InvalidConfiguration(f"timeout_ms must be 0 or more, got {wait_ms}")
            params["timeout"] = wait_ms
            # PouchDB Server ignores ``timeout`` on longpoll: stop waiting ourselves,
            # a little after CouchDB would have answered (its answer carries a last_seq).
            wait = wait_ms / 1000
            client_timeout = wait + min(5.0, 1.0 + wait / 10)
        return Call(
            "GET",
            f"{db_path(db)}/_changes",
            parse_changes,
            params=params,
            database=db,
            timeout=client_timeout,
            # PouchDB Server gzips a feed when asked and then sends nothing until the end.
            headers={"Accept-Encoding": "identity"},
            # Nothing happened: no rows, and resume from where this call started.
            on_read_timeout=(
                (lambda: ChangesResult([], since, None)) if feed == "longpoll" else None
            ),
        )

    def _get_local(self, doc_id: str) -> Call[dict[str, Any] | None]:
        db = self.database
        local_id = doc_id if doc_id.startswith("_local/") else f"_local/{doc_id}"
        return Call("GET", doc_path(db, local_id), database=db, doc_id=local_id, allow_404=True)

    def _put_local(self, doc_id: str, doc: Mapping[str, Any]) -> Call[dict[str, Any]]:
        db = self.database
        local_id = doc_id if doc_id.startswith("_local/") else f"_local/{doc_id}"
        return Call("PUT", doc_path(db, local_id), json=dict(doc), database=db, doc_id=local_id)


def quote_segment(value: str) -> str:
    """One URL path segment: every "/" and reserved character escaped."""
    return quote(value, safe="")
