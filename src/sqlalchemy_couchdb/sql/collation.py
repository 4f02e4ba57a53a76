"""How SQL compares, orders and converts JSON values on the client.

The rule follows SQLite (the relational copy's default, and what the differential tests
compare with), applied to the JSON types a CouchDB document can hold:

* NULL and a missing field are both NULL. Comparisons with NULL are unknown (None).
* Order across types: NULL < numbers < text < JSON arrays/objects. Booleans are the
  numbers 0 and 1 (SQLite stores booleans as integers), so ``true = 1`` and
  ``false < 0.5 < true``. Integers and floats compare by value.
* Text compares by code point, which is SQLite's BINARY collation (UTF-8 byte order).
* Arrays and objects (SQLite would hold them as JSON text or blobs) come after text;
  among themselves they compare by their canonical JSON text.

Converting a value to text (``||``, ``LIKE``, ``lower``) follows SQLite for integers and
booleans (``1``/``0``). Floats are refused: SQLite prints 15 significant digits and
PostgreSQL the shortest round trip, so there is no one right answer to match.
"""

from __future__ import annotations

import json
import math
from typing import Any

from . import errors

__all__ = [
    "check_value",
    "compare",
    "equal",
    "json_text",
    "sort_key",
    "to_number",
    "to_text",
    "type_rank",
]

_NULL, _NUMBER, _TEXT, _JSON = 0, 1, 2, 3


def type_rank(value: Any) -> int:
    """0 for NULL, 1 for numbers (and booleans), 2 for text, 3 for arrays/objects."""
    if value is None:
        return _NULL
    kind = type(value)
    if kind is str:
        return _TEXT
    if kind is int or kind is float or kind is bool:
        return _NUMBER
    if kind is list or kind is dict:
        return _JSON
    raise errors.DataError(f"cannot compare a {kind.__name__} value ({value!r}): not a JSON value")


def json_text(value: Any) -> str:
    """Canonical JSON text: how arrays and objects compare with each other."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def equal(a: Any, b: Any) -> bool:
    """SQL ``a = b`` for two non-NULL values (``1 = 1.0 = true``; ``'1' != 1``)."""
    kind = type(a)
    if kind is type(b) and kind is not dict and kind is not list:
        return bool(a == b)
    rank = type_rank(a)
    if rank != type_rank(b):
        return False
    if rank == _JSON:
        return json_text(a) == json_text(b)
    return bool(a == b)


def compare(a: Any, b: Any) -> int:
    """-1, 0 or 1: the SQL order of two non-NULL values."""
    kind = type(a)
    if kind is type(b) and (kind is str or kind is int or kind is float):
        return -1 if a < b else (1 if a > b else 0)
    rank_a, rank_b = type_rank(a), type_rank(b)
    if rank_a != rank_b:
        return -1 if rank_a < rank_b else 1
    if rank_a == _JSON:
        a, b = json_text(a), json_text(b)
    return -1 if a < b else (1 if a > b else 0)


def sort_key(value: Any) -> tuple[int, Any]:
    """A key that sorts values in SQL ascending order, NULL first (as SQLite does)."""
    rank = type_rank(value)
    if rank == _JSON:
        return (rank, json_text(value))
    if rank == _NULL:
        return (rank, 0)
    return (rank, value)


def to_text(value: Any) -> str:
    """A non-NULL value as SQL text (for ``||``, ``LIKE``, ``lower``, ``length``)."""
    kind = type(value)
    if kind is str:
        return str(value)
    if kind is bool:
        return "1" if value else "0"
    if kind is int:
        return str(value)
    if kind is float:
        raise errors.DataError(
            f"cannot convert the float {value!r} to text exactly: relational databases "
            "print floats differently (SQLite 15 digits, PostgreSQL the shortest round "
            "trip); compare it as a number or store it as text"
        )
    raise errors.DataError(f"cannot use a {kind.__name__} value ({value!r}) as text")


def to_number(value: Any) -> int | float:
    """A non-NULL value as a number for arithmetic; text is refused, not guessed."""
    kind = type(value)
    if kind is int or kind is float:
        return value
    if kind is bool:
        return int(value)
    raise errors.DataError(
        f"arithmetic on a {kind.__name__} value ({value!r}) is not supported: "
        "CouchDB documents keep their JSON types, and text is not silently turned "
        "into a number"
    )


#: Types a JSON value can have as it is; callers skip :func:`check_value` (and building
#: its message) for them, which matters on executemany's hot path.
PLAIN_TYPES = frozenset({str, int, bool, type(None)})


def check_value(value: Any, what: str) -> Any:
    """A bound parameter as a JSON value (tuples become arrays); others are refused."""
    kind = type(value)
    if value is None or kind is str or kind is int or kind is bool:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise errors.DataError(f"{what} is {value!r}: JSON has no NaN or infinity")
        return value
    if kind is list or kind is tuple:
        return [check_value(v, what) for v in value]
    if kind is dict:
        return {str(k): check_value(v, what) for k, v in value.items()}
    # Subclasses (str enums, int enums) travel as their plain JSON value.
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    raise errors.DataError(
        f"{what} has type {kind.__name__}; pass JSON values (str, int, float, bool, None, "
        "list, dict) or let SQLAlchemy's types convert it"
    )
