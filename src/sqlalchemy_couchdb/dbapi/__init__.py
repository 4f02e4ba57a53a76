"""A PEP 249 driver for CouchDB 3.x over HTTP, usable without SQLAlchemy."""

from __future__ import annotations

from .async_client import AsyncCouchDBClient
from .client import CouchDBClient
from .exceptions import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Warning,
)
from .settings import ConnectionSettings

__all__ = [
    "AsyncCouchDBClient",
    "ConnectionSettings",
    "CouchDBClient",
    "DataError",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "Warning",
]
