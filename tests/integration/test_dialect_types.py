"""SQL types round-trip through CouchDB documents, and compare and order correctly."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from sqlalchemy_couchdb.dbapi import CouchDBClient


class Color(enum.Enum):
    red = "red"
    green = "green"


metadata = sa.MetaData()
things = sa.Table(
    "things",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("rev", sa.String),
    sa.Column("s", sa.String(20)),
    sa.Column("t", sa.Text),
    sa.Column("i", sa.Integer),
    sa.Column("big", sa.BigInteger),
    sa.Column("f", sa.Float),
    sa.Column("num", sa.Numeric(12, 4)),
    sa.Column("b", sa.Boolean),
    sa.Column("d", sa.Date),
    sa.Column("ts", sa.DateTime),
    sa.Column("tz", sa.DateTime(timezone=True)),
    sa.Column("tm", sa.Time),
    sa.Column("j", sa.JSON),
    sa.Column("u", sa.Uuid),
    sa.Column("e", sa.Enum(Color)),
    sa.Column("bin", sa.LargeBinary),
)

VALUES = {
    "id": "one",
    "s": "héllo ✓",
    "t": "long text " * 50,
    "i": -42,
    "big": 2**53 - 1,
    "f": 3.25,
    "num": decimal.Decimal("12345678.1234"),
    "b": True,
    "d": dt.date(2024, 2, 29),
    "ts": dt.datetime(2024, 2, 29, 13, 45, 1, 123456),
    "tz": dt.datetime(2024, 2, 29, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    "tm": dt.time(23, 59, 58, 999),
    "j": {"a": [1, 2, {"b": None}], "$gt": "not an operator"},
    "u": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "e": Color.green,
    "bin": b"\x00\x01\xffbytes",
}


@pytest.fixture
def engine(couchdb_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(couchdb_url)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_every_type_round_trips(engine: sa.Engine, couchdb_url: str) -> None:
    with engine.begin() as conn:
        conn.execute(things.insert(), VALUES)
    with engine.connect() as conn:
        row = conn.execute(sa.select(things).where(things.c.id == "one")).one()._asdict()
    for key, value in VALUES.items():
        if key == "tz":
            assert row[key] == value and row[key].tzinfo is not None  # same instant, aware
        else:
            assert row[key] == value, key
    assert row["rev"].startswith("1-")
    with CouchDBClient.from_url(couchdb_url) as client:
        doc = client.get("one")
    # The document holds plain JSON: ISO dates, a native JSON object, base64 text.
    assert doc["d"] == "2024-02-29" and doc["j"]["a"] == [1, 2, {"b": None}]
    assert doc["type"] == "things" and "id" not in doc


def test_dates_datetimes_and_numbers_compare_and_order(engine: sa.Engine) -> None:
    days = [dt.date(2023, 12, 31), dt.date(2024, 1, 2), dt.date(2024, 10, 1)]
    stamps = [dt.datetime(2024, 1, 1, h) for h in (9, 10, 23)]
    with engine.begin() as conn:
        conn.execute(
            things.insert(),
            [
                {"id": f"r{i}", "d": d, "ts": ts, "num": decimal.Decimal(n), "i": i}
                for i, (d, ts, n) in enumerate(
                    zip(days, stamps, ["9.5", "10.25", "100"], strict=True)
                )
            ],
        )
    with engine.connect() as conn:
        got = (
            conn.execute(
                sa.select(things.c.d).where(things.c.d > dt.date(2024, 1, 1)).order_by(things.c.d)
            )
            .scalars()
            .all()
        )
        assert got == days[1:]
        got = (
            conn.execute(
                sa.select(things.c.ts)
                .where(things.c.ts.between(stamps[0], stamps[1]))
                .order_by(things.c.ts.desc())
            )
            .scalars()
            .all()
        )
        assert got == [stamps[1], stamps[0]]
        got = (
            conn.execute(
                sa.select(things.c.num)
                .where(things.c.num >= decimal.Decimal("10"))
                .order_by(things.c.num)
            )
            .scalars()
            .all()
        )
        assert got == [decimal.Decimal("10.2500"), decimal.Decimal("100.0000")]
