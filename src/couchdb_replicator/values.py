"""JSON values into column values, refusing what a column cannot hold.

SQLite stores ``"abc"`` in an INTEGER column and ignores ``VARCHAR(10)``; PostgreSQL and
MySQL refuse both. Checking here, by the column's SQLAlchemy type, makes the same
document a dead letter on every target (and spares a failed round trip). What is checked:

* Integer types: an integer (a bool is 0/1, an integral float is accepted) within the
  type's range (SmallInteger 16 bits, Integer 32, BigInteger 64).
* Float/Double: any number; Numeric: any number, as a ``Decimal``.
* Boolean: true/false (or 0/1).
* String types: a string no longer than ``length`` characters; an Enum's value must be one
  of its members; numbers, booleans, objects and arrays become their JSON text.
* DateTime/Date/Time: an ISO 8601 string; an aware datetime into a column without time
  zone is converted to UTC.
* Uuid: a UUID string. LargeBinary: base64 text. JSON and other types: passed as they are.

NULL is always passed through: NOT NULL is the database's to enforce.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import json
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

__all__ = ["Converter", "PoisonValue", "converter_for", "json_column_text", "json_text"]

Converter = Callable[[Any], Any]

_INT_RANGES: list[tuple[type[sa.Integer], int]] = [
    (sa.SmallInteger, 16),
    (sa.BigInteger, 64),
    (sa.Integer, 32),
]


class PoisonValue(ValueError):
    """A value its column cannot hold; the message says which and why."""


def json_text(value: Any) -> str:
    """The text a non-string value is stored as in a text column: its JSON."""
    return json.dumps(value, ensure_ascii=False)


def json_column_text(value: Any) -> str:
    """What a JSON column is sent: orjson's text, several times faster than ``json.dumps``
    on a backfill; ``json``'s for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False)


def _describe(value: Any) -> str:
    text = json_text(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _integer(bits: int, type_name: str) -> Converter:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def convert(value: Any) -> Any:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            raise PoisonValue(f"{_describe(value)} is not an integer ({type_name} column)")
        if not low <= value <= high:
            raise PoisonValue(f"{value} is out of range for a {type_name} column")
        return value

    return convert


def _float(value: Any) -> Any:
    if isinstance(value, (int, float)):
        return float(value)
    raise PoisonValue(f"{_describe(value)} is not a number (floating-point column)")


def _numeric(value: Any) -> Any:
    if isinstance(value, bool):
        return decimal.Decimal(int(value))
    if isinstance(value, (int, float)):
        return decimal.Decimal(str(value))
    raise PoisonValue(f"{_describe(value)} is not a number (NUMERIC column)")


def _boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise PoisonValue(f"{_describe(value)} is not true or false (BOOLEAN column)")


def _string(length: int | None) -> Converter:
    def convert(value: Any) -> Any:
        text = value if isinstance(value, str) else json_text(value)
        if length is not None and len(text) > length:
            raise PoisonValue(
                f"a value of {len(text)} characters is too long for a VARCHAR({length}) column"
            )
        return text

    return convert


def _enum(members: frozenset[str]) -> Converter:
    def convert(value: Any) -> Any:
        if not isinstance(value, str) or value not in members:
            raise PoisonValue(f"{_describe(value)} is not one of the ENUM's values")
        return value

    return convert


def _iso_string(value: Any, kind: str) -> str:
    if not isinstance(value, str):
        raise PoisonValue(f"{_describe(value)} is not an ISO 8601 {kind} string")
    return value


def _datetime(timezone: bool) -> Converter:
    def convert(value: Any) -> Any:
        try:
            parsed = dt.datetime.fromisoformat(_iso_string(value, "date-time"))
        except ValueError:
            raise PoisonValue(f"{_describe(value)} is not an ISO 8601 date-time") from None
        if timezone and parsed.tzinfo is None:
            return parsed.replace(tzinfo=dt.UTC)
        if not timezone and parsed.tzinfo is not None:
            return parsed.astimezone(dt.UTC).replace(tzinfo=None)
        return parsed

    return convert


def _date(value: Any) -> Any:
    try:
        return dt.date.fromisoformat(_iso_string(value, "date"))
    except ValueError:
        raise PoisonValue(f"{_describe(value)} is not an ISO 8601 date") from None


def _time(value: Any) -> Any:
    try:
        return dt.time.fromisoformat(_iso_string(value, "time"))
    except ValueError:
        raise PoisonValue(f"{_describe(value)} is not an ISO 8601 time") from None


def _uuid(as_uuid: bool) -> Converter:
    def convert(value: Any) -> Any:
        try:
            parsed = uuid.UUID(_iso_string(value, "UUID"))
        except ValueError:
            raise PoisonValue(f"{_describe(value)} is not a UUID") from None
        return parsed if as_uuid else str(parsed)

    return convert


def _binary(value: Any) -> Any:
    if not isinstance(value, str):
        raise PoisonValue(f"{_describe(value)} is not base64 text (binary column)")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise PoisonValue(f"{_describe(value)} is not valid base64 (binary column)") from None


def converter_for(type_: TypeEngine[Any], dialect: Dialect) -> Converter | None:
    """The converter for a column type on a dialect; None when values pass unchanged."""
    impl = type_.dialect_impl(dialect)
    if isinstance(impl, sa.TypeDecorator):
        return None  # the user's own bind processing decides
    if isinstance(impl, sa.Boolean):
        return _boolean
    if isinstance(impl, sa.Integer):
        for cls, bits in _INT_RANGES:
            if isinstance(impl, cls):
                return _integer(bits, cls.__name__.upper())
        return _integer(64, "INTEGER")
    if isinstance(impl, sa.Float):
        return _float
    if isinstance(impl, sa.Numeric):
        return _numeric
    if isinstance(impl, sa.Enum):
        return _enum(frozenset(impl.enums))
    if isinstance(impl, sa.String):
        return _string(impl.length)
    if isinstance(impl, sa.DateTime):
        return _datetime(bool(impl.timezone))
    if isinstance(impl, sa.Date):
        return _date
    if isinstance(impl, sa.Time):
        return _time
    if isinstance(impl, sa.Uuid):
        return _uuid(bool(impl.as_uuid))
    if isinstance(impl, sa.LargeBinary):
        return _binary
    return None
