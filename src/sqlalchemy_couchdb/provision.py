"""Provisioning hooks for SQLAlchemy's compliance suite (``sqlalchemy.testing``).

``Dialect.load_provisioning()`` imports this module when the suite configures a
``couchdb`` engine; nothing here runs in an application.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.testing.provision import (
    create_db,
    drop_db,
    update_db_opts,
)

__all__: list[str] = []


def _database_url(eng: Any, ident: str) -> Any:
    return eng.url.set(database=ident)


def _http_call(url: Any, method: str) -> None:
    from .dbapi.client import CouchDBClient
    from .dbapi.settings import ConnectionSettings

    settings = ConnectionSettings.from_url(url.render_as_string(hide_password=False))
    with CouchDBClient(settings) as client:
        if method == "create":
            client.create_database(exist_ok=True)
        else:
            client.delete_database(missing_ok=True)


@create_db.for_db("couchdb")
def _couchdb_create_db(cfg: Any, eng: Any, ident: str) -> None:
    """A database per pytest-xdist worker: ``ident`` names it."""
    _http_call(_database_url(eng, ident), "create")


@drop_db.for_db("couchdb")
def _couchdb_drop_db(cfg: Any, eng: Any, ident: str) -> None:
    _http_call(_database_url(eng, ident), "delete")


@update_db_opts.for_db("couchdb")
def _couchdb_update_db_opts(db_url: Any, db_opts: dict[str, Any], options: Any) -> None:
    # The suite's fixtures roll back after every test, on purpose; CouchDB cannot undo,
    # and the DB-API's RollbackWarning (right for applications) would only be noise here.
    connect_args = db_opts.setdefault("connect_args", {})
    connect_args.setdefault("warn_on_rollback", False)
