"""Connection settings from a URL, and bad input refused before any request is sent."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from sqlalchemy_couchdb.dbapi import exceptions as exc
from sqlalchemy_couchdb.dbapi.async_client import AsyncCouchDBClient
from sqlalchemy_couchdb.dbapi.client import CouchDBClient
from sqlalchemy_couchdb.dbapi.settings import ConnectionSettings

PASSWORD = "pw-Zq7#secret"
ENCODED_PASSWORD = "pw-Zq7%23secret"


class NoRequests:
    """A transport that records every request; bad input must leave it empty."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"ok": True})

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


# -- good URLs ----------------------------------------------------------------------------


def test_full_url_is_parsed() -> None:
    s = ConnectionSettings.from_url(f"couchdb://alice:{ENCODED_PASSWORD}@db.example:6984/shop")
    assert (s.host, s.port, s.database, s.username) == ("db.example", 6984, "shop", "alice")
    assert s.password == PASSWORD  # percent-decoded
    assert s.use_ssl is False
    assert s.base_url == "http://db.example:6984"


def test_default_port_is_couchdbs() -> None:
    assert ConnectionSettings.from_url("couchdb://localhost/shop").port == 5984


def test_use_ssl_switches_to_https() -> None:
    s = ConnectionSettings.from_url("couchdb://localhost:6984/shop?use_ssl=true")
    assert s.use_ssl is True
    assert s.base_url == "https://localhost:6984"


@pytest.mark.parametrize(
    "scheme", ["couchdb", "couchdb+httpx", "couchdb+async", "couchdb+httpx_async", "http"]
)
def test_every_dialect_scheme_is_accepted(scheme: str) -> None:
    assert ConnectionSettings.from_url(f"{scheme}://h:1/db").database == "db"


def test_timeouts_pool_and_retries_come_from_the_query_string() -> None:
    s = ConnectionSettings.from_url(
        "couchdb://h/db?timeout=7.5&connect_timeout=1.5&max_connections=3"
        "&max_keepalive_connections=2&retries=5"
    )
    assert (s.timeout, s.connect_timeout) == (7.5, 1.5)
    assert (s.max_connections, s.max_keepalive_connections, s.retries) == (3, 2, 5)
    client = CouchDBClient(s, transport=NoRequests().transport)
    try:
        assert client.http.timeout == httpx.Timeout(7.5, connect=1.5)
        assert client.retry.retries == 5
    finally:
        client.close()


def test_ipv6_host_is_bracketed_in_urls() -> None:
    s = ConnectionSettings.from_url("couchdb://u:p@[::1]:5984/db")
    assert s.host == "::1"
    assert s.base_url == "http://[::1]:5984"
    assert s.redacted_url() == "http://u:***@[::1]:5984/db"


def test_database_with_slash_travels_escaped() -> None:
    seen = NoRequests()
    client = CouchDBClient.from_url("couchdb://h/team%2Fsales", transport=seen.transport)
    try:
        assert client.database == "team/sales"
        client.database_info()
        assert seen.requests[0].url.raw_path == b"/team%2Fsales"
    finally:
        client.close()


def test_system_databases_are_allowed() -> None:
    assert ConnectionSettings.from_url("couchdb://h/_users").database == "_users"


def test_basic_auth_is_sent_with_the_decoded_password() -> None:
    seen = NoRequests()
    url = f"couchdb://alice:{ENCODED_PASSWORD}@h/db"
    with CouchDBClient.from_url(url, transport=seen.transport) as client:
        client.server_info()
    expected = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert seen.requests[0].headers["authorization"] == f"Basic {expected}"


def test_server_url_without_database_when_not_required() -> None:
    s = ConnectionSettings.from_url("couchdb://h:5984", require_database=False)
    assert s.database is None


# -- bad input: refused before any request -------------------------------------------------


def _refused(url: str) -> exc.InvalidConfiguration:
    """Parse ``url`` through both clients; each must raise before sending anything."""
    seen = NoRequests()
    with pytest.raises(exc.InvalidConfiguration) as sync_info:
        CouchDBClient.from_url(url, transport=seen.transport)
    with pytest.raises(exc.InvalidConfiguration) as async_info:
        AsyncCouchDBClient.from_url(url, transport=seen.transport)
    assert seen.requests == []
    assert str(sync_info.value) == str(async_info.value)
    return sync_info.value


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("couchdb://u:p@localhost:5984", "must end in /<database>"),
        ("couchdb://u:p@localhost:5984/", "must end in /<database>"),
        ("couchdb://u:p@localhost:abc/db", "port must be a number from 1 to 65535"),
        ("couchdb://u:p@localhost:99999/db", "port must be a number from 1 to 65535"),
        ("couchdb://u:p@localhost:0/db", "port must be a number from 1 to 65535"),
        ("mysql://u:p@localhost:5984/db", "unknown URL scheme 'mysql'"),
        ("localhost:5984/db", "looks like couchdb://"),
        ("couchdb:///db", "no host name"),
        ("couchdb://u:p@localhost/MyDb", "starts with an uppercase letter"),
        ("couchdb://u:p@localhost/shopA", "uppercase letters are not allowed"),
        ("couchdb://u:p@localhost/1shop", "starts with a digit"),
        ("couchdb://u:p@localhost/my%20shop", "contains ' '"),
        ("couchdb://u:p@localhost/shop!", "contains '!'"),
        ("couchdb://u:p@localhost/_secret", "starts with '_'"),
        ("couchdb://u:p@localhost/" + "a" * 239, "CouchDB allows at most 238"),
        ("couchdb://h/db?use_ssl=maybe", "use_ssl='maybe' must be true or false"),
        ("couchdb://h/db?timeout=soon", "timeout='soon' must be a number"),
        ("couchdb://h/db?timeout=0", "must be at least"),
        ("couchdb://h/db?retries=1.5", "retries='1.5' must be a whole number"),
        ("couchdb://h/db?max_connections=0", "max_connections='0' must be at least 1"),
        ("couchdb://h/db?bogus=1", "unknown URL option(s) (bogus)"),
    ],
)
def test_bad_url_names_the_rule(url: str, rule: str) -> None:
    assert rule in str(_refused(url))


def test_a_238_character_name_is_the_limit() -> None:
    assert ConnectionSettings.from_url("couchdb://h/" + "a" * 238).database == "a" * 238


def test_invalid_configuration_is_an_interface_error_and_a_value_error() -> None:
    error = _refused("couchdb://h/Bad")
    assert isinstance(error, exc.InterfaceError)
    assert isinstance(error, exc.Error)
    assert isinstance(error, ValueError)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.create_database("Sales"),
        lambda c: c.database_info("2024_sales"),
        lambda c: c.database_exists("sales db"),
        lambda c: c.delete_database("x" * 300),
    ],
)
def test_bad_database_name_in_a_call_sends_nothing(call: Callable[[CouchDBClient], Any]) -> None:
    seen = NoRequests()
    with (
        CouchDBClient.from_url("couchdb://h/db", transport=seen.transport) as client,
        pytest.raises(exc.InvalidConfiguration, match="database name"),
    ):
        call(client)
    assert seen.requests == []


async def test_bad_database_name_in_an_async_call_sends_nothing() -> None:
    seen = NoRequests()
    async with AsyncCouchDBClient.from_url("couchdb://h/db", transport=seen.transport) as client:
        with pytest.raises(exc.InvalidConfiguration, match="starts with an uppercase letter"):
            await client.create_database("Sales")
    assert seen.requests == []


def test_document_operation_without_a_database_is_refused() -> None:
    seen = NoRequests()
    url = "couchdb://h:5984"
    with (
        CouchDBClient.from_url(url, require_database=False, transport=seen.transport) as c,
        pytest.raises(exc.InvalidConfiguration, match="names no database"),
    ):
        c.get("doc")
    assert seen.requests == []


# -- the password stays out of every message and repr ---------------------------------------


def test_settings_and_clients_never_show_the_password() -> None:
    url = f"couchdb://alice:{ENCODED_PASSWORD}@h:5984/db"
    settings = ConnectionSettings.from_url(url)
    client = CouchDBClient(settings, transport=NoRequests().transport)
    aclient = AsyncCouchDBClient(settings, transport=NoRequests().transport)
    try:
        for text in (
            str(settings),
            repr(settings),
            settings.redacted_url(),
            settings.base_url,
            str(client),
            repr(client),
            repr(aclient),
        ):
            assert PASSWORD not in text
            assert ENCODED_PASSWORD not in text
        assert "alice" in repr(client)  # the user is named, so the reader knows who
    finally:
        client.close()


@pytest.mark.parametrize(
    "url",
    [
        # A password with an unescaped "/" makes the rest look like the database name.
        "couchdb://alice:1/pw-Zq7#secret@h/db",
        # ... with an unescaped "?" it looks like a query option.
        "couchdb://alice:pw-Zq7?secret@h/db",
        "couchdb://alice:1?pw-Zq7secret@h/db",
        "couchdb://alice:pw-Zq7#secret@h:bad/db",
        "couchdb://alice:pw-Zq7#secret@h/Bad",
        "couchdb://alice:pw-Zq7#secret@h/db?bogus=1",
        "nosql://alice:pw-Zq7#secret@h/db",
    ],
)
def test_bad_url_errors_never_show_the_password(url: str) -> None:
    error = _refused(url)
    for part in ("pw-Zq7", "secret"):
        assert part not in str(error)
        assert part not in repr(error)
