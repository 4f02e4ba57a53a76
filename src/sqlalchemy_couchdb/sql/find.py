"""``_find`` requests and the choice of a Mango index for them.

A :class:`FindRequest` is one ``_find`` query that the cursor pages through (it adds
``limit`` per page and ``bookmark`` or ``skip`` between pages). Index choice follows
CouchDB's own rules (``mango_idx_view:is_usable``/``can_use_sort``): leading index fields
fixed by ``$eq`` (such as ``type``) may be skipped, the sort fields must then be exactly
the rest of the index, and every index field must be present in matched documents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..mapping import TYPE_FIELD

__all__ = ["FindRequest", "MangoIndex", "choose_equality_index", "choose_sort_index"]


@dataclass(frozen=True, slots=True)
class MangoIndex:
    """A JSON Mango index the database has: document fields in index order.

    ``ddoc``/``name`` name it for ``use_index``; without them the server picks an index.
    """

    fields: tuple[str, ...]
    ddoc: str | None = None
    name: str | None = None

    @property
    def use_index(self) -> str | list[str] | None:
        if self.ddoc is None:
            return None
        return [self.ddoc, self.name] if self.name else self.ddoc


@dataclass(frozen=True, slots=True)
class FindRequest:
    """One ``_find`` query: the body parts, minus paging.

    ``skip`` is sent with the first page only (later pages resume by bookmark, or add
    the documents already read to it where the server gives no bookmark); it is set only
    when the selector is exact. ``limit`` is the number of documents that suffices when
    the selector is exact (None: unknown): ask for it as the first page, but stop
    reading when the run is done or the request is exhausted, not at ``limit``. That
    costs nothing when the server matched exactly and keeps LIMIT right when it did not
    (CouchDB's ICU collation equates text differing only in ignorable characters).
    """

    selector: dict[str, Any]
    fields: list[str] | None = None
    sort: list[dict[str, str]] | None = None
    use_index: str | list[str] | None = None
    skip: int = 0
    limit: int | None = None

    def body(
        self, limit: int, *, skip: int | None = None, bookmark: str | None = None
    ) -> dict[str, Any]:
        """The JSON body of one page; ``limit`` is always explicit (CouchDB's default is 25)."""
        body: dict[str, Any] = {"selector": self.selector, "limit": limit}
        skip = self.skip if skip is None else skip
        if skip:
            body["skip"] = skip
        if self.fields is not None:
            body["fields"] = self.fields
        if self.sort is not None:
            body["sort"] = self.sort
        if self.use_index is not None:
            body["use_index"] = self.use_index
        if bookmark is not None:
            body["bookmark"] = bookmark
        return body


def _constant_prefix(index: MangoIndex, eq_fields: frozenset[str]) -> int:
    n = 0
    for field in index.fields:
        if field != TYPE_FIELD and field not in eq_fields:
            break
        n += 1
    return n


def choose_sort_index(
    sort_fields: Sequence[str],
    descending: bool,
    eq_fields: frozenset[str],
    indexes: Sequence[MangoIndex],
) -> tuple[list[dict[str, str]], str | list[str] | None] | None:
    """The Mango ``sort`` and ``use_index`` that make the server sort, or None.

    Sorting by ``_id`` alone needs no index (CouchDB's ``_all_docs``). Otherwise an
    index must consist of fields fixed by ``$eq`` followed by exactly the sort fields;
    the fixed fields lead the ``sort`` too (PouchDB Server wants every index field named).
    """
    direction = "desc" if descending else "asc"
    if list(sort_fields) == ["_id"]:
        return [{"_id": direction}], None
    wanted = tuple(sort_fields)
    for index in indexes:
        prefix = _constant_prefix(index, eq_fields)
        if any(index.fields[start:] == wanted for start in range(prefix + 1)):
            return [{f: direction} for f in index.fields], index.use_index
    return None


def choose_equality_index(
    eq_fields: frozenset[str], indexes: Sequence[MangoIndex]
) -> str | list[str] | None:
    """``use_index`` for the index whose fields are all fixed by ``$eq``, the longest.

    A point query then becomes one index lookup; without a name the server chooses.
    """
    best: MangoIndex | None = None
    for index in indexes:
        if index.ddoc is None or not index.fields:
            continue
        fixed = all(f in eq_fields or f == TYPE_FIELD for f in index.fields)
        if fixed and (best is None or len(index.fields) > len(best.fields)):
            best = index
    if best is None or best.fields == (TYPE_FIELD,):
        return None
    return best.use_index
