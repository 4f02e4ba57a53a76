"""
.. dialect:: couchdb+httpx
    :name: CouchDB over httpx
    :dbapi: sqlalchemy_couchdb.dbapi
    :connectstring: couchdb://user:password@host:5984/database

The sync driver (``httpx.Client``) is what ``couchdb://`` uses; ``couchdb+async://``
(also ``couchdb+httpx_async://``, and ``couchdb://`` given to ``create_async_engine``)
uses the native async driver on ``httpx.AsyncClient``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import pool
from sqlalchemy.engine.url import URL

from .base import CouchDBDialect

__all__ = ["dialect", "dialect_async"]


class CouchDBDialect_httpx(CouchDBDialect):
    driver = "httpx"
    supports_statement_cache = True

    @classmethod
    def get_async_dialect_cls(cls, url: URL) -> type[CouchDBDialect]:
        return CouchDBDialect_httpx_async


class CouchDBDialect_httpx_async(CouchDBDialect):
    driver = "httpx_async"
    is_async = True
    has_terminate = True
    supports_statement_cache = True
    supports_server_side_cursors = True

    @classmethod
    def import_dbapi(cls) -> Any:
        from .async_adapter import AsyncDBAPI

        return AsyncDBAPI()

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.AsyncAdaptedQueuePool

    def get_driver_connection(self, connection: Any) -> Any:
        return connection._connection

    def do_terminate(self, dbapi_connection: Any) -> None:
        dbapi_connection.terminate()


dialect = CouchDBDialect_httpx
dialect_async = CouchDBDialect_httpx_async
