"""Fixtures shared by unit and integration tests: servers, and a fresh database per test.

Which CouchDB-compatible server the tests use, first match wins:

1. ``COUCHDB_URL`` (``http://admin:pw@host:5984``, no database): a real CouchDB 3.x;
2. ``COUCHDB_TESTCONTAINERS=1`` with a working Docker: a ``couchdb:3`` container;
3. otherwise the local PouchDB server from ``testserver/`` (needs Node.js), in memory.

Fixtures talk plain httpx on purpose: they must not depend on the client under test.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy
import testserver

INTEGRATION_DIR = Path(__file__).parent / "integration"
COUCHDB_IMAGE = "couchdb:3"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _in_ci() -> bool:
    """CI must not pass by skipping: there a missing server is a failure."""
    return _env_flag("CI")


def redact(url: str) -> str:
    """``url`` with its password replaced, for messages (credentials never get printed)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration/ ``integration`` (``-m "not integration"``)."""
    for item in items:
        if item.path.is_relative_to(INTEGRATION_DIR):
            item.add_marker(pytest.mark.integration)


def pytest_report_header(config: pytest.Config) -> str:
    if os.environ.get("COUCHDB_URL"):
        return f"couchdb server: COUCHDB_URL={redact(os.environ['COUCHDB_URL'])}"
    if _env_flag("COUCHDB_TESTCONTAINERS"):
        return f"couchdb server: testcontainers {COUCHDB_IMAGE} (when Docker works)"
    return "couchdb server: local PouchDB test server (testserver/, in memory)"


# --- CouchDB-compatible server ------------------------------------------------------------


def _wait_for_status(url: str, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url + path, timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{redact(url)}{path} did not answer 200 within {timeout:.0f} s")
        time.sleep(0.5)


def _docker_works() -> bool:
    try:
        import docker

        docker.from_env().ping()
    except Exception:
        return False
    return True


def _testcontainers_couchdb() -> Iterator[str]:
    from testcontainers.core.container import DockerContainer

    user, password = "admin", secrets.token_hex(8)
    container = (
        DockerContainer(COUCHDB_IMAGE)
        .with_env("COUCHDB_USER", user)
        .with_env("COUCHDB_PASSWORD", password)
        .with_exposed_ports(5984)
    )
    container.start()
    try:
        host = container.get_container_host_ip()
        url = f"http://{user}:{password}@{host}:{container.get_exposed_port(5984)}"
        _wait_for_status(url, "/_up", timeout=60)
        # A fresh single node lacks its system databases and logs errors until they exist.
        for system_db in ("_users", "_replicator"):
            httpx.put(f"{url}/{system_db}", timeout=10).raise_for_status()
        yield url
    finally:
        container.stop()


@pytest.fixture(scope="session")
def couchdb_server_url() -> Iterator[str]:
    """URL of a CouchDB-compatible server with admin credentials and no database."""
    if url := os.environ.get("COUCHDB_URL"):
        url = url.rstrip("/")
        if urllib.parse.urlsplit(url).path:
            pytest.fail(f"COUCHDB_URL must name a server, not a database: {redact(url)}")
        try:
            response = httpx.get(url + "/", timeout=10)
        except httpx.TransportError as err:
            pytest.fail(f"COUCHDB_URL={redact(url)} does not answer: {err}")
        if response.status_code != 200:
            pytest.fail(f"COUCHDB_URL={redact(url)}: GET / answered {response.status_code}")
        # GET / is public; listing databases needs the admin credentials the tests rely on.
        status = httpx.get(url + "/_all_dbs", timeout=10).status_code
        if status != 200:
            pytest.fail(f"COUCHDB_URL={redact(url)}: GET /_all_dbs answered {status}, not 200")
        yield url
        return
    if _env_flag("COUCHDB_TESTCONTAINERS"):
        if _docker_works():
            yield from _testcontainers_couchdb()
            return
        warnings.warn(
            "COUCHDB_TESTCONTAINERS is set but Docker does not answer; "
            "using the local PouchDB test server instead",
            stacklevel=1,
        )
    with testserver.start_server() as server:
        yield server.url


@pytest.fixture(scope="session")
def couchdb_server_info(couchdb_server_url: str) -> dict[str, Any]:
    """The server's ``GET /`` answer: ``"couchdb" in info`` for Apache CouchDB, while
    PouchDB Server answers ``{"express-pouchdb": "Welcome!", ...}``."""
    info: dict[str, Any] = httpx.get(couchdb_server_url + "/", timeout=10).json()
    return info


@pytest.fixture(scope="session")
def couchdb_http(couchdb_server_url: str) -> Iterator[httpx.Client]:
    """A plain httpx client for the server, to seed and inspect data independently of the
    project's own client."""
    parts = urllib.parse.urlsplit(couchdb_server_url)
    auth = None
    if parts.username is not None:
        username = urllib.parse.unquote(parts.username)
        auth = httpx.BasicAuth(username, urllib.parse.unquote(parts.password or ""))
    # Credentials go to Basic auth, not the base URL: httpx quotes request URLs in errors.
    base_url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    with httpx.Client(base_url=base_url, auth=auth, timeout=30) as client:
        yield client


@pytest.fixture
def couchdb_database(couchdb_http: httpx.Client) -> Iterator[str]:
    """Name of a fresh, empty database, deleted after the test."""
    # CouchDB names: lowercase, starting with a letter.
    name = f"test_{secrets.token_hex(6)}"
    response = couchdb_http.put(f"/{name}")
    if response.status_code not in (201, 202):
        pytest.fail(f"cannot create database {name}: {response.status_code} {response.text}")
    yield name
    response = couchdb_http.delete(f"/{name}")
    if response.status_code not in (200, 202, 404):  # 404: the test deleted it itself
        pytest.fail(f"cannot delete database {name}: {response.status_code} {response.text}")


def dialect_url(server_url: str, database: str) -> str:
    """``couchdb://user:pass@host:port/<database>`` for a server URL; https adds use_ssl."""
    parts = urllib.parse.urlsplit(server_url)
    https = parts.scheme == "https"
    # The dialect's default port is CouchDB's 5984, so spell out the scheme's default.
    port = parts.port or (443 if https else 80)
    userinfo = parts.netloc.rpartition("@")[0]  # keeps the percent-encoding as given
    netloc = f"{userinfo}@{parts.hostname}:{port}" if userinfo else f"{parts.hostname}:{port}"
    return f"couchdb://{netloc}/{database}" + ("?use_ssl=true" if https else "")


@pytest.fixture
def couchdb_url(couchdb_server_url: str, couchdb_database: str) -> str:
    """The dialect's URL for a fresh database: ``couchdb://user:pass@host:port/test_…``."""
    return dialect_url(couchdb_server_url, couchdb_database)


@pytest.fixture
def restartable_couchdb_server(tmp_path: Path) -> Iterator[testserver.RunningServer]:
    """A local on-disk test server of its own, for tests that restart the server and expect
    the data to survive. Skipped with ``COUCHDB_URL``: a remote server cannot be restarted."""
    if os.environ.get("COUCHDB_URL"):
        pytest.skip("COUCHDB_URL is set: restarting a remote CouchDB is not possible")
    with testserver.start_server(data_dir=tmp_path / "couchdb-data") as server:
        yield server


# --- Relational servers -------------------------------------------------------------------


def _sql_server_url(env_var: str, default: str, default_port: int) -> str:
    """Return the URL once the server answers ``SELECT 1``.

    Skip only when nothing listens on the port (the server is absent); fail when it listens
    but refuses the connection (wrong credentials, a missing driver): that is a bug to see.
    Under CI an absent server fails too, so a broken setup cannot pass by skipping.
    """
    url = os.environ.get(env_var) or default
    parsed = sqlalchemy.make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    if parsed.host:
        try:
            socket.create_connection((parsed.host, parsed.port or default_port), 3).close()
        except OSError as err:
            message = f"no server at {shown} ({err}); start it or set {env_var}"
            if _in_ci():
                pytest.fail(message)
            pytest.skip(message)
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
    except Exception as err:
        pytest.fail(f"{shown} listens but cannot be used: {err}")
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def postgresql_url() -> str:
    """SQLAlchemy URL of the PostgreSQL test database (env ``POSTGRESQL_URL``)."""
    return _sql_server_url(
        "POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test", 5432
    )


@pytest.fixture(scope="session")
def mariadb_url() -> str:
    """SQLAlchemy URL of the MariaDB test database (env ``MARIADB_URL``)."""
    return _sql_server_url("MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test", 3306)
