"""The pure parts of ``verify``: a merge join of two id-ordered streams, revision
generations, and the equality of a copied value with the value the sink would write.

Nothing here does I/O, so the logic that decides what counts as drift is tested without
servers (``tests/unit/test_replicator_verify.py``).

Both sides are read in CouchDB's ``_all_docs`` order: document ids compared by their raw
bytes ("raw collation", not the ICU order of views), which for UTF-8 is code point order —
Python's ``str`` order. The copy is read in the same order (binary collation). Where a
server orders differently (PouchDB Server sorts by UTF-16 code units; a user's table may
use a case-insensitive collation), the join sees an id on one side only; the caller then
looks such an id up on both sides by key, so the verdict stays exact and only the cost
grows. :attr:`MergeJoin.disorder` counts how often that happened.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CopyKey",
    "CouchKey",
    "MergeJoin",
    "Pair",
    "may_replace",
    "rev_generation",
    "same_value",
]


@dataclass(frozen=True, slots=True)
class CouchKey:
    """A row of ``_all_docs``: a live document's id, winning rev and (``--deep``) body."""

    id: str
    rev: str
    doc: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class CopyKey:
    """A row of the copy: the ``_id`` it stands for, its table and its ``rev`` column."""

    id: str
    table: str
    rev: str | None


@dataclass(slots=True)
class Pair:
    """One id and what each side holds for it: the document (None: not in CouchDB's
    listing) and the copy's rows (several when tables disagree about the document)."""

    id: str
    couch: CouchKey | None
    rows: list[CopyKey] = field(default_factory=list)


class MergeJoin:
    """Joins CouchDB's keys and the copy's keys, both in id order, one page at a time.

    Feed pages with :meth:`add_couch` / :meth:`add_copy` (``last=True`` with the final
    one), take :meth:`pairs` until it stops, then feed the side :attr:`needs_couch` /
    :attr:`needs_copy` names. At most a page of each side is held, plus the rows of one id.
    """

    def __init__(self) -> None:
        self._couch: deque[CouchKey] = deque()
        self._copy: deque[CopyKey] = deque()
        self._couch_done = False
        self._copy_done = False
        self._last_couch: str | None = None
        self._last_copy: str | None = None
        #: Keys that arrived out of id order (on either side); see the module docstring.
        self.disorder = 0
        self.needs_couch = True
        self.needs_copy = True

    @property
    def done(self) -> bool:
        """Both sides ended and every pair was handed out."""
        return self._couch_done and self._copy_done and not self._couch and not self._copy

    def add_couch(self, keys: Iterable[CouchKey], *, last: bool = False) -> None:
        self._couch.extend(keys)
        self._couch_done = self._couch_done or last

    def add_copy(self, keys: Iterable[CopyKey], *, last: bool = False) -> None:
        self._copy.extend(keys)
        self._copy_done = self._copy_done or last

    def pairs(self) -> Iterator[Pair]:
        """The pairs that can be decided with what was added so far."""
        couch, copy = self._couch, self._copy
        self.needs_couch = self.needs_copy = False
        while True:
            if not couch and not self._couch_done:
                self.needs_couch = True
                return
            if not copy and not self._copy_done:
                self.needs_copy = True
                return
            if not couch and not copy:
                return
            if couch and (not copy or couch[0].id <= copy[0].id):
                doc_id = couch[0].id
            else:
                doc_id = copy[0].id
            # Every row of this id must be in hand: the next page may hold more of them.
            run = 0
            while run < len(copy) and copy[run].id == doc_id:
                run += 1
            if run == len(copy) and run and not self._copy_done:
                self.needs_copy = True
                return
            pair = Pair(doc_id, None)
            if couch and couch[0].id == doc_id:
                pair.couch = couch.popleft()
                self._note_couch(doc_id)
            for _ in range(run):
                pair.rows.append(copy.popleft())
            if run:
                self._note_copy(doc_id)
            yield pair

    def _note_couch(self, doc_id: str) -> None:
        if self._last_couch is not None and doc_id <= self._last_couch:
            self.disorder += 1
        self._last_couch = doc_id

    def _note_copy(self, doc_id: str) -> None:
        if self._last_copy is not None and doc_id <= self._last_copy:
            self.disorder += 1
        self._last_copy = doc_id


def rev_generation(rev: str | None) -> int | None:
    """The generation ``N`` of a rev ``"N-hash"``; None for no rev or one of another form."""
    if not rev:
        return None
    head, sep, _ = rev.partition("-")
    if not sep or not head.isascii() or not head.isdigit():
        return None
    return int(head)


def may_replace(copy_rev: str | None, couch_rev: str | None) -> bool:
    """Whether a row holding ``copy_rev`` may be overwritten (or deleted) to match CouchDB's
    ``couch_rev`` (a deletion's rev for a deleted document, None for one CouchDB does not
    know at all).

    Never when the copy holds a later generation than CouchDB: that row came from a
    revision this check has not seen (the live replicator wrote it meanwhile), and
    replacing it would move the copy back in time. A row without a parsable rev has
    nothing to protect; a document CouchDB has never heard of cannot be newer than a row.
    """
    copy_generation = rev_generation(copy_rev)
    couch_generation = rev_generation(couch_rev)
    if copy_generation is None or couch_generation is None:
        return True
    return copy_generation <= couch_generation


# -- value equality -----------------------------------------------------------------------

#: A float column that is single precision on the backend keeps about 7 digits.
SINGLE_PRECISION = 1e-6


def same_value(expected: Any, stored: Any, *, float_tolerance: float = 0.0) -> bool:
    """Whether ``stored`` (a column value as SQLAlchemy returns it) is ``expected`` (the
    value the sink's converter made of the document's field).

    Equal means equal after what every backend does to a value on the way in and out:
    numbers compare as numbers (``1 == 1.0 == Decimal("1.00")``; floats within
    ``float_tolerance`` relative error, for single-precision columns), datetimes as
    instants (a naive one is UTC; MySQL's DATETIME keeps whole seconds), JSON structurally,
    UUIDs by value, binary by bytes. A boolean never equals a number, except that MySQL
    returns a BOOLEAN as 0/1.
    """
    if expected is None or stored is None:
        return expected is None and stored is None
    if isinstance(expected, bool) or isinstance(stored, bool):
        if isinstance(expected, bool) and isinstance(stored, bool):
            return expected is stored
        other = stored if isinstance(expected, bool) else expected
        return isinstance(other, int) and other in (0, 1) and bool(other) is bool(expected)
    if _is_number(expected) and _is_number(stored):
        return _same_number(expected, stored, float_tolerance)
    if isinstance(expected, dt.datetime) and isinstance(stored, dt.datetime):
        return _same_instant(expected, stored)
    if isinstance(expected, (dt.date, dt.time)) and isinstance(stored, (dt.date, dt.time)):
        return _same_time(expected, stored)
    if isinstance(expected, uuid.UUID) or isinstance(stored, uuid.UUID):
        try:
            return uuid.UUID(str(expected)) == uuid.UUID(str(stored))
        except ValueError:
            return False
    if isinstance(expected, (bytes, bytearray, memoryview)):
        return isinstance(stored, (bytes, bytearray, memoryview)) and bytes(expected) == bytes(
            stored
        )
    if isinstance(expected, (dict, list)) and isinstance(stored, (dict, list)):
        return _same_json(expected, stored)
    return bool(expected == stored)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool)


def _same_number(a: Any, b: Any, tolerance: float) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        x, y = float(a), float(b)
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        return x == y or (tolerance > 0 and math.isclose(x, y, rel_tol=tolerance))
    return decimal.Decimal(a) == decimal.Decimal(b)


def _utc_naive(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _same_instant(a: dt.datetime, b: dt.datetime) -> bool:
    x, y = _utc_naive(a), _utc_naive(b)
    if (a.tzinfo is None) != (b.tzinfo is None):
        # A backend without time zones (SQLite) keeps an aware value's wall-clock time.
        aware = a if a.tzinfo is not None else b
        naive = b if a.tzinfo is not None else a
        if aware.replace(tzinfo=None) == naive:
            return True
    if x == y:
        return True
    # MySQL's DATETIME (no fsp) rounds to whole seconds: the copy holds what it can.
    if x.microsecond == 0 or y.microsecond == 0:
        return abs((x - y).total_seconds()) <= 0.5
    return False


def _same_time(a: dt.date | dt.time, b: dt.date | dt.time) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dt.time) and isinstance(b, dt.time):
        x, y = a.replace(tzinfo=None), b.replace(tzinfo=None)
        if x == y:
            return True
        if x.microsecond == 0 or y.microsecond == 0:
            seconds = (x.hour * 3600 + x.minute * 60 + x.second + x.microsecond / 1e6) - (
                y.hour * 3600 + y.minute * 60 + y.second + y.microsecond / 1e6
            )
            return abs(seconds) <= 0.5
        return False
    return a == b


def _same_json(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if _is_number(a) and _is_number(b):
        return _same_number(a, b, 0.0)
    return bool(a == b)
