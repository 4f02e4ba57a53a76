"""Errors a user of the dialect meets: typed, clear, and free of credentials."""

from __future__ import annotations

import socket
import time
import urllib.parse

import pytest
import sqlalchemy as sa
from sqlalchemy import exc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_names_host_and_port_quickly() -> None:
    port = _free_port()
    engine = sa.create_engine(f"couchdb://u:sekrit@127.0.0.1:{port}/db")
    started = time.monotonic()
    with pytest.raises(exc.OperationalError) as err, engine.connect() as conn:
        conn.execute(sa.text("SELECT id FROM t")).all()
    assert time.monotonic() - started < 10
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message and "running" in message
    assert "sekrit" not in message and "sekrit" not in repr(err.value)


def test_wrong_password_is_operational_error_naming_the_user(couchdb_url: str) -> None:
    parts = urllib.parse.urlsplit(couchdb_url)
    # A throwaway user: CouchDB locks out an account after repeated failed logins.
    bad = parts._replace(netloc=f"nobody_here:wrong-pw@{parts.hostname}:{parts.port}")
    engine = sa.create_engine(urllib.parse.urlunsplit(bad))
    with pytest.raises(exc.OperationalError) as err, engine.connect() as conn:
        conn.execute(sa.text("SELECT id FROM t")).all()
    assert "nobody_here" in str(err.value)
    assert "wrong-pw" not in str(err.value)


def test_bad_urls_fail_before_any_request() -> None:
    for url, rule in [
        ("couchdb://u:p@127.0.0.1:5984/", "database"),
        ("couchdb://u:p@127.0.0.1:5984/Upper", "lowercase"),
        ("couchdb://u:p@127.0.0.1:5984/1db", "start"),
    ]:
        engine = sa.create_engine(url)
        with pytest.raises(exc.DBAPIError) as err, engine.connect():
            pass
        assert rule in str(err.value), url
