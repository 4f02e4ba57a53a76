"""SQL types stored as JSON values in CouchDB documents.

JSON has strings, numbers, booleans, null, arrays and objects; everything else is
written as a string that sorts the way the SQL value does, so that comparisons and
ORDER BY on the server and on the client agree with a relational database:

- Date ``YYYY-MM-DD``, Time ``HH:MM:SS[.ffffff]``, DateTime ``YYYY-MM-DDTHH:MM:SS[.ffffff]``
  (ISO 8601). A tz-aware DateTime is stored in UTC with ``+00:00`` and read back aware,
  so that stored values order correctly whatever offset they were written with.
- Numeric is a JSON number (CouchDB keeps numbers as doubles): Decimals round-trip exactly
  up to 15 significant digits, as with SQLite; results come back as ``Decimal``.
- LargeBinary is base64 text; Uuid is its canonical text; JSON is stored natively.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import types as sqltypes
from sqlalchemy.engine.interfaces import Dialect

__all__ = [
    "CouchDate",
    "CouchDateTime",
    "CouchJSON",
    "CouchLargeBinary",
    "CouchNumeric",
    "CouchTime",
    "CouchUuid",
    "colspecs",
]

_Processor = Callable[[Any], Any] | None


def encode_datetime(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.isoformat()


class CouchDate(sqltypes.Date):
    def bind_processor(self, dialect: Dialect) -> _Processor:
        def process(value: Any) -> Any:
            if isinstance(value, dt.datetime):
                return value.date().isoformat()
            return value.isoformat() if isinstance(value, dt.date) else value

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> _Processor:
        def process(value: Any) -> Any:
            return dt.date.fromisoformat(value[:10]) if isinstance(value, str) else value

        return process


class CouchDateTime(sqltypes.DateTime):
    def bind_processor(self, dialect: Dialect) -> _Processor:
        def process(value: Any) -> Any:
            if isinstance(value, dt.datetime):
                return encode_datetime(value)
            if isinstance(value, dt.date):
                return dt.datetime.combine(value, dt.time()).isoformat()
            return value

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> _Processor:
        def process(value: Any) -> Any:
            return dt.datetime.fromisoformat(value) if isinstance(value, str) else value

        return process


class CouchTime(sqltypes.Time):
    def bind_processor(self, dialect: Dialect) -> _Processor:
        def process(value: Any) -> Any:
            return value.isoformat() if isinstance(value, dt.time) else value

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> _Processor:
        def process(value: Any) -> Any:
            return dt.time.fromisoformat(value) if isinstance(value, str) else value

        return process


class CouchNumeric(sqltypes.Numeric):
    def bind_processor(self, dialect: Dialect) -> _Processor:
        def process(value: Any) -> Any:
            if isinstance(value, decimal.Decimal):
                if value == value.to_integral_value() and abs(value) < 2**53:
                    return int(value)
                return float(value)
            return value

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> _Processor:
        if not self.asdecimal:

            def as_float(value: Any) -> Any:
                return float(value) if isinstance(value, int | decimal.Decimal) else value

            return as_float
        scale = self.scale
        quantum = decimal.Decimal(1).scaleb(-scale) if scale is not None else None

        def as_decimal(value: Any) -> Any:
            if value is None or isinstance(value, bool):
                return value
            if isinstance(value, float):
                # repr() is the shortest text that reads back as the same double: it
                # restores what was written (0.1, not 0.1000000000000000055…).
                result = decimal.Decimal(repr(value))
            elif isinstance(value, int | str | decimal.Decimal):
                result = decimal.Decimal(value)
            else:
                return value
            if quantum is not None and result.is_finite():
                with contextlib.suppress(decimal.InvalidOperation):
                    result = result.quantize(quantum)
            return result

        return as_decimal


class CouchFloat(sqltypes.Float):
    def bind_processor(self, dialect: Dialect) -> _Processor:
        def process(value: Any) -> Any:
            return float(value) if isinstance(value, decimal.Decimal) else value

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> _Processor:
        if self.asdecimal:
            return super().result_processor(dialect, coltype)

        def process(value: Any) -> Any:
            return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

        return process


class CouchLargeBinary(sqltypes.LargeBinary):
    def bind_processor(self, dialect: Dialect) -> _Processor:
        def process(value: Any) -> Any:
            if isinstance(value, bytes | bytearray | memoryview):
                return base64.b64encode(bytes(value)).decode("ascii")
            return value

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> _Processor:
        def process(value: Any) -> Any:
            return base64.b64decode(value) if isinstance(value, str) else value

        return process


class CouchUuid(sqltypes.Uuid):
    def bind_processor(self, dialect: Dialect) -> _Processor:
        def process(value: Any) -> Any:
            if isinstance(value, uuid.UUID):
                return str(value) if self.native_uuid or self.as_uuid else value.hex
            return value

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> _Processor:
        as_uuid = self.as_uuid

        def process(value: Any) -> Any:
            if isinstance(value, str):
                parsed = uuid.UUID(value)
                return parsed if as_uuid else str(parsed)
            return value

        return process


class CouchJSON(sqltypes.JSON):
    """JSON stored as itself: a dict or list is the field's value, not a string."""

    def bind_processor(self, dialect: Dialect) -> _Processor:
        return None

    def result_processor(self, dialect: Dialect, coltype: object) -> _Processor:
        return None


class CouchBoolean(sqltypes.Boolean):
    def result_processor(self, dialect: Dialect, coltype: object) -> _Processor:
        def process(value: Any) -> Any:
            return bool(value) if isinstance(value, int) else value

        return process


class CouchInteger(sqltypes.Integer):
    """Integers, also when they come back from ``_id`` (always a string in CouchDB)."""

    def result_processor(self, dialect: Dialect, coltype: object) -> _Processor:
        def process(value: Any) -> Any:
            if isinstance(value, str):
                try:
                    return int(value)
                except ValueError:
                    return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            return value

        return process


colspecs: dict[type[Any], type[Any]] = {
    sqltypes.Date: CouchDate,
    sqltypes.DateTime: CouchDateTime,
    sqltypes.Time: CouchTime,
    sqltypes.Numeric: CouchNumeric,
    sqltypes.Float: CouchFloat,
    sqltypes.LargeBinary: CouchLargeBinary,
    sqltypes.Uuid: CouchUuid,
    sqltypes.JSON: CouchJSON,
    sqltypes.Boolean: CouchBoolean,
    sqltypes.Integer: CouchInteger,
}
