"""SQLAlchemy's dialect compliance suite, run against CouchDB.

Run it on its own (the plugin drops plain test functions in a shared session)::

    pytest tests/compliance                          # couchdb:// (sync driver)
    pytest tests/compliance --db async               # couchdb+async:// only
    pytest tests/compliance --dbdriver httpx_async   # sync, and the backend tests async too
    pytest tests/compliance --dburi couchdb://admin:pw@host:5984/somedb

Without ``--dburi`` the run gets a database of its own, ``sqla_compliance_<hex>``, created
here before SQLAlchemy's plugin configures its engines and deleted at the end, on the
server the other tests use: ``COUCHDB_URL``, else a local test server started for the run.
The ``[db]`` URLs of ``test.cfg`` then only choose the driver.
"""

from __future__ import annotations

import os
import secrets
import urllib.parse
from typing import Any

import httpx
import pytest
from sqlalchemy.dialects import registry

# The entry points in pyproject.toml name these too; registering them here lets the suite
# run from a source tree that was never installed.
registry.register("couchdb", "sqlalchemy_couchdb.httpx", "dialect")
registry.register("couchdb.httpx", "sqlalchemy_couchdb.httpx", "dialect")
registry.register("couchdb.async", "sqlalchemy_couchdb.httpx", "dialect_async")
registry.register("couchdb.httpx_async", "sqlalchemy_couchdb.httpx", "dialect_async")

pytest.register_assert_rewrite("sqlalchemy.testing.assertions")

from sqlalchemy.testing.plugin import plugin_base  # noqa: E402
from sqlalchemy.testing.plugin import pytestplugin as _sqla  # noqa: E402
from sqlalchemy.testing.plugin.pytestplugin import *  # noqa: E402, F403

# Markers the plugin puts on tests; --strict-markers (pyproject.toml) wants them declared.
_MARKERS = {
    "backend": "runs once per configured database/driver",
    "sparse_backend": "runs on a subset of the configured databases",
    "sparse_driver_backend": "runs on a subset of the configured drivers",
    "mypy": "mypy plugin tests",
    "memory_intensive": "memory-intensive tests",
    "timing_intensive": "timing-sensitive tests",
}

#: What this run created, for pytest_sessionfinish to remove.
_run: dict[str, Any] = {}


def pytest_configure(config: pytest.Config) -> None:
    for name, help_text in _MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_text}")
    _sqla.pytest_configure(config)


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.netloc.rpartition('@')[2]}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _server_url() -> str:
    """A CouchDB-compatible server with admin credentials: COUCHDB_URL, else our own."""
    if url := os.environ.get("COUCHDB_URL"):
        return url.rstrip("/")
    import testserver

    server = testserver.start_server()
    _run["server"] = server
    return str(server.url)


def _http(server_url: str) -> httpx.Client:
    parts = urllib.parse.urlsplit(server_url)
    auth = None
    if parts.username is not None:
        auth = httpx.BasicAuth(
            urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")
        )
    base_url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return httpx.Client(base_url=base_url, auth=auth, timeout=30)


def _dialect_url(alias_url: str, server_url: str, database: str) -> str:
    """The ``[db]`` alias URL (its driver and options) aimed at our server and database."""
    from sqlalchemy.engine import make_url

    server = urllib.parse.urlsplit(server_url)
    https = server.scheme == "https"
    url = make_url(alias_url).set(
        host=server.hostname,
        port=server.port or (443 if https else 80),
        username=urllib.parse.unquote(server.username) if server.username else None,
        password=urllib.parse.unquote(server.password) if server.password else None,
        database=database,
    )
    if https:
        url = url.update_query_dict({"use_ssl": "true"})
    return url.render_as_string(hide_password=False)


def pytest_sessionstart(session: pytest.Session) -> None:
    option = session.config.option
    if not option.dburi:
        file_config = plugin_base.file_config
        tokens = option.db or ["default"]
        aliases = [a for token in tokens for a in token.replace(",", " ").split()]
        unknown = [a for a in aliases if not file_config.has_option("db", a)]
        if unknown:
            raise pytest.UsageError(f"unknown --db alias(es) {unknown}; see [db] in test.cfg")
        server_url = _server_url()
        database = f"sqla_compliance_{secrets.token_hex(4)}"
        with _http(server_url) as http:
            response = http.put(f"/{database}")
        if response.status_code not in (201, 202):
            raise pytest.UsageError(
                f"cannot create database {database} on {_redact(server_url)}: "
                f"{response.status_code} {response.text}"
            )
        _run["server_url"], _run["database"] = server_url, database
        option.dburi = [
            _dialect_url(file_config.get("db", a), server_url, database) for a in aliases
        ]
        option.db = None
    _sqla.pytest_sessionstart(session)


def pytest_sessionfinish(session: pytest.Session) -> None:
    try:
        _sqla.pytest_sessionfinish(session)
    finally:
        if "database" in _run:
            with _http(_run["server_url"]) as http:
                http.delete(f"/{_run['database']}")
        if (server := _run.pop("server", None)) is not None:
            server.stop()
