"""A small model of CouchDB's ``_find``, for testing the translator without a server.

``mango_match`` follows ``mango_selector.erl`` (CouchDB 3.x): a missing field matches
only ``{"$exists": false}``; comparisons use CouchDB's collation (null < false < true <
numbers < strings < arrays < objects); ``$in``/``$nin`` look inside array values;
``$regex`` applies to strings only. Strings compare by code point here (CouchDB uses ICU,
PouchDB UTF-16 code units): the translator never relies on text order in selectors.

``FakeServer`` answers :class:`FindRequest` pages the way CouchDB does with an index:
documents lacking a sort field are not returned. It also checks what the translator
promises never to send (``$gt``, ``$lt``, ``$ne``, ``$not``, unknown indexes).

Other test modules import from here (pytest puts this directory on ``sys.path``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from functools import cmp_to_key
from typing import Any

import pytest

from sqlalchemy_couchdb.sql import FindRequest, MangoIndex, SelectPlan, compile_sql

_MISSING = object()


def _rank(v: Any) -> int:
    if v is None:
        return 0
    if v is False:
        return 1
    if v is True:
        return 2
    if isinstance(v, int | float):
        return 3
    if isinstance(v, str):
        return 4
    if isinstance(v, list):
        return 5
    return 6


def collate(a: Any, b: Any) -> int:
    ra, rb = _rank(a), _rank(b)
    if ra != rb:
        return -1 if ra < rb else 1
    if ra == 5:
        for x, y in zip(a, b, strict=False):
            c = collate(x, y)
            if c:
                return c
        return (len(a) > len(b)) - (len(a) < len(b))
    if ra == 6:
        return collate(sorted(a.items()), sorted(b.items()))
    if ra in (3, 4):
        return (a > b) - (a < b)
    return 0


def _type(v: Any) -> str:
    return ["null", "boolean", "boolean", "number", "string", "array", "object"][_rank(v)]


FORBIDDEN = {"$gt", "$lt", "$ne", "$not", "$nor", "$elemMatch", "$allMatch", "$all"}


def check_selector(selector: Any) -> None:
    """Operators the translator promises never to send."""
    if isinstance(selector, dict):
        for key, value in selector.items():
            assert key not in FORBIDDEN, f"{key} sent in {selector}"
            if key == "$regex":
                assert "(?" not in value, f"inline regex flags are not portable: {value}"
            check_selector(value)
    elif isinstance(selector, list):
        for item in selector:
            check_selector(item)


def mango_match(selector: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
    for key, cond in selector.items():
        if key == "$and":
            ok = all(mango_match(s, doc) for s in cond)
        elif key == "$or":
            ok = any(mango_match(s, doc) for s in cond)
        else:
            assert not key.startswith("$"), key
            ok = _field_match(cond, doc.get(key, _MISSING))
        if not ok:
            return False
    return True


def _field_match(cond: Any, value: Any) -> bool:
    if not (isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond)):
        cond = {"$eq": cond}
    for op, arg in cond.items():
        if op == "$exists":
            ok = (value is not _MISSING) == arg
        elif value is _MISSING:
            ok = False  # CouchDB: a missing field matches nothing but $exists: false
        elif op == "$eq":
            ok = collate(value, arg) == 0
        elif op == "$gte":
            ok = collate(value, arg) >= 0
        elif op == "$lte":
            ok = collate(value, arg) <= 0
        elif op in ("$in", "$nin"):
            values = value if isinstance(value, list) else [value]
            found = any(collate(v, a) == 0 for v in values for a in arg)
            ok = found if op == "$in" else not found
        elif op == "$type":
            ok = _type(value) == arg
        elif op == "$regex":
            ok = isinstance(value, str) and re.search(arg, value) is not None
        else:
            raise AssertionError(f"operator {op} not modelled")
        if not ok:
            return False
    return True


class FakeServer:
    """One database: answers FindRequest pages like CouchDB 3.x with the given indexes."""

    def __init__(self, docs: Sequence[Mapping[str, Any]], indexes: Sequence[MangoIndex] = ()):
        self.docs = sorted(docs, key=lambda d: d["_id"])
        self.indexes = list(indexes)
        self.requests: list[dict[str, Any]] = []

    def answer(self, request: FindRequest) -> list[dict[str, Any]]:
        """Every document the request selects, in the order CouchDB returns them."""
        check_selector(request.selector)
        docs = [d for d in self.docs if mango_match(request.selector, d)]
        if request.sort:
            fields = [next(iter(s)) for s in request.sort]
            directions = {next(iter(s.values())) for s in request.sort}
            assert len(directions) == 1, "Mango sorts in one direction"
            if fields != ["_id"]:
                names = [i.use_index for i in self.indexes if list(i.fields) == fields]
                assert request.use_index in names, f"no index {request.use_index} for {fields}"
            # CouchDB reads an index, which holds only documents having every field.
            docs = [d for d in docs if all(f in d for f in fields)]

            def cmp(a: Mapping[str, Any], b: Mapping[str, Any]) -> int:
                for f in fields:
                    c = collate(a[f], b[f])
                    if c:
                        return c
                return collate(a["_id"], b["_id"])

            docs.sort(key=cmp_to_key(cmp), reverse=directions == {"desc"})
        elif request.use_index is not None:
            assert request.use_index in [i.use_index for i in self.indexes]
        if request.fields is not None:
            docs = [{k: d[k] for k in request.fields if k in d} for d in docs]
        return docs

    def pages(self, request: FindRequest, page_size: int = 3) -> Iterator[list[dict[str, Any]]]:
        """Pages as a cursor reads them: explicit limits, skip once, stop on a short page.

        The first page asks for ``request.limit`` when set (enough if the selector is
        exact); the caller stops pulling once its run is done.
        """
        docs = self.answer(request)
        start = request.skip
        size = page_size if request.limit is None else max(request.limit, 1)
        while True:
            body = request.body(size, skip=start)
            self.requests.append(body)
            page = docs[start : start + size]
            yield page
            start += len(page)
            if len(page) < size:
                return
            size = page_size


def run_sql(
    sql: str,
    docs: Sequence[Mapping[str, Any]],
    params: Any = None,
    indexes: Sequence[MangoIndex] = (),
    page_size: int = 3,
) -> tuple[tuple[str, ...] | None, list[tuple[Any, ...]]]:
    """Execute a SELECT against a FakeServer holding ``docs``: (columns, rows)."""
    plan = compile_sql(sql)
    assert isinstance(plan, SelectPlan)
    server = FakeServer(docs, indexes)
    bound = plan.bind(params, indexes)
    run = bound.start()
    rows = list(run.drive(lambda r: server.pages(r, page_size), bound.requests))
    return run.columns, rows


# -- the model itself -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "doc", "expected"),
    [
        ({"x": {"$eq": None}}, {"x": None}, True),
        ({"x": {"$eq": None}}, {}, False),
        ({"x": {"$exists": False}}, {}, True),
        ({"x": {"$exists": False}}, {"x": None}, False),
        ({"x": {"$gte": False}}, {"x": None}, False),
        ({"x": {"$gte": False}}, {"x": 0}, True),
        ({"x": {"$gte": 0}}, {"x": "a"}, True),  # strings sort after numbers
        ({"x": {"$lte": 5}}, {"x": True}, True),  # booleans before numbers
        ({"x": {"$in": [1]}}, {"x": [1, 2]}, True),  # $in looks inside arrays
        ({"x": {"$nin": [1]}}, {"x": [1, 2]}, False),
        ({"x": {"$nin": [1]}}, {}, False),
        ({"x": {"$regex": "^a"}}, {"x": ["a"]}, False),
        ({"x": 1}, {"x": 1.0}, True),
        ({"$or": [{"x": 1}, {"y": 2}]}, {"y": 2}, True),
        ({"$and": [{"x": {"$gte": 1}}, {"x": {"$lte": 1}}]}, {"x": 1}, True),
    ],
)
def test_model_follows_couchdb(selector: dict, doc: dict, expected: bool) -> None:
    assert mango_match(selector, doc) is expected


def test_model_index_sort_drops_documents_lacking_the_field() -> None:
    index = MangoIndex(("type", "x"), "d", "i")
    server = FakeServer(
        [
            {"_id": "a", "type": "t", "x": 2},
            {"_id": "b", "type": "t"},
            {"_id": "c", "type": "t", "x": 1},
        ],
        [index],
    )
    request = FindRequest(
        {"type": {"$eq": "t"}}, sort=[{"type": "asc"}, {"x": "asc"}], use_index=["d", "i"]
    )
    assert [d["_id"] for d in server.answer(request)] == ["c", "a"]


def test_model_rejects_operators_the_translator_must_not_send() -> None:
    with pytest.raises(AssertionError):
        check_selector({"x": {"$ne": 1}})
    with pytest.raises(AssertionError):
        check_selector({"$or": [{"x": {"$gt": 1}}]})
