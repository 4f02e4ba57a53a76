"""The DB-API on its own (PEP 249), without SQLAlchemy, against a real server."""

from __future__ import annotations

import datetime as dt
import decimal
import sys
import warnings
from collections.abc import Iterator

import pytest

from sqlalchemy_couchdb import dbapi
from sqlalchemy_couchdb.dbapi import exceptions


@pytest.fixture
def conn(couchdb_url: str) -> Iterator[dbapi.Connection]:
    connection = dbapi.connect(couchdb_url)
    cur = connection.cursor()
    cur.execute("CREATE TABLE t (id VARCHAR PRIMARY KEY, rev VARCHAR, n INTEGER, s VARCHAR)")
    yield connection
    connection.close()


def test_module_globals_and_no_sqlalchemy_import() -> None:
    assert dbapi.apilevel == "2.0"
    assert dbapi.threadsafety in (1, 2, 3)
    assert dbapi.paramstyle == "named"
    for name in (
        "Warning",
        "Error",
        "InterfaceError",
        "DatabaseError",
        "DataError",
        "OperationalError",
        "IntegrityError",
        "InternalError",
        "ProgrammingError",
        "NotSupportedError",
    ):
        assert issubclass(getattr(dbapi, name), Exception)
    assert issubclass(dbapi.IntegrityError, dbapi.DatabaseError)
    assert issubclass(dbapi.DatabaseError, dbapi.Error)
    assert issubclass(exceptions.Conflict, dbapi.IntegrityError)
    assert issubclass(exceptions.Unauthorized, dbapi.OperationalError)


def test_dbapi_imports_no_sqlalchemy() -> None:
    import subprocess

    code = (
        "import sys, sqlalchemy_couchdb.dbapi, sqlalchemy_couchdb.sql;"
        "bad = [m for m in sys.modules if m == 'sqlalchemy' or m.startswith('sqlalchemy.')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_description_rowcount_and_fetch(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    cur.executemany(
        "INSERT INTO t (id, n, s) VALUES (:id, :n, :s)",
        [{"id": f"k{i}", "n": i, "s": f"v{i}"} for i in range(7)],
    )
    assert cur.rowcount == 7
    cur.execute("SELECT id, n FROM t WHERE n >= :m ORDER BY n", {"m": 2})
    assert [d[0] for d in cur.description] == ["id", "n"]
    assert cur.fetchone() == ("k2", 2)
    cur.arraysize = 2
    assert cur.fetchmany() == [("k3", 3), ("k4", 4)]
    assert cur.fetchall() == [("k5", 5), ("k6", 6)]
    assert cur.fetchone() is None
    cur.execute("SELECT id, n FROM t WHERE n > 100")
    assert [d[0] for d in cur.description] == ["id", "n"]  # also for an empty result
    assert cur.fetchall() == []
    cur.execute("UPDATE t SET n = n * 10 WHERE n < :m", {"m": 3})
    assert cur.rowcount == 3
    cur.execute("DELETE FROM t WHERE s LIKE 'v%'")
    assert cur.rowcount == 7


def test_qmark_parameters(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    cur.execute("INSERT INTO t (id, n) VALUES (?, ?)", ("q1", 5))
    cur.execute("SELECT n FROM t WHERE id = ?", ("q1",))
    assert cur.fetchall() == [(5,)]


def test_python_values_are_encoded(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    cur.execute(
        "INSERT INTO t (id, s, n) VALUES (:id, :s, :n)",
        {"id": "d", "s": dt.date(2024, 2, 29), "n": decimal.Decimal("3")},
    )
    cur.execute("SELECT s, n FROM t WHERE id = 'd'")
    assert cur.fetchone() == ("2024-02-29", 3)


def test_commit_is_a_no_op_and_rollback_warns_after_writes(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    conn.commit()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        conn.rollback()  # nothing written since: silent
    cur.execute("INSERT INTO t (id, n) VALUES ('w', 1)")
    with pytest.warns(dbapi.RollbackWarning, match="cannot undo"):
        conn.rollback()
    cur.execute("SELECT n FROM t WHERE id = 'w'")
    assert cur.fetchall() == [(1,)]  # still there: writes are durable


def test_errors_are_typed(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    cur.execute("INSERT INTO t (id, n) VALUES ('x', 1)")
    with pytest.raises(dbapi.IntegrityError, match="'x'"):
        cur.execute("INSERT INTO t (id, n) VALUES ('x', 2)")
    with pytest.raises(dbapi.NotSupportedError, match="JOIN"):
        cur.execute("SELECT a.id FROM t a JOIN t b ON a.id = b.id")
    with pytest.raises(dbapi.ProgrammingError):
        cur.execute("SELEKT nonsense")
    with pytest.raises(dbapi.ProgrammingError, match="no value given"):
        cur.execute("SELECT n FROM t WHERE id = :missing", {})
    with pytest.raises(dbapi.ProgrammingError, match="no result set"):
        cur.fetchall()  # the failed statement left no result to fetch


def test_closed_connection_and_cursor_refuse_work(conn: dbapi.Connection) -> None:
    cur = conn.cursor()
    cur.close()
    with pytest.raises(dbapi.InterfaceError):
        cur.execute("SELECT n FROM t")
    conn.close()
    with pytest.raises(dbapi.InterfaceError):
        conn.cursor()


def test_bad_url_fails_before_any_request() -> None:
    with pytest.raises(dbapi.InterfaceError, match="database"):
        dbapi.connect("couchdb://u:p@127.0.0.1:5984/")
    with pytest.raises(dbapi.InterfaceError, match="lowercase"):
        dbapi.connect("couchdb://u:p@127.0.0.1:5984/Bad")
    with pytest.raises(dbapi.InterfaceError, match="scheme"):
        dbapi.connect("mongodb://u:p@127.0.0.1:5984/db")
