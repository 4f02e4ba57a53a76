"""Exact SQL evaluation on the client: the expression tree compiled to closures.

Compilation happens once per plan (plans are cached per SQL string). Binding happens
once per execute: :attr:`Compiled.make` takes the bound values and returns a function of
one document, with constants folded (a LIKE pattern is compiled to a regex once, an IN
list becomes a set). Evaluating a row is then a few closure calls, not a tree walk.

Semantics are SQL's, with SQLite's rules where databases differ (see :mod:`.collation`):
three-valued logic (None is unknown), NULL-propagating operators, integer division that
truncates, division by zero giving NULL, ``LIKE`` anchored and case-sensitive.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from . import errors
from .collation import compare, equal, json_text, sort_key, to_number, to_text
from .expressions import (
    Aggregate,
    And,
    Arith,
    Case,
    Cast,
    Column,
    Compare,
    Expr,
    Func,
    InList,
    IsBool,
    IsNull,
    Like,
    Literal,
    Neg,
    Not,
    NullSafeEq,
    Or,
    Param,
    Truth,
    nnf,
)

__all__ = [
    "Accumulator",
    "Compiled",
    "ConstFn",
    "RowFn",
    "Vals",
    "compile_expr",
    "distinct_key",
    "like_regex",
    "make_accumulator",
    "order_key",
]

Vals = Sequence[Any]
Doc = Mapping[str, Any]
RowFn = Callable[[Doc], Any]
ConstFn = Callable[[Vals], Any]


@dataclass(frozen=True, slots=True)
class Compiled:
    """A compiled node: ``make(vals)`` gives its row function for one binding.

    ``const`` is set when the node reads no column: its value from the bound values
    alone, so callers (and parents) can fold it at bind time.
    """

    const: ConstFn | None
    make: Callable[[Vals], RowFn]


def _constant(const: ConstFn) -> Compiled:
    def make(vals: Vals) -> RowFn:
        value = const(vals)
        return lambda doc: value

    return Compiled(const, make)


def _consts(children: Sequence[Compiled]) -> list[ConstFn] | None:
    """The constant evaluators of all children, or None if any reads a column."""
    out = [c.const for c in children if c.const is not None]
    return out if len(out) == len(children) else None


def _lift(fn: Callable[..., Any], *children: Compiled) -> Compiled:
    """A node whose value is ``fn(*child values)``; ``fn`` handles NULL itself."""
    consts = _consts(children)
    if consts is not None:
        return _constant(lambda vals: fn(*[c(vals) for c in consts]))
    if len(children) == 1:
        (only,) = children

        def make1(vals: Vals) -> RowFn:
            f = only.make(vals)
            return lambda doc: fn(f(doc))

        return Compiled(None, make1)
    if len(children) == 2:
        left, right = children

        def make2(vals: Vals) -> RowFn:
            if left.const is not None:
                a = left.const(vals)
                g = right.make(vals)
                return lambda doc: fn(a, g(doc))
            f = left.make(vals)
            if right.const is not None:
                b = right.const(vals)
                return lambda doc: fn(f(doc), b)
            g = right.make(vals)
            return lambda doc: fn(f(doc), g(doc))

        return Compiled(None, make2)

    def make(vals: Vals) -> RowFn:
        fns = [c.make(vals) for c in children]
        return lambda doc: fn(*[f(doc) for f in fns])

    return Compiled(None, make)


# -- operators ------------------------------------------------------------------------------


def _add(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    return to_number(a) + to_number(b)


def _sub(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    return to_number(a) - to_number(b)


def _mul(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    return to_number(a) * to_number(b)


def _div(a: Any, b: Any) -> Any:
    # SQLite: integer division truncates toward zero; x / 0 is NULL.
    if a is None or b is None:
        return None
    x, y = to_number(a), to_number(b)
    if y == 0:
        return None
    if type(x) is int and type(y) is int:
        q = abs(x) // abs(y)
        return q if (x >= 0) == (y >= 0) else -q
    return x / y


def _mod(a: Any, b: Any) -> Any:
    # SQLite: both operands truncated to integers, the sign follows the dividend, the
    # result is a float when an operand was one; x % 0 is NULL.
    if a is None or b is None:
        return None
    x, y = to_number(a), to_number(b)
    ix, iy = int(x), int(y)
    if iy == 0:
        return None
    r = abs(ix) % abs(iy)
    r = -r if ix < 0 else r
    return float(r) if type(x) is float or type(y) is float else r


def _concat(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    return to_text(a) + to_text(b)


def _neg(a: Any) -> Any:
    return None if a is None else -to_number(a)


_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add,
    "-": _sub,
    "*": _mul,
    "/": _div,
    "%": _mod,
    "||": _concat,
}

_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "=": equal,
    "!=": lambda a, b: not equal(a, b),
    "<": lambda a, b: compare(a, b) < 0,
    "<=": lambda a, b: compare(a, b) <= 0,
    ">": lambda a, b: compare(a, b) > 0,
    ">=": lambda a, b: compare(a, b) >= 0,
}


def _compare_fn(op: str) -> Callable[[Any, Any], bool | None]:
    test = _TESTS[op]

    def fn(a: Any, b: Any) -> bool | None:
        if a is None or b is None:
            return None
        return test(a, b)

    return fn


def _truth(value: Any) -> bool | None:
    if value is None or value is True or value is False:
        return value
    kind = type(value)
    if kind is int or kind is float:
        return value != 0
    raise errors.DataError(f"cannot use a {kind.__name__} value ({value!r}) as a condition")


# -- functions ------------------------------------------------------------------------------


def _lower(v: Any) -> Any:
    return None if v is None else to_text(v).lower()


def _upper(v: Any) -> Any:
    return None if v is None else to_text(v).upper()


def _length(v: Any) -> Any:
    return None if v is None else len(to_text(v))


def _abs(v: Any) -> Any:
    return None if v is None else abs(to_number(v))


def _floor(v: Any) -> Any:
    # Integers stay integers; a float stays a float (SQLite and PostgreSQL agree).
    if v is None:
        return None
    n = to_number(v)
    return n if type(n) is int else float(math.floor(n))


def _ceil(v: Any) -> Any:
    if v is None:
        return None
    n = to_number(v)
    return n if type(n) is int else float(math.ceil(n))


def _nullif(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return a
    return None if equal(a, b) else a


_SCALAR_FUNCTIONS: dict[str, tuple[Callable[..., Any], int]] = {
    "lower": (_lower, 1),
    "upper": (_upper, 1),
    "length": (_length, 1),
    "abs": (_abs, 1),
    "floor": (_floor, 1),
    "ceil": (_ceil, 1),
    "nullif": (_nullif, 2),
}
FUNCTION_NAMES = frozenset({*_SCALAR_FUNCTIONS, "coalesce", "ifnull"})


def _coalesce(children: list[Compiled]) -> Compiled:
    def first(values: Sequence[Any]) -> Any:
        return next((v for v in values if v is not None), None)

    consts = _consts(children)
    if consts is not None:
        return _constant(lambda vals: first([c(vals) for c in consts]))

    def make(vals: Vals) -> RowFn:
        fns = [c.make(vals) for c in children]

        def row(doc: Doc) -> Any:
            for f in fns:  # lazily, like SQL's COALESCE
                value = f(doc)
                if value is not None:
                    return value
            return None

        return row

    return Compiled(None, make)


_NUMBER_TEXT = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")


def _cast_fn(to: str) -> Callable[[Any], Any]:
    def number(v: Any) -> int | float:
        if isinstance(v, str):
            if not _NUMBER_TEXT.fullmatch(v):
                raise errors.DataError(f"cannot CAST the text {v!r} to a number")
            text = v.strip()
            try:
                return int(text)
            except ValueError:
                return float(text)
        return to_number(v)

    def cast(v: Any) -> Any:
        if v is None:
            return None
        if to == "text":
            return to_text(v)
        n = number(v)
        if to == "integer":
            return int(n)
        if to == "real":
            return float(n)
        # NUMERIC (SQLite): an integral float becomes an integer.
        if type(n) is float and n.is_integer() and abs(n) < 2**63:
            return int(n)
        return n

    return cast


# -- LIKE -----------------------------------------------------------------------------------

_NEVER = re.compile(r"(?!)")


@lru_cache(maxsize=512)
def like_regex(pattern: str, escape: str | None, case_insensitive: bool = False) -> re.Pattern[str]:
    """The anchored regex of a LIKE pattern: ``%`` any run, ``_`` one character.

    Every other character is literal (regex metacharacters included). A pattern that
    ends in the escape character matches nothing, as in SQLite.
    """
    if escape is not None and len(escape) != 1:
        raise errors.DataError(f"ESCAPE must be a single character, got {escape!r}")
    if case_insensitive:
        pattern = pattern.lower()
        escape = escape.lower() if escape is not None else None
    parts: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == escape:
            if i + 1 >= n:
                return _NEVER
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(parts), re.DOTALL)


def _compile_like(
    node: Like, operand: Compiled, pattern: Compiled, escape: Compiled | None
) -> Compiled:
    negated, ci = node.negated, node.case_insensitive

    def test(value: Any, rx: re.Pattern[str]) -> bool | None:
        if value is None:
            return None
        text = to_text(value)
        if ci:
            text = text.lower()
        return (rx.fullmatch(text) is not None) != negated

    def regex(p: Any, e: Any) -> re.Pattern[str] | None:
        if p is None or (escape is not None and e is None):
            return None
        return like_regex(to_text(p), None if e is None else to_text(e), ci)

    if pattern.const is not None and (escape is None or escape.const is not None):
        pconst, econst = pattern.const, escape.const if escape is not None else None

        def make(vals: Vals) -> RowFn:
            rx = regex(pconst(vals), econst(vals) if econst is not None else None)
            if rx is None:
                return lambda doc: None
            f = operand.make(vals)
            return lambda doc: test(f(doc), rx)

        return Compiled(None, make) if operand.const is None else _fold(make)

    def row_level(value: Any, p: Any, e: Any = None) -> bool | None:
        rx = regex(p, e)
        return None if rx is None else test(value, rx)

    children = (operand, pattern) if escape is None else (operand, pattern, escape)
    return _lift(row_level, *children)


def _fold(make: Callable[[Vals], RowFn]) -> Compiled:
    # Every input is constant: evaluate with an empty document.
    return _constant(lambda vals: make(vals)({}))


# -- IN -------------------------------------------------------------------------------------

_HASHABLE = (str, int, float, bool)


def _compile_in(node: InList, operand: Compiled, items: list[Compiled]) -> Compiled:
    negated = node.negated
    empty_result = negated  # SQLite: NULL IN () is false, NULL NOT IN () is true

    def decide(found: bool, saw_null: bool) -> bool | None:
        if found:
            return not negated
        if saw_null:
            return None
        return negated

    item_consts = _consts(items)
    if item_consts is not None:
        consts = item_consts

        def make(vals: Vals) -> RowFn:
            values = [c(vals) for c in consts]
            saw_null = any(v is None for v in values)
            present = [v for v in values if v is not None]
            members = frozenset(present) if all(type(v) in _HASHABLE for v in present) else None
            f = operand.make(vals)

            def row(doc: Doc) -> bool | None:
                value = f(doc)
                if not values:
                    return empty_result
                if value is None:
                    return None
                if members is not None and type(value) in _HASHABLE:
                    return decide(value in members, saw_null)
                return decide(any(equal(value, v) for v in present), saw_null)

            return row

        return Compiled(None, make) if operand.const is None else _fold(make)

    def general(value: Any, *values: Any) -> bool | None:
        if not values:
            return empty_result
        if value is None:
            return None
        present = [v for v in values if v is not None]
        return decide(any(equal(value, v) for v in present), len(present) < len(values))

    return _lift(general, operand, *items)


# -- logic ----------------------------------------------------------------------------------


def _compile_junction(children: list[Compiled], is_and: bool) -> Compiled:
    # AND: any FALSE wins, else any NULL makes it unknown. OR: the same with TRUE.
    stop = not is_and

    def combine(values: Sequence[Any]) -> bool | None:
        result: bool | None = not stop
        for v in values:
            if v is stop:
                return stop
            if v is None:
                result = None
        return result

    consts = _consts(children)
    if consts is not None:
        return _constant(lambda vals: combine([c(vals) for c in consts]))

    def make(vals: Vals) -> RowFn:
        unknown = False
        fns: list[RowFn] = []
        for c in children:
            if c.const is not None:
                v = c.const(vals)
                if v is stop:
                    return lambda doc: stop
                unknown = unknown or v is None
            else:
                fns.append(c.make(vals))
        base: bool | None = None if unknown else not stop
        if len(fns) == 1 and not unknown:
            return fns[0]

        def row(doc: Doc) -> bool | None:
            result = base
            for f in fns:
                v = f(doc)
                if v is stop:
                    return stop
                if v is None:
                    result = None
            return result

        return row

    return Compiled(None, make)


def _compile_case(node: Case) -> Compiled:
    whens = [(compile_expr(c), compile_expr(v)) for c, v in node.whens]
    default = compile_expr(node.default) if node.default is not None else None

    def make(vals: Vals) -> RowFn:
        pairs = [(c.make(vals), v.make(vals)) for c, v in whens]
        fallback = default.make(vals) if default is not None else None

        def row(doc: Doc) -> Any:
            for cond, value in pairs:
                if cond(doc) is True:
                    return value(doc)
            return fallback(doc) if fallback is not None else None

        return row

    parts = [x for pair in whens for x in pair] + ([default] if default else [])
    if all(p.const is not None for p in parts):
        return _fold(make)
    return Compiled(None, make)


# -- entry point ----------------------------------------------------------------------------


def compile_expr(node: Expr) -> Compiled:
    """Compile an expression (predicates included) to a :class:`Compiled`."""
    if isinstance(node, Column):
        field = node.field

        def get(doc: Doc) -> Any:
            return doc.get(field)

        return Compiled(None, lambda vals: get)
    if isinstance(node, Param):
        slot = node.slot
        return _constant(lambda vals: vals[slot])
    if isinstance(node, Literal):
        value = node.value
        return _constant(lambda vals: value)
    if isinstance(node, Neg):
        return _lift(_neg, compile_expr(node.operand))
    if isinstance(node, Arith):
        return _lift(_ARITH[node.op], compile_expr(node.left), compile_expr(node.right))
    if isinstance(node, Compare):
        return _lift(_compare_fn(node.op), compile_expr(node.left), compile_expr(node.right))
    if isinstance(node, NullSafeEq):
        negated = node.negated

        def same(a: Any, b: Any) -> bool:
            if a is None or b is None:
                return (a is b) != negated
            return equal(a, b) != negated

        return _lift(same, compile_expr(node.left), compile_expr(node.right))
    if isinstance(node, IsNull):
        negated = node.negated
        return _lift(lambda v: (v is None) != negated, compile_expr(node.operand))
    if isinstance(node, Truth):
        negated = node.negated

        def truth(v: Any) -> bool | None:
            t = _truth(v)
            return t if t is None or not negated else not t

        return _lift(truth, compile_expr(node.operand))
    if isinstance(node, IsBool):
        value, negated = node.value, node.negated
        return _lift(lambda v: (_truth(v) is value) != negated, compile_expr(node.operand))
    if isinstance(node, Not):
        # WHERE arrives in negation normal form; a NOT elsewhere (a CASE condition, the
        # select list) gets the same three-valued rewrite here.
        return compile_expr(nnf(node))
    if isinstance(node, And | Or):
        return _compile_junction([compile_expr(i) for i in node.items], isinstance(node, And))
    if isinstance(node, InList):
        return _compile_in(node, compile_expr(node.operand), [compile_expr(i) for i in node.items])
    if isinstance(node, Like):
        escape = compile_expr(node.escape) if node.escape is not None else None
        return _compile_like(node, compile_expr(node.operand), compile_expr(node.pattern), escape)
    if isinstance(node, Func):
        args = [compile_expr(a) for a in node.args]
        if node.name in ("coalesce", "ifnull"):
            return _coalesce(args)
        fn, _arity = _SCALAR_FUNCTIONS[node.name]
        return _lift(fn, *args)
    if isinstance(node, Cast):
        return _lift(_cast_fn(node.to), compile_expr(node.operand))
    if isinstance(node, Case):
        return _compile_case(node)
    if isinstance(node, Aggregate):  # pragma: no cover - the planner routes these
        raise errors.NotSupportedError(f"aggregate {node.name}() used outside the select list")
    raise errors.NotSupportedError(f"cannot evaluate {type(node).__name__}")  # pragma: no cover


# -- DISTINCT, ORDER BY and aggregates ------------------------------------------------------


def distinct_key(value: Any) -> Any:
    """A hashable key under which SQL-equal values collide (NULLs are one group)."""
    kind = type(value)
    if kind is list or kind is dict:
        return ("\0json", json_text(value))
    return value


class _Reversed:
    """Inverts the order of a key component, for DESC."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: _Reversed) -> bool:
        return bool(other.key < self.key)

    def __le__(self, other: _Reversed) -> bool:
        return bool(other.key <= self.key)

    def __gt__(self, other: _Reversed) -> bool:
        return bool(other.key > self.key)

    def __ge__(self, other: _Reversed) -> bool:
        return bool(other.key >= self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and bool(self.key == other.key)

    __hash__ = None  # type: ignore[assignment]


def order_key(terms: Sequence[tuple[RowFn, bool, bool]]) -> Callable[[Doc], tuple[Any, ...]]:
    """Sort key over ``(row function, descending, nulls_first)`` terms."""

    def key(doc: Doc) -> tuple[Any, ...]:
        parts: list[Any] = []
        for fn, desc, nulls_first in terms:
            value = fn(doc)
            is_null = value is None
            parts.append(is_null != nulls_first)  # False sorts first
            k = sort_key(value)
            parts.append(_Reversed(k) if desc else k)
        return tuple(parts)

    return key


class Accumulator:
    """One aggregate over the rows fed to it."""

    __slots__ = ("count", "distinct", "fn", "kind", "seen", "value")

    def __init__(self, kind: str, fn: RowFn | None, distinct: bool) -> None:
        self.kind = kind
        self.fn = fn
        self.distinct = distinct
        self.seen: set[Any] = set()
        self.count = 0
        self.value: Any = None

    def add(self, doc: Doc) -> None:
        if self.fn is None:  # count(*)
            self.count += 1
            return
        value = self.fn(doc)
        if value is None:
            return
        if self.distinct:
            key = distinct_key(value)
            if key in self.seen:
                return
            self.seen.add(key)
        self.count += 1
        kind = self.kind
        if kind == "count":
            return
        if kind in ("sum", "avg"):
            number = to_number(value)
            self.value = number if self.value is None else self.value + number
        elif self.value is None:
            self.value = value
        else:
            order = compare(value, self.value)
            if (order < 0) if kind == "min" else (order > 0):
                self.value = value

    def result(self) -> Any:
        if self.kind == "count":
            return self.count
        if self.kind == "avg":
            return None if self.count == 0 else self.value / self.count
        return self.value  # SQL: SUM/MIN/MAX of no rows is NULL


def make_accumulator(node: Aggregate, arg: Compiled | None, vals: Vals) -> Accumulator:
    return Accumulator(node.name, arg.make(vals) if arg is not None else None, node.distinct)
