"""Python values as JSON document values, for DB-API users who pass them directly.

SQLAlchemy's types already convert before the driver sees a value; this covers the
DB-API used on its own, with the same encodings (see ``sqlalchemy_couchdb.types``).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from .exceptions import ProgrammingError

__all__ = ["encode_parameters", "encode_value"]

_SCALARS = (str, int, float, bool, type(None))
_PLAIN = frozenset(_SCALARS)


def encode_value(value: Any) -> Any:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): encode_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    raise ProgrammingError(
        f"cannot store a value of type {type(value).__name__} in a CouchDB document"
    )


def encode_parameters(
    parameters: Mapping[str, Any] | Sequence[Any] | None,
) -> dict[str, Any] | list[Any]:
    """Named (mapping) or positional (sequence) parameters, encoded."""
    if parameters is None:
        return {}
    if isinstance(parameters, Mapping):
        # Most values are plain already: skip the isinstance chain for them (executemany).
        return {
            k if type(k) is str else str(k): v if type(v) in _PLAIN else encode_value(v)
            for k, v in parameters.items()
        }
    if isinstance(parameters, list | tuple):
        return [encode_value(v) for v in parameters]
    raise ProgrammingError(
        f"parameters must be a mapping (named) or a sequence (qmark), "
        f"not {type(parameters).__name__}"
    )
