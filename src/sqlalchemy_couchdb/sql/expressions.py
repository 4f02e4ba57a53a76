"""The translator's own expression tree: small, immutable, and free of sqlglot.

:mod:`.parse` builds it from sqlglot's AST; :mod:`.evaluate` compiles it to closures and
:mod:`.selector` to Mango. Predicates are put in negation normal form (:func:`nnf`) first,
using only rewrites that hold in SQL's three-valued logic, so that both consumers see
``x != 1`` rather than ``NOT (x = 1)`` and never have to reason about ``NOT`` over NULL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Aggregate",
    "And",
    "Arith",
    "Case",
    "Cast",
    "Column",
    "Compare",
    "Expr",
    "Func",
    "InList",
    "IsBool",
    "IsNull",
    "Like",
    "Literal",
    "Neg",
    "Not",
    "NullSafeEq",
    "Or",
    "Param",
    "Truth",
    "columns_of",
    "has_aggregate",
    "is_constant",
    "nnf",
    "null_rejected",
]

NEGATED_COMPARISON = {"=": "!=", "!=": "=", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
MIRRORED_COMPARISON = {"=": "=", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}


class Expr:
    """Base of every node; ``children`` lists sub-expressions for generic walks."""

    __slots__ = ()

    def children(self) -> tuple[Expr, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class Column(Expr):
    """A column of the one table: ``name`` as SQL spells it, ``field`` in the document."""

    name: str
    field: str


@dataclass(frozen=True, slots=True)
class Param(Expr):
    """A bound parameter; ``slot`` indexes the bound values tuple."""

    slot: int
    name: str


@dataclass(frozen=True, slots=True)
class Literal(Expr):
    value: Any


@dataclass(frozen=True, slots=True)
class Neg(Expr):
    operand: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class Arith(Expr):
    """``+ - * / %`` and ``||`` (op ``"||"``)."""

    op: str
    left: Expr
    right: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class Func(Expr):
    """A scalar function (lower, upper, length, abs, coalesce, ifnull, nullif)."""

    name: str
    args: tuple[Expr, ...]

    def children(self) -> tuple[Expr, ...]:
        return self.args


@dataclass(frozen=True, slots=True)
class Cast(Expr):
    """``CAST(x AS …)`` to one of: ``integer``, ``real``, ``numeric``, ``text``."""

    operand: Expr
    to: str

    def children(self) -> tuple[Expr, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class Case(Expr):
    """Searched CASE: the first WHEN whose condition is TRUE wins."""

    whens: tuple[tuple[Expr, Expr], ...]
    default: Expr | None

    def children(self) -> tuple[Expr, ...]:
        out: list[Expr] = []
        for cond, value in self.whens:
            out += (cond, value)
        if self.default is not None:
            out.append(self.default)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Aggregate(Expr):
    """count/sum/avg/min/max over all rows (no GROUP BY); ``arg`` None means ``*``."""

    name: str
    arg: Expr | None
    distinct: bool = False

    def children(self) -> tuple[Expr, ...]:
        return () if self.arg is None else (self.arg,)


# -- predicates: their value is True, False or None (unknown) -----------------------------


@dataclass(frozen=True, slots=True)
class Compare(Expr):
    op: str  # = != < <= > >=
    left: Expr
    right: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class NullSafeEq(Expr):
    """``a IS b`` / ``a IS NOT b``: NULL equals NULL, never unknown."""

    left: Expr
    right: Expr
    negated: bool = False

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class InList(Expr):
    operand: Expr
    items: tuple[Expr, ...]
    negated: bool = False

    def children(self) -> tuple[Expr, ...]:
        return (self.operand, *self.items)


@dataclass(frozen=True, slots=True)
class Like(Expr):
    """``LIKE`` (case-sensitive) or ``ILIKE`` (``lower(x) LIKE lower(p)``)."""

    operand: Expr
    pattern: Expr
    escape: Expr | None = None
    negated: bool = False
    case_insensitive: bool = False

    def children(self) -> tuple[Expr, ...]:
        out = (self.operand, self.pattern)
        return out if self.escape is None else (*out, self.escape)


@dataclass(frozen=True, slots=True)
class IsNull(Expr):
    operand: Expr
    negated: bool = False

    def children(self) -> tuple[Expr, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class Truth(Expr):
    """A value used as a condition (``WHERE flag``): true for TRUE and non-zero numbers."""

    operand: Expr
    negated: bool = False

    def children(self) -> tuple[Expr, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class IsBool(Expr):
    """``x IS [NOT] TRUE/FALSE``: a truth test that is never unknown (NULL IS TRUE is false)."""

    operand: Expr
    value: bool
    negated: bool = False

    def children(self) -> tuple[Expr, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class And(Expr):
    items: tuple[Expr, ...]

    def children(self) -> tuple[Expr, ...]:
        return self.items


@dataclass(frozen=True, slots=True)
class Or(Expr):
    items: tuple[Expr, ...]

    def children(self) -> tuple[Expr, ...]:
        return self.items


@dataclass(frozen=True, slots=True)
class Not(Expr):
    """Only before :func:`nnf`; afterwards negation lives in the atoms."""

    operand: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.operand,)


PREDICATES = (Compare, NullSafeEq, InList, Like, IsNull, IsBool, Truth, And, Or, Not)


def walk(node: Expr) -> Iterator[Expr]:
    yield node
    for child in node.children():
        yield from walk(child)


def columns_of(node: Expr) -> set[str]:
    """Document fields a node reads."""
    return {n.field for n in walk(node) if isinstance(n, Column)}


def is_constant(node: Expr) -> bool:
    """True when the node reads no column (its value depends on parameters only)."""
    return not any(isinstance(n, Column | Aggregate) for n in walk(node))


def has_aggregate(node: Expr) -> bool:
    return any(isinstance(n, Aggregate) for n in walk(node))


def as_condition(node: Expr) -> Expr:
    """A node in boolean context: predicates as they are, other values through Truth."""
    if isinstance(node, PREDICATES):
        return node
    if isinstance(node, Literal) and (node.value is None or isinstance(node.value, bool)):
        return node
    return Truth(node)


def nnf(node: Expr, negate: bool = False) -> Expr:
    """Negation normal form: push every NOT down to an atom.

    Each rewrite holds in three-valued logic: De Morgan, ``NOT (a < b)`` = ``a >= b``
    (the order is total on non-NULL values and NULL stays unknown on both sides),
    ``NOT (x IN …)`` = ``x NOT IN …``, ``NOT (x BETWEEN …)`` = ``x < lo OR x > hi``.
    """
    if isinstance(node, Not):
        return nnf(as_condition(node.operand), not negate)
    if isinstance(node, And | Or):
        items = tuple(nnf(as_condition(i), negate) for i in node.items)
        flip = isinstance(node, And) == negate  # And+negate -> Or; Or+negate -> And
        return _flatten(Or(items) if flip else And(items))
    if not negate:
        return node
    if isinstance(node, Compare):
        return Compare(NEGATED_COMPARISON[node.op], node.left, node.right)
    if isinstance(node, NullSafeEq):
        return NullSafeEq(node.left, node.right, not node.negated)
    if isinstance(node, InList):
        return InList(node.operand, node.items, not node.negated)
    if isinstance(node, Like):
        return Like(
            node.operand, node.pattern, node.escape, not node.negated, node.case_insensitive
        )
    if isinstance(node, IsNull):
        return IsNull(node.operand, not node.negated)
    if isinstance(node, Truth):
        return Truth(node.operand, not node.negated)
    if isinstance(node, IsBool):
        return IsBool(node.operand, node.value, not node.negated)
    if isinstance(node, Literal):
        return Literal(None if node.value is None else not node.value)
    return Truth(node, negated=True)


def _flatten(node: And | Or) -> Expr:
    kind = type(node)
    items: list[Expr] = []
    for item in node.items:
        if type(item) is kind:
            items.extend(item.items)
        else:
            items.append(item)
    return items[0] if len(items) == 1 else kind(tuple(items))


def null_rejected(node: Expr) -> frozenset[str]:
    """Fields that must be non-NULL for the (NNF) condition to be TRUE.

    Used to skip fetching rows whose sort key is NULL when the WHERE rules them out.
    """
    if isinstance(node, And):
        out: frozenset[str] = frozenset()
        for item in node.items:
            out |= null_rejected(item)
        return out
    if isinstance(node, Or):
        sets = [null_rejected(i) for i in node.items]
        return frozenset.intersection(*sets) if sets else frozenset()
    if isinstance(node, Compare | Like | Truth):
        return frozenset(_direct_columns(node))
    if isinstance(node, InList):
        if node.negated and not node.items:
            return frozenset()  # x NOT IN () is TRUE even for NULL
        return frozenset(_direct_columns(node))
    # x IS NOT NULL, x IS TRUE and x IS FALSE are false for NULL.
    if (
        isinstance(node, IsNull | IsBool)
        and isinstance(node.operand, Column)
        and node.negated == isinstance(node, IsNull)
    ):
        return frozenset({node.operand.field})
    return frozenset()


def _direct_columns(node: Expr) -> set[str]:
    # Only a bare column operand is certainly NULL-propagating (coalesce(x, 0) is not).
    operands: tuple[Expr, ...]
    if isinstance(node, Compare):
        operands = (node.left, node.right)
    elif isinstance(node, Like | InList | Truth):
        operands = (node.operand,)
    else:
        operands = ()
    return {o.field for o in operands if isinstance(o, Column)}
