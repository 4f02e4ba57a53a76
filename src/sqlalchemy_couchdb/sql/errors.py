"""The PEP 249 exceptions the translator raises, looked up when first raised.

They live in :mod:`sqlalchemy_couchdb.dbapi.exceptions`, and the DB-API's modules import
this package while they load. Importing ``sqlalchemy_couchdb.dbapi`` here at import time
would make ``import sqlalchemy_couchdb.sql`` (before the DB-API) circular, so the lookup
waits until an error is raised; the classes are the DB-API's own either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..dbapi.exceptions import DataError, NotSupportedError, ProgrammingError

__all__ = ["DataError", "NotSupportedError", "ProgrammingError"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from ..dbapi import exceptions

        return getattr(exceptions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
