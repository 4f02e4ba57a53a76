"""JSON values into column values: what each column type accepts and refuses."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from couchdb_replicator.values import PoisonValue, converter_for

DIALECTS = [sqlite.dialect(), postgresql.dialect(), mysql.dialect()]


@pytest.fixture(params=DIALECTS, ids=lambda d: d.name)
def dialect(request: pytest.FixtureRequest) -> Any:
    return request.param


def convert(type_: Any, value: Any, dialect: Any) -> Any:
    fn = converter_for(type_, dialect)
    return value if fn is None else fn(value)


@pytest.mark.parametrize(
    ("type_", "value", "stored"),
    [
        (sa.Integer(), 5, 5),
        (sa.Integer(), True, 1),
        (sa.Integer(), 5.0, 5),
        (sa.BigInteger(), 2**40, 2**40),
        (sa.Float(), 2, 2.0),
        (sa.Double(), 1.5, 1.5),
        (sa.Numeric(10, 2), 1.25, decimal.Decimal("1.25")),
        (sa.Boolean(), False, False),
        (sa.Boolean(), 1, True),
        (sa.String(5), "abcde", "abcde"),
        (sa.String(), 12, "12"),
        (sa.Text(), {"a": 1}, '{"a": 1}'),
        (sa.Enum("a", "b", name="e"), "b", "b"),
        (sa.Date(), "2024-02-29", dt.date(2024, 2, 29)),
        (sa.DateTime(), "2024-01-01T10:00:00+02:00", dt.datetime(2024, 1, 1, 8, 0)),
        (
            sa.DateTime(timezone=True),
            "2024-01-01T10:00:00",
            dt.datetime(2024, 1, 1, 10, 0, tzinfo=dt.UTC),
        ),
        (sa.Time(), "10:11:12", dt.time(10, 11, 12)),
        (
            sa.Uuid(),
            "12345678-1234-5678-1234-567812345678",
            uuid.UUID("12345678-1234-5678-1234-567812345678"),
        ),
        (sa.LargeBinary(), "aGk=", b"hi"),
        (sa.JSON(), {"a": [1]}, {"a": [1]}),
    ],
)
def test_accepted_values(type_: Any, value: Any, stored: Any, dialect: Any) -> None:
    assert convert(type_, value, dialect) == stored


@pytest.mark.parametrize(
    ("type_", "value", "words"),
    [
        (sa.Integer(), "abc", "not an integer"),
        (sa.Integer(), 1.5, "not an integer"),
        (sa.Integer(), 2**31, "out of range"),
        (sa.SmallInteger(), 40000, "out of range"),
        (sa.BigInteger(), 2**63, "out of range"),
        (sa.Float(), "1.5", "not a number"),
        (sa.Boolean(), "yes", "not true or false"),
        (sa.String(3), "abcd", "too long"),
        (sa.Enum("a", "b", name="e"), "c", "ENUM"),
        (sa.Date(), "yesterday", "ISO 8601"),
        (sa.DateTime(), 1700000000, "ISO 8601"),
        (sa.Uuid(), "nope", "not a UUID"),
        (sa.LargeBinary(), "!!", "base64"),
    ],
)
def test_poison_values(type_: Any, value: Any, words: str, dialect: Any) -> None:
    with pytest.raises(PoisonValue, match=words):
        convert(type_, value, dialect)


def test_type_decorators_are_left_to_the_user() -> None:
    class Upper(sa.TypeDecorator[str]):
        impl = sa.String
        cache_ok = True

    assert converter_for(Upper(), sqlite.dialect()) is None
