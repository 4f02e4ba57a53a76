"""Tables with an integer ``id`` in the copy: ``_id`` ``"<table>:<n>"`` is the row ``n``.

The dialect stores row ``n`` of such a table as the document ``"<table>:<n>"``; the copy
holds ``n`` itself, so JOINs on integer foreign keys match. Any other ``_id`` in the table
is a poison document (a dead letter naming the id and the table), never a crash.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from couchdb_replicator.errors import TargetUnavailable
from couchdb_replicator.schema import (
    ColumnSlot,
    InferredSchema,
    TableShape,
    integer_id_tables,
    is_integer_column,
)
from couchdb_replicator.values import PoisonValue, converter_for
from sqlalchemy_couchdb.dbapi.async_client import AsyncCouchDBClient
from sqlalchemy_couchdb.dbapi.retry import RetryPolicy
from sqlalchemy_couchdb.sql import ColumnSpec


def shape_of(id_type: Any, name: str = "users") -> TableShape:
    table = sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", id_type, primary_key=True),
        sa.Column("rev", sa.String(100)),
        sa.Column("name", sa.String(50)),
    )
    dialect = sqlite.dialect()
    return TableShape(
        table=table,
        slots={"name": ColumnSlot("name", "name", converter_for(table.c.name.type, dialect))},
        id_key="id",
        id_convert=converter_for(table.c.id.type, dialect),
        rev_key="rev",
        dialect=dialect,
    )


class _IntegerText(sa.TypeDecorator[int]):
    impl = sa.Integer
    cache_ok = True


@pytest.mark.parametrize(
    ("type_", "integer"),
    [
        (sa.Integer(), True),
        (sa.BigInteger(), True),
        (sa.SmallInteger(), True),
        (postgresql.BIGINT(), True),
        (_IntegerText(), True),
        (sa.String(64), False),
        (sa.Numeric(10, 0), False),
        (sa.Boolean(), False),
        (sa.Uuid(), False),
    ],
)
def test_which_id_columns_hold_integer_ids(type_: Any, integer: bool) -> None:
    assert is_integer_column(type_) is integer


@pytest.mark.parametrize(
    ("doc_id", "stored"),
    [("users:42", 42), ("users:0", 0), ("users:-7", -7), ("users:2147483647", 2147483647)],
)
def test_canonical_ids_become_their_integer(doc_id: str, stored: int) -> None:
    shape = shape_of(sa.Integer())
    row, missing = shape.row({"_id": doc_id, "_rev": "1-a", "type": "users", "name": "Ann"})
    assert shape.as_mapping(row) == {"id": stored, "rev": "1-a", "name": "Ann"}
    assert type(shape.as_mapping(row)["id"]) is int
    assert missing == []


@pytest.mark.parametrize(
    "doc_id",
    [
        "bob",  # written by another program
        "users:007",  # not canonical: "users:7" is row 7, so this one cannot be
        "users:+7",
        "users: 7",
        "users:7.0",
        "users:",
        "Users:7",  # the table name is case-sensitive
        "orders:7",  # another table's id (a document whose type changed)
        "users:7:1",
    ],
)
def test_other_ids_of_an_integer_table_are_poison_naming_id_and_table(doc_id: str) -> None:
    shape = shape_of(sa.Integer())
    with pytest.raises(PoisonValue) as caught:
        shape.row({"_id": doc_id, "_rev": "1-a", "type": "users", "name": "Ann"})
    message = str(caught.value)
    assert repr(doc_id) in message
    assert "'users'" in message and "'users:<n>'" in message and "integer" in message


def test_an_id_beyond_the_columns_range_is_poison() -> None:
    with pytest.raises(PoisonValue, match=r"field 'id'.*out of range for a INTEGER column"):
        shape_of(sa.Integer()).row({"_id": "users:2147483648", "_rev": "1-a"})
    big = shape_of(sa.BigInteger()).row({"_id": "users:2147483648", "_rev": "1-a"})[0]
    assert 2147483648 in big
    with pytest.raises(PoisonValue, match="out of range for a BIGINTEGER column"):
        shape_of(sa.BigInteger()).row({"_id": f"users:{2**63}", "_rev": "1-a"})


def test_text_id_tables_keep_every_id_as_it_is() -> None:
    shape = shape_of(sa.String(64))
    for doc_id in ("users:42", "bob", "orders:7"):
        row, _ = shape.row({"_id": doc_id, "_rev": "1-a"})
        assert shape.as_mapping(row)["id"] == doc_id
    assert shape.stored_ids(["users:42", "bob"]) == ["users:42", "bob"]
    assert not shape.integer_id


def test_deletes_look_for_the_integer_of_their_own_table_only() -> None:
    """A tombstone is deleted from every table: each integer table looks for the row its
    own ids stand for and skips ids it cannot hold (they cannot be there)."""
    users, orders = shape_of(sa.Integer()), shape_of(sa.BigInteger(), "orders")
    ids = ["users:3", "orders:3", "bob", "users:03", f"users:{2**40}", "users:-1"]
    assert users.stored_ids(ids) == [3, -1]
    assert orders.stored_ids(ids) == [3]
    sql, parameters = users.delete.batches(users.stored_ids(ids))[0]
    assert sql.startswith("DELETE FROM users WHERE users.id IN")
    assert set(parameters) == {3, -1}


def test_the_dialects_catalog_names_the_integer_id_tables() -> None:
    declared = {
        "users": [ColumnSpec("id", "INTEGER", False, True), ColumnSpec("name", "VARCHAR(50)")],
        "orders": [ColumnSpec("id", "BIGINT", False, True), ColumnSpec("user_id", "INTEGER")],
        "tags": [ColumnSpec("id", "VARCHAR(20)", False, True), ColumnSpec("n", "INTEGER")],
        "notes": [ColumnSpec("key", "INTEGER", False, True)],  # no id column
        "old": [ColumnSpec("id", "int(11)", False, True)],
    }
    assert integer_id_tables(declared) == {"users", "orders", "old"}
    assert integer_id_tables({}) == set()


def _column(name: str, type_: str) -> dict[str, Any]:
    return {"name": name, "type": type_, "nullable": name != "id", "primary_key": name == "id"}


async def test_a_new_table_reads_the_catalog_again_and_a_failed_read_retries_the_batch() -> None:
    """The catalog is read when a table appears that it did not declare INTEGER before
    (CREATE TABLE through the dialect may be newer than the daemon's start); when that
    read fails, the batch waits (TargetUnavailable) instead of guessing the id type."""
    catalog: dict[str, Any] = {"tables": {}}
    reads: list[str] = []
    failing = False

    def couchdb(request: httpx.Request) -> httpx.Response:
        reads.append(request.url.path)
        if failing:
            return httpx.Response(500, json={"error": "unknown_error", "reason": "down"})
        return httpx.Response(200, json=catalog)

    client = AsyncCouchDBClient.from_url(
        "couchdb://u:p@couch.test:5984/shop",
        transport=httpx.MockTransport(couchdb),
        retry=RetryPolicy(0),
    )
    schema = InferredSchema()
    schema.use_source(client)
    try:
        assert not await schema._declares_integer_id("users")
        assert reads == ["/shop/_local/sqlalchemy_couchdb.schema"]
        catalog["tables"]["users"] = {"columns": [_column("id", "INTEGER")]}
        catalog["tables"]["tags"] = {"columns": [_column("id", "VARCHAR(20)")]}
        assert await schema._declares_integer_id("users")
        assert not await schema._declares_integer_id("tags")
        reads.clear()
        assert await schema._declares_integer_id("users")  # known: no request
        assert reads == []
        failing = True
        with pytest.raises(TargetUnavailable, match=r"catalog.*'orders'"):
            await schema._declares_integer_id("orders")
    finally:
        await client.close()


async def test_without_a_source_client_no_table_has_integer_ids() -> None:
    assert not await InferredSchema()._declares_integer_id("users")
