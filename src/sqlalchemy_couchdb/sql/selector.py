"""The Mango selector sent with ``_find``: a superset of the SQL answer, as tight as can be.

Every document the server returns is checked again on the client with the exact SQL
predicate, so the selector only has to never drop a row SQL would return. It is built
from the negation normal form (:func:`.expressions.nnf`), atom by atom, and each atom
says whether it is *exact* (the server answer equals the SQL answer), which decides
whether ``skip`` may be pushed to the server.

Rules kept on purpose (see COUCHDB-SERVERS.md):

* NULL-ness is stated, never inferred from an operator: ``IS NULL`` is
  ``{"$or": [{"x": {"$eq": null}}, {"x": {"$exists": false}}]}``; non-NULL is
  ``{"x": {"$gte": false}}`` (``false`` is the lowest non-null JSON value in CouchDB's
  collation, on both servers, and the range can use an index).
* ``$ne``/``$not`` are never sent; ``$nin`` only with ``$exists: true``, ``null`` in its
  list, and an escape hatch for arrays, because CouchDB's ``$in``/``$nin`` look inside
  array values (``{"x": {"$nin": [1]}}`` drops ``[1, 2]``, which SQL keeps).
* ``$gt``/``$lt`` are never sent: PouchDB Server can return too few rows for them with
  an index and a limit. ``$gte``/``$lte`` are sent and the boundary is dropped on the
  client.
* Booleans are the numbers 0 and 1 in SQL (SQLite), but not in Mango: ``x = 1`` becomes
  ``{"x": {"$in": [1, true]}}``, and ranges widen to include the booleans they cover.
* Text ranges are not sent as bounds: CouchDB orders text with ICU, not by code point.
* ``LIKE`` becomes a portable, anchored ``$regex`` (no inline flags; wildcards widened
  to ``[\\s\\S]*`` because CouchDB's PCRE matches bytes, not characters).
* A dict or list parameter is never sent at all: it is compared on the client only, so
  a value such as ``{"$gt": ""}`` can never act as an operator.
* Text equality counts as exact although CouchDB compares with ICU, which also equates
  strings differing only in ignorable characters (``"a\\x01"`` and ``"a"``): exactness
  only decides whether OFFSET is pushed down as ``skip``.
* ``_id`` is text. A table whose ``id`` column is INTEGER stores id 42 as ``"<table>:42"``
  (:func:`..mapping.encode_integer_id`) and the cursor reads it back as 42, so there
  numbers become such ids and ranges are left to the client (``"t:10" < "t:9"`` as text).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..mapping import decode_integer_id, encode_integer_id
from .evaluate import ConstFn, compile_expr
from .expressions import (
    MIRRORED_COMPARISON,
    And,
    Column,
    Compare,
    Expr,
    InList,
    IsBool,
    IsNull,
    Like,
    NullSafeEq,
    Or,
    Truth,
    is_constant,
)

__all__ = [
    "FALSE",
    "Conjuncts",
    "ServerCondition",
    "compile_selector",
    "conjoin",
    "equality_fields",
    "is_server_field",
    "like_to_regex",
    "not_null",
    "null_or_missing",
    "widen_for_index",
]

Vals = Sequence[Any]


class _False:
    """The selector that matches nothing: the SQL condition is never TRUE."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "FALSE"


FALSE = _False()
#: A conjunction of single-field (or ``$or``) conditions; empty means "no constraint".
Conjuncts = list[dict[str, Any]]
Part = Conjuncts | _False


@dataclass(frozen=True, slots=True)
class ServerCondition:
    """The WHERE clause as the server sees it for one binding."""

    conjuncts: Part
    exact: bool


Builder = Callable[[Vals], tuple[Part, bool]]

_TRUE_EXACT: tuple[Part, bool] = ([], True)
_TRUE_INEXACT: tuple[Part, bool] = ([], False)
_FALSE_EXACT: tuple[Part, bool] = (FALSE, True)

ID_FIELD = "_id"


def is_server_field(field: str) -> bool:
    """Fields Mango can address literally: a dot would mean nesting, ``$`` an operator."""
    return bool(field) and "." not in field and not field.startswith("$")


def null_or_missing(field: str) -> dict[str, Any]:
    return {"$or": [{field: {"$eq": None}}, {field: {"$exists": False}}]}


def not_null(field: str) -> dict[str, Any]:
    return {field: {"$gte": False}}


def equality_fields(selector: dict[str, Any]) -> frozenset[str]:
    """Top-level fields fixed by ``$eq`` (what an index may skip or look up directly)."""
    return frozenset(
        k
        for k, v in selector.items()
        if not k.startswith("$") and isinstance(v, dict) and "$eq" in v
    )


def _tighter(op: str, a: Any, b: Any) -> tuple[Any] | None:
    """The stricter of two ``$gte``/``$lte`` bounds on booleans and numbers, else None.

    Mango's collation puts false < true < every number; text bounds are never compared
    here (ICU order is not known on the client).
    """
    ka, kb = _mango_key(a), _mango_key(b)
    if ka is None or kb is None:
        return None
    pick_b = kb > ka if op == "$gte" else kb < ka
    return (b if pick_b else a,)


def _mango_key(value: Any) -> tuple[int, int | float] | None:
    if type(value) is bool:
        return (0, int(value))
    if type(value) is int or type(value) is float:
        return (1, value)
    return None


def widen_for_index(
    selector: dict[str, Any], indexed: frozenset[str]
) -> tuple[dict[str, Any], frozenset[str]]:
    """Turn ``{"x": {"$in": [1, true]}}`` into a range when ``x`` is indexed.

    SQL's ``x = 1`` also matches ``true`` (see :func:`_equivalents`), but CouchDB cannot
    read ``$in`` from an index, so a point query would scan. ``{"$gte": true, "$lte": 1}``
    (``0``: ``{"$gte": false, "$lte": 0}``) is one index range holding both values and
    only the numbers below them; the client drops the rest. Returns the selector and the
    fields widened (no longer exact).
    """
    widened: set[str] = set()
    out = selector
    for field, cond in selector.items():
        if field not in indexed or not isinstance(cond, dict) or list(cond) != ["$in"]:
            continue
        values = cond["$in"]
        if len(values) != 2:
            continue
        flags = [v for v in values if type(v) is bool]
        numbers = [v for v in values if type(v) is not bool and _number(v) is not None]
        if len(flags) != 1 or len(numbers) != 1 or int(flags[0]) != numbers[0]:
            continue
        if out is selector:
            out = dict(selector)
        out[field] = {"$gte": flags[0], "$lte": numbers[0]}
        widened.add(field)
    return out, frozenset(widened)


def conjoin(conjuncts: Conjuncts) -> dict[str, Any]:
    """One selector object from conjuncts, merging operators on the same field.

    Conditions that would collide (two ``$gte`` on one field, two ``$or``) go to ``$and``.
    """
    out: dict[str, Any] = {}
    extra: list[dict[str, Any]] = []
    for conjunct in conjuncts:
        for key, cond in conjunct.items():
            if key not in out:
                out[key] = dict(cond) if isinstance(cond, dict) else cond
                continue
            have = out[key]
            if key.startswith("$") or not isinstance(have, dict) or not isinstance(cond, dict):
                extra.append({key: cond})
                continue
            rest = {}
            for op, value in cond.items():
                if op not in have:
                    have[op] = value
                elif op in ("$gte", "$lte") and (tighter := _tighter(op, have[op], value)):
                    have[op] = tighter[0]
                else:
                    rest[op] = value
            if rest:
                extra.append({key: rest})
    if extra:
        out["$and"] = extra
    return out


# -- numbers and booleans -------------------------------------------------------------------


def _number(value: Any) -> int | float | None:
    kind = type(value)
    if kind is bool:
        return int(value)
    if kind is int or kind is float:
        return value
    return None


def _equivalents(value: Any) -> list[Any]:
    """The JSON values SQL treats as equal to ``value`` (``1`` -> ``[1, true]``)."""
    n = _number(value)
    if n != 0 and n != 1:
        return [value]
    if type(value) is bool:
        return [value, int(value)]
    return [value, n == 1]


def _unique(values: list[Any]) -> list[Any]:
    seen: set[tuple[str, Any]] = set()
    out = []
    for v in values:
        key = (type(v).__name__, v)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def _id_forms(values: list[Any], integer_ids: str | None) -> list[str]:
    """The stored ``_id`` texts equal to one of the SQL values once read by the cursor.

    Text ids equal text only. ``integer_ids`` names the table when its ``id`` column is
    INTEGER: ids in the form :func:`..mapping.encode_integer_id` writes read back as ints
    and equal numbers of the same value; any other id of it stays text.
    """
    if integer_ids is None:
        return [v for v in values if type(v) is str]
    ids: list[str] = []
    for v in values:
        n = _number(v)
        if n is not None:
            if type(n) is int or float(n).is_integer():
                ids.append(encode_integer_id(integer_ids, int(n)))
        elif type(v) is str and decode_integer_id(integer_ids, v) is v:
            ids.append(v)
    return ids


def _eq(field: str, value: Any, integer_ids: str | None = None) -> tuple[Part, bool]:
    if field == ID_FIELD:
        ids = _id_forms([value], integer_ids)
        return ([{field: {"$eq": ids[0]}}], True) if ids else _FALSE_EXACT
    values = _equivalents(value)
    if len(values) == 1:
        return [{field: {"$eq": value}}], True
    return [{field: {"$in": values}}], True


def _in(field: str, values: list[Any], integer_ids: str | None = None) -> tuple[Part, bool]:
    if field == ID_FIELD:
        values = _unique(_id_forms(values, integer_ids))
    else:
        values = _unique([e for v in values for e in _equivalents(v)])
    if not values:
        return _FALSE_EXACT
    if len(values) == 1:
        return [{field: {"$eq": values[0]}}], True
    return [{field: {"$in": values}}], True


def _not_in(field: str, values: list[Any], integer_ids: str | None = None) -> tuple[Part, bool]:
    if field == ID_FIELD:  # ids are never null, never arrays
        ids = _unique(_id_forms(values, integer_ids))
        return ([{field: {"$nin": ids}}] if ids else []), True
    listed = _unique([e for v in values for e in _equivalents(v)])
    # ``$gte: false`` says "present and not null" (null sorts first). Not ``null`` inside
    # the ``$nin`` list: PouchDB Server fails on a null in an $in/$nin list under $and
    # ("Cannot read properties of null"); both forms mean the same on CouchDB.
    present: dict[str, Any] = {"$gte": False, "$nin": listed} if listed else {"$gte": False}
    return [
        {
            "$or": [
                {field: present},
                # $nin looks inside arrays; SQL compares the array as one value.
                {field: {"$type": "array"}},
            ]
        }
    ], True


def _range(field: str, op: str, value: Any) -> tuple[Part, bool]:
    if field == ID_FIELD:
        return _TRUE_INEXACT
    n = _number(value)
    if n is None:  # text: CouchDB's ICU order is not SQL's, so only the type is bounded
        return ([{field: {"$gte": ""}}] if op in (">", ">=") else [not_null(field)]), False
    strict = op in ("<", ">")
    if op in (">", ">="):
        true_in = n < 1 if strict else n <= 1
        false_in = n < 0 if strict else n <= 0
        lower: Any = False if false_in else True if true_in else n
        return [{field: {"$gte": lower}}], not strict and not true_in
    # Upper bounds: booleans sort below every number in Mango, so they are always
    # inside $lte; exact only when SQL keeps both of them too.
    both_in = (n > 1) if strict else (n >= 1)
    return [{field: {"$gte": False, "$lte": n}}], not strict and both_in


def _compare(field: str, op: str, value: Any, integer_ids: str | None = None) -> tuple[Part, bool]:
    if value is None:
        return _FALSE_EXACT
    if type(value) is list or type(value) is dict:
        return _TRUE_INEXACT
    if op == "=":
        return _eq(field, value, integer_ids)
    if op == "!=":
        return _not_in(field, [value], integer_ids)
    return _range(field, op, value)


# -- LIKE -----------------------------------------------------------------------------------

_NUMBER_TEXT_CHARS = frozenset("0123456789-")


def like_to_regex(pattern: str, escape: str | None) -> tuple[str, bool]:
    """A portable ``$regex`` accepting every string the LIKE pattern matches.

    Returns the regex and whether the pattern could match the text of a number (so
    numbers and booleans, which SQL converts to text for LIKE, must be let through).
    ASCII punctuation is escaped with a backslash (literal in both PCRE and JavaScript);
    letters, digits and non-ASCII characters stand for themselves.
    """
    out = ["^"]
    literals: list[str] = []
    wildcard = False
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if escape is not None and ch == escape and i + 1 < n:
            ch = pattern[i + 1]
            i += 2
        elif ch in ("%", "_"):
            wildcard = True
            i += 1
            continue
        else:
            i += 1
        if wildcard:
            out.append(r"[\s\S]*")
            wildcard = False
        literals.append(ch)
        out.append("\\" + ch if ch.isascii() and not ch.isalnum() else ch)
    if wildcard:
        out.append(r"[\s\S]*")
    out.append("$")
    return "".join(out), all(c in _NUMBER_TEXT_CHARS for c in literals)


def _like(field: str, pattern: Any, escape: Any) -> tuple[Part, bool]:
    if pattern is None:
        return _FALSE_EXACT
    if type(pattern) is not str or (escape is not None and type(escape) is not str):
        return _TRUE_INEXACT
    if escape is not None and len(escape) != 1:
        return _TRUE_INEXACT  # the client raises the error
    regex, numeric = like_to_regex(pattern, escape)
    cond = {field: {"$regex": regex}}
    if not numeric or field == ID_FIELD:
        return [cond], False
    return [{"$or": [cond, {field: {"$type": "number"}}, {field: {"$type": "boolean"}}]}], False


# -- the builder ----------------------------------------------------------------------------


def _const(node: Expr) -> ConstFn | None:
    """The evaluator of a node that reads no column, else None."""
    return compile_expr(node).const if is_constant(node) else None


def _column_and_value(left: Expr, right: Expr) -> tuple[str, ConstFn, bool] | None:
    """``(field, constant side, mirrored)`` when one side is a column, the other constant."""
    if isinstance(left, Column) and (c := _const(right)) is not None:
        return left.field, c, False
    if isinstance(right, Column) and (c := _const(left)) is not None:
        return right.field, c, True
    return None


def _inexact(vals: Vals) -> tuple[Part, bool]:
    return _TRUE_INEXACT


def _atom(node: Expr, integer_ids: str | None) -> Builder:
    const = _const(node)
    if const is not None:

        def constant(vals: Vals) -> tuple[Part, bool]:
            return _TRUE_EXACT if const(vals) is True else _FALSE_EXACT

        return constant
    if isinstance(node, Compare | NullSafeEq):
        found = _column_and_value(node.left, node.right)
        if found is None or not is_server_field(found[0]):
            return _inexact
        field, get, mirrored = found
        if isinstance(node, Compare):
            op = MIRRORED_COMPARISON[node.op] if mirrored else node.op
            return lambda vals: _compare(field, op, get(vals), integer_ids)
        negated = node.negated

        def null_safe(vals: Vals) -> tuple[Part, bool]:
            value = get(vals)
            if value is None:
                return _is_null(field, negated)
            return _TRUE_INEXACT if negated else _compare(field, "=", value, integer_ids)

        return null_safe
    if not isinstance(node, IsNull | IsBool | InList | Like | Truth) or not isinstance(
        node.operand, Column
    ):
        return _inexact
    field = node.operand.field
    if not is_server_field(field):
        return _inexact
    if isinstance(node, IsNull):
        negated = node.negated
        return lambda vals: _is_null(field, negated)
    if isinstance(node, InList):
        return _in_list(field, node, integer_ids)
    if isinstance(node, Like):
        return _like_atom(field, node)
    if field == ID_FIELD:
        return _inexact
    if isinstance(node, IsBool):
        if node.negated:
            return _inexact
        node = Truth(node.operand, negated=not node.value)
    # Truth: TRUE, non-zero numbers (and text/arrays, which the client refuses) sort at
    # or above true; the falsy values are exactly false and 0.
    part: Part = [{field: {"$in": [False, 0]}}] if node.negated else [{field: {"$gte": True}}]
    return lambda vals: (part, False)


def _in_list(field: str, node: InList, integer_ids: str | None) -> Builder:
    getters = [_const(i) for i in node.items]
    present = [g for g in getters if g is not None]
    if len(present) != len(getters):
        return _inexact
    negated = node.negated

    def in_list(vals: Vals) -> tuple[Part, bool]:
        values = [g(vals) for g in present]
        if any(type(v) is list or type(v) is dict for v in values):
            return _TRUE_INEXACT
        if not negated:
            return _in(field, [v for v in values if v is not None], integer_ids)
        if not values:
            return _TRUE_EXACT
        if any(v is None for v in values):
            return _FALSE_EXACT  # x NOT IN (…, NULL) is never TRUE
        return _not_in(field, values, integer_ids)

    return in_list


def _like_atom(field: str, node: Like) -> Builder:
    if node.negated or node.case_insensitive:
        return _inexact
    get_p = _const(node.pattern)
    get_e = _const(node.escape) if node.escape is not None else None
    if get_p is None or (node.escape is not None and get_e is None):
        return _inexact
    pattern = get_p

    def like(vals: Vals) -> tuple[Part, bool]:
        e = get_e(vals) if get_e is not None else None
        if get_e is not None and e is None:
            return _FALSE_EXACT
        return _like(field, pattern(vals), e)

    return like


def _is_null(field: str, negated: bool) -> tuple[Part, bool]:
    if field == ID_FIELD:
        return _TRUE_EXACT if negated else _FALSE_EXACT
    return ([not_null(field)] if negated else [null_or_missing(field)]), True


def _junction(node: And | Or, integer_ids: str | None) -> Builder:
    builders = [_build(i, integer_ids) for i in node.items]
    if isinstance(node, And):

        def both(vals: Vals) -> tuple[Part, bool]:
            out: Conjuncts = []
            exact = True
            for b in builders:
                part, ok = b(vals)
                if isinstance(part, _False):
                    return _FALSE_EXACT
                out.extend(part)
                exact = exact and ok
            return out, exact

        return both

    def either(vals: Vals) -> tuple[Part, bool]:
        branches: list[Conjuncts] = []
        exact = True
        for b in builders:
            part, ok = b(vals)
            exact = exact and ok
            if isinstance(part, _False):
                continue
            if not part:  # this branch admits everything: so does the OR
                return [], ok
            branches.append(part)
        if not branches:
            return _FALSE_EXACT
        if len(branches) == 1:
            return branches[0], exact
        alternatives: list[dict[str, Any]] = []
        for branch in branches:
            joined = conjoin(branch)
            # (a OR (b OR c)) is sent flat, as one $or.
            nested = joined["$or"] if list(joined) == ["$or"] else [joined]
            alternatives.extend(nested)
        return [{"$or": alternatives}], exact

    return either


def _build(node: Expr, integer_ids: str | None) -> Builder:
    if isinstance(node, And | Or):
        return _junction(node, integer_ids)
    return _atom(node, integer_ids)


def compile_selector(
    where: Expr | None, *, integer_ids: str | None = None
) -> Callable[[Vals], ServerCondition]:
    """Compile an NNF WHERE once; the result builds the server condition per binding.

    ``integer_ids``: the table, when its ``id`` column is INTEGER (see :func:`_id_forms`).
    """
    if where is None:
        return lambda vals: ServerCondition([], True)
    build = _build(where, integer_ids)

    def server_condition(vals: Vals) -> ServerCondition:
        part, exact = build(vals)
        return ServerCondition(part, exact)

    return server_condition
