"""PEP 249 exceptions, and the CouchDB errors that are also PEP 249 errors.

Every CouchDB failure is raised as a class with two bases: one says what CouchDB
answered (``Conflict``, ``Unauthorized`` …), the other which PEP 249 category it falls in
(``IntegrityError``, ``OperationalError`` …), so callers can catch either. Errors are
chosen by HTTP status and CouchDB ``error`` code, never by message text. Messages name
the database and document; they never contain a password.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadRequest",
    "Conflict",
    "ConnectionFailed",
    "CouchDBError",
    "DataError",
    "DatabaseError",
    "Error",
    "Forbidden",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "InvalidConfiguration",
    "InvalidResponse",
    "NoUsableIndex",
    "NotFound",
    "NotSupportedError",
    "OperationalError",
    "PreconditionFailed",
    "ProgrammingError",
    "RequestTooLarge",
    "ServerError",
    "TooManyRequests",
    "Unauthorized",
    "Warning",
]


class Warning(Exception):
    """Important warnings, such as data truncation (PEP 249)."""


class Error(Exception):
    """Base of every error this driver raises (PEP 249)."""


class InterfaceError(Error):
    """The driver was misused or misconfigured, not the database (PEP 249)."""


class DatabaseError(Error):
    """An error reported by, or about, the database (PEP 249)."""


class DataError(DatabaseError):
    """A value cannot be stored or processed (PEP 249)."""


class OperationalError(DatabaseError):
    """The server is unreachable, refused the credentials, or failed (PEP 249)."""


class IntegrityError(DatabaseError):
    """A write conflicts with what is stored: duplicate id, stale revision (PEP 249)."""


class InternalError(DatabaseError):
    """The driver's own state is inconsistent (PEP 249)."""


class ProgrammingError(DatabaseError):
    """Bad SQL, a missing database, wrong parameters (PEP 249)."""


class NotSupportedError(DatabaseError):
    """The statement is valid SQL that CouchDB cannot answer exactly (PEP 249)."""


class InvalidConfiguration(InterfaceError, ValueError):
    """A connection URL or setting breaks a rule; raised before any request is sent."""


class CouchDBError(DatabaseError):
    """An error answered by a CouchDB server (or the failure to reach one).

    ``status`` is the HTTP status (None when no answer came), ``error`` and ``reason``
    are CouchDB's own fields, ``database`` and ``doc_id`` say what was addressed.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error: str | None = None,
        reason: str | None = None,
        database: str | None = None,
        doc_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.reason = reason
        self.database = database
        self.doc_id = doc_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.args[0]!r}, status={self.status!r})"


class ConnectionFailed(CouchDBError, OperationalError):
    """No answer: connection refused, DNS failure, or a timeout."""


class Unauthorized(CouchDBError, OperationalError):
    """401: the server refused the credentials."""


class Forbidden(CouchDBError, OperationalError):
    """403: the user may not do this."""


class NotFound(CouchDBError, ProgrammingError):
    """404: the database or document does not exist."""


class Conflict(CouchDBError, IntegrityError):
    """409: the document exists, or was changed since the revision given."""


class PreconditionFailed(CouchDBError, IntegrityError):
    """412: e.g. the database already exists."""


class BadRequest(CouchDBError, ProgrammingError):
    """400: the server rejected the request as malformed."""


class NoUsableIndex(BadRequest):
    """400: ``_find`` cannot sort (or use the named index) without a suitable index."""


class RequestTooLarge(CouchDBError, DataError):
    """413: a document or request body exceeds the server's size limits."""


class TooManyRequests(CouchDBError, OperationalError):
    """429: the server is rate limiting; raised once the retries are spent."""


class ServerError(CouchDBError, OperationalError):
    """5xx: the server failed; 502/503/504 are retried for idempotent requests."""


class InvalidResponse(CouchDBError, OperationalError):
    """A success status whose body is not the JSON CouchDB sends (e.g. a proxy's page)."""


_BY_STATUS: dict[int, type[CouchDBError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    412: PreconditionFailed,
    413: RequestTooLarge,
    429: TooManyRequests,
}

# CouchDB's ``error`` codes that refine the status. PouchDB Server answers an unsortable
# _find with 400 ``bad_request`` "Cannot sort on field(s)…", CouchDB with
# ``no_usable_index``: both mean the same to a driver.
_BY_ERROR: dict[str, type[CouchDBError]] = {
    "no_usable_index": NoUsableIndex,
    "unauthorized": Unauthorized,
    "forbidden": Forbidden,
    "conflict": Conflict,
    "file_exists": PreconditionFailed,
    "not_found": NotFound,
}


def error_class(status: int, error: str | None, reason: str | None) -> type[CouchDBError]:
    """The exception class for an HTTP status and CouchDB ``error`` code."""
    if error in _BY_ERROR and (status < 500):
        cls = _BY_ERROR[error]
    elif status >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status, CouchDBError)
    # The one message test: PouchDB Server has no error code for an unsortable _find,
    # only this reason text (COUCHDB-SERVERS.md); CouchDB sends ``no_usable_index``.
    if cls is BadRequest and reason and reason.startswith("Cannot sort on field"):
        cls = NoUsableIndex
    return cls


def describe_target(database: str | None, doc_id: str | None) -> str:
    if database and doc_id:
        return f"document {doc_id!r} in database {database!r}"
    if database:
        return f"database {database!r}"
    return "the server"


def error_from_response(
    status: int,
    body: Any,
    *,
    method: str,
    database: str | None,
    doc_id: str | None,
) -> CouchDBError:
    """Build the typed error for a non-2xx answer (``body`` is the parsed JSON, if any)."""
    error = reason = None
    if isinstance(body, dict):
        error = body.get("error") if isinstance(body.get("error"), str) else None
        # PouchDB Server puts the explanation in ``message`` for some errors.
        raw_reason = body.get("reason") or body.get("message")
        reason = raw_reason if isinstance(raw_reason, str) else None
    cls = error_class(status, error, reason)
    detail = reason or error or "no reason given"
    message = f"{method} on {describe_target(database, doc_id)} failed: {status} {error or ''}"
    message = f"{message.rstrip()}: {detail}"
    return cls(message, status=status, error=error, reason=reason, database=database, doc_id=doc_id)
