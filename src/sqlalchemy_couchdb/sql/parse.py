"""SQL text -> plan: sqlglot parses, this module decides what CouchDB can answer.

Everything the translator cannot evaluate exactly is refused here, before any request,
with ``NotSupportedError`` naming the construct (JOIN, GROUP BY, subqueries, window
functions, unknown functions …) and pointing to the hybrid mode. Syntax errors raise
``ProgrammingError`` quoting the statement. Plans are cached per SQL string.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from ..mapping import ID_COLUMN, REV_COLUMN, TYPE_FIELD, column_to_field
from . import errors
from .ddl import (
    CreateIndexPlan,
    CreateTablePlan,
    DropIndexPlan,
    DropTablePlan,
    create_plan,
    drop_plan,
)
from .evaluate import FUNCTION_NAMES
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
    as_condition,
    columns_of,
    is_constant,
    nnf,
)
from .parameters import Parameters
from .refusal import quote_sql, refuse
from .select import OrderTerm, OutputColumn, SelectPlan
from .selector import is_server_field
from .write import DeletePlan, InsertPlan, UpdatePlan

__all__ = ["Plan", "compile_sql"]

Plan = (
    SelectPlan
    | InsertPlan
    | UpdatePlan
    | DeletePlan
    | CreateTablePlan
    | DropTablePlan
    | CreateIndexPlan
    | DropIndexPlan
)


@lru_cache(maxsize=1024)
def compile_sql(sql: str) -> Plan:
    """The plan of one SQL statement; the same string gives the same (immutable) plan."""
    try:
        statements = [s for s in sqlglot.parse(sql) if s is not None]
    except (ParseError, TokenError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        if isinstance(err, ParseError) and err.errors:
            detail = str(err.errors[0].get("description", detail))
        raise errors.ProgrammingError(f"cannot parse SQL {quote_sql(sql)}: {detail}") from err
    if len(statements) != 1:
        raise errors.ProgrammingError(
            f"expected one SQL statement, got {len(statements)}: {quote_sql(sql)}"
        )
    return _Translator(sql).statement(statements[0])


# sqlglot node -> (IR class or operator)
_ARITH: dict[type[exp.Expr], str] = {
    exp.Add: "+",
    exp.Sub: "-",
    exp.Mul: "*",
    exp.Div: "/",
    exp.Mod: "%",
    exp.DPipe: "||",
}
_COMPARE: dict[type[exp.Expr], str] = {
    exp.EQ: "=",
    exp.NEQ: "!=",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.LT: "<",
    exp.LTE: "<=",
}
_AGGREGATES: dict[type[exp.Expr], str] = {
    exp.Count: "count",
    exp.Sum: "sum",
    exp.Avg: "avg",
    exp.Min: "min",
    exp.Max: "max",
}
_FUNCTIONS: dict[type[exp.Expr], str] = {
    exp.Floor: "floor",
    exp.Ceil: "ceil",
    exp.Lower: "lower",
    exp.Upper: "upper",
    exp.Length: "length",
    exp.Abs: "abs",
}
_CASTS = {
    "integer": ("INT", "BIGINT", "SMALLINT", "TINYINT", "MEDIUMINT", "UBIGINT", "UINT"),
    "real": ("FLOAT", "DOUBLE"),
    "numeric": ("DECIMAL", "BIGDECIMAL"),
    "text": ("VARCHAR", "TEXT", "CHAR", "NVARCHAR", "NCHAR"),
}
_CAST_TARGET = {name: target for target, names in _CASTS.items() for name in names}
_INT_LITERAL = re.compile(r"\d+")

# Arguments each statement may carry; any other that is set is refused by name.
_SELECT_ARGS = {"expressions", "from_", "where", "order", "limit", "offset", "distinct"}
_SELECT_REFUSED = {
    "with_": ("CTE (WITH)", "common table expressions need a query engine"),
    "joins": ("JOIN", "CouchDB has no joins"),
    "group": ("GROUP BY", "CouchDB's Mango queries cannot group"),
    "having": ("HAVING", "it needs GROUP BY"),
    "windows": ("WINDOW", "window functions need a query engine"),
    "qualify": ("QUALIFY", "window functions need a query engine"),
    "laterals": ("LATERAL", "CouchDB has no joins"),
}


class _Translator:
    """One statement's translation: the table in scope and the parameters met so far."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.table: str | None = None
        self.qualifiers: set[str] = set()
        self.param_names: list[str] = []
        self.param_slots: dict[str, int] = {}
        self.positional: bool | None = None
        #: Aggregates met in the select list; None where aggregates are not allowed.
        self.aggregates: list[Aggregate] | None = None
        self.allow_params = True

    # -- statements ---------------------------------------------------------------------------

    def statement(self, node: exp.Expr) -> Plan:
        if isinstance(node, exp.Select):
            return self.select(node)
        if isinstance(node, exp.SetOperation):
            name = type(node).__name__.upper()
            raise refuse(name, "CouchDB answers one query over one table at a time")
        if isinstance(node, exp.Insert):
            return self.insert(node)
        if isinstance(node, exp.Update):
            return self.update(node)
        if isinstance(node, exp.Delete):
            return self.delete(node)
        if isinstance(node, exp.Create):
            return self.create(node)
        if isinstance(node, exp.Drop):
            return self.drop(node)
        if isinstance(node, exp.Transaction | exp.Commit | exp.Rollback):
            raise refuse(
                "transaction control in SQL",
                "CouchDB writes are durable at once; use the connection's commit()/rollback()",
                hybrid=False,
            )
        if isinstance(node, exp.Condition | exp.Alias | exp.Paren | exp.Tuple):
            # sqlglot reads a mistyped keyword as an expression ("SELEC x" is x aliased).
            raise errors.ProgrammingError(f"not a SQL statement: {quote_sql(self.sql)}")
        name = str(node.this).upper() if isinstance(node, exp.Command) else node.key.upper()
        raise refuse(
            f"the {name} statement",
            "the dialect translates SELECT, INSERT, UPDATE, "
            "DELETE and CREATE/DROP TABLE/INDEX only",
            hybrid=False,
        )

    def _parameters(self) -> Parameters:
        return Parameters(tuple(self.param_names), bool(self.positional))

    def _check_args(self, node: exp.Expr, allowed: set[str], what: str) -> None:
        for key, value in node.args.items():
            if key in allowed or not value:
                continue
            if key in _SELECT_REFUSED:
                raise refuse(*_SELECT_REFUSED[key])
            if key == "locks":
                raise refuse(
                    f"{what} … FOR UPDATE",
                    "CouchDB has no row locks; writes are checked by revision instead",
                    hybrid=False,
                )
            raise refuse(
                f"{key.rstrip('_').upper()} in {what}", "the translator cannot evaluate it exactly"
            )

    def _table(self, node: Any, what: str) -> str:
        if isinstance(node, exp.Subquery):
            raise refuse("a subquery in FROM", "CouchDB answers one query over one table")
        if not isinstance(node, exp.Table) or not isinstance(node.this, exp.Identifier):
            raise refuse(f"this {what} source", "only a plain table name can be queried")
        if node.args.get("db") or node.args.get("catalog"):
            raise refuse(
                f"schema-qualified table {node.sql()}",
                "a CouchDB database has one namespace of tables",
                hybrid=False,
            )
        for key, value in node.args.items():
            if value and key not in ("this", "alias"):
                raise refuse(
                    f"{key.upper()} on table {node.name}",
                    "the translator cannot evaluate it exactly",
                )
        name = node.name
        alias = node.args.get("alias")
        self.table = name
        self.qualifiers = {name}
        if alias is not None:
            if alias.args.get("columns"):
                raise refuse("column aliases on a table", "rename columns in the select list")
            self.qualifiers = {alias.name}
        return name

    def select(self, node: exp.Select) -> SelectPlan:
        self._check_args(node, _SELECT_ARGS, "SELECT")
        from_ = node.args.get("from_")
        table = self._table(from_.this, "FROM") if from_ is not None else None
        distinct_node = node.args.get("distinct")
        if distinct_node is not None and distinct_node.args.get("on") is not None:
            raise refuse("DISTINCT ON", "it picks one row per group, which needs GROUP BY")

        self.aggregates = []
        output: list[OutputColumn] = []
        for item in node.expressions:
            output.append(self._output(item))
        aggregates = tuple(self.aggregates)
        if aggregates:
            for o in output:
                if o.expr is None or any(not f.startswith("\0") for f in columns_of(o.expr)):
                    name = "*" if o.expr is None else f"column {o.name!r}"
                    raise refuse(
                        f"{name} next to an aggregate",
                        "without GROUP BY every column must be inside an aggregate",
                    )
        self.aggregates = None

        where_node = node.args.get("where")
        where = self._condition(where_node.this) if where_node is not None else None

        order: list[OrderTerm] = []
        order_node = node.args.get("order")
        if order_node is not None:
            self.aggregates = [] if aggregates else None
            for ordered in order_node.expressions:
                order.append(self._order_term(ordered, output))
            self.aggregates = None
        distinct = distinct_node is not None
        if aggregates:
            order = []  # one row: nothing to order
        elif distinct and order:
            star = any(o.expr is None for o in output)
            exprs = {o.expr for o in output}
            for term in order:
                if term.expr not in exprs and not (star and isinstance(term.expr, Column)):
                    raise refuse(
                        "ORDER BY an expression missing from a SELECT DISTINCT list",
                        "the order of the distinct rows would be undefined",
                        hybrid=False,
                    )
        limit = self._count(node.args.get("limit"), "LIMIT")
        offset = self._count(node.args.get("offset"), "OFFSET")
        return SelectPlan(
            sql=self.sql,
            table=table,
            parameters=self._parameters(),
            output=tuple(output),
            where=where,
            order=tuple(order),
            distinct=distinct,
            aggregates=aggregates,
            limit=limit,
            offset=offset,
            fields=self._fields(
                any(o.expr is None for o in output),
                [*(o.expr for o in output), where, *(t.expr for t in order)]
                + [a.arg for a in aggregates],
            ),
        )

    def _output(self, item: exp.Expr) -> OutputColumn:
        alias = None
        if isinstance(item, exp.Alias):
            alias, item = item.alias, item.this
        if isinstance(item, exp.Star) or (
            isinstance(item, exp.Column) and isinstance(item.this, exp.Star)
        ):
            if isinstance(item, exp.Column):
                self._check_qualifier(item)
            return OutputColumn("*", None)
        expr = self.expr(item)
        if alias is None:
            alias = (
                item.name if isinstance(item, exp.Column) else item.sql(normalize_functions="lower")
            )
        return OutputColumn(alias, expr)

    def _order_term(self, ordered: exp.Ordered, output: list[OutputColumn]) -> OrderTerm:
        node = ordered.this
        expr: Expr | None = None
        if (
            isinstance(node, exp.Literal)
            and not node.is_string
            and _INT_LITERAL.fullmatch(node.this)
        ):
            position = int(node.this)
            if not 1 <= position <= len(output) or output[position - 1].expr is None:
                raise errors.ProgrammingError(
                    f"ORDER BY {position}: no such column in the select list"
                )
            expr = output[position - 1].expr
        elif isinstance(node, exp.Column) and not node.table:
            for o in output:
                if o.expr is not None and o.name == node.name:
                    expr = o.expr  # an output alias wins over a column, as in SQLite
                    break
        if expr is None:
            expr = self.expr(node)
        desc = bool(ordered.args.get("desc"))
        nulls_first = ordered.args.get("nulls_first")
        return OrderTerm(expr, desc, (not desc) if nulls_first is None else bool(nulls_first))

    def _count(self, node: exp.Expr | None, what: str) -> Expr | None:
        if node is None:
            return None
        if not isinstance(node, exp.Limit | exp.Offset) or node.args.get("expressions"):
            raise refuse(f"this form of {what}", "use LIMIT n OFFSET m")
        value = self.expr(node.expression)
        if not is_constant(value):
            raise errors.ProgrammingError(f"{what} must be a number or a parameter")
        return value

    def _fields(self, star: bool, nodes: Sequence[Expr | None]) -> tuple[str, ...] | None:
        """Mango ``fields`` for what the statement reads; None to read whole documents."""
        if star:
            return None
        refs: dict[str, None] = {"_id": None, TYPE_FIELD: None}
        for node in nodes:
            if node is not None:
                for f in sorted(columns_of(node)):
                    if not f.startswith("\0"):
                        refs[f] = None
        if not all(is_server_field(f) for f in refs):
            return None
        return tuple(refs)

    def insert(self, node: exp.Insert) -> InsertPlan:
        if node.args.get("conflict") or node.args.get("alternative") or node.args.get("ignore"):
            raise refuse(
                "INSERT with a conflict clause (upsert)",
                "CouchDB writes carry a revision; read the row and UPDATE it instead",
                hybrid=False,
            )
        self._check_args(node, {"this", "expression", "returning", "default"}, "INSERT")
        target = node.this
        columns: list[str] = []
        if isinstance(target, exp.Schema):
            table = self._table(target.this, "INSERT")
            columns = [self._column_name(i.name) for i in target.expressions]
        else:
            table = self._table(target, "INSERT")
        if len(set(columns)) != len(columns):
            raise errors.ProgrammingError(f"a column is named twice in {quote_sql(self.sql)}")
        rows: list[tuple[Expr | None, ...]] = []
        source = node.args.get("expression")
        if node.args.get("default"):
            rows.append(())
        elif isinstance(source, exp.Values):
            if not columns:
                raise errors.ProgrammingError(
                    "INSERT needs a column list: documents have no fixed column order"
                )
            for tup in source.expressions:
                values = tup.expressions if isinstance(tup, exp.Tuple) else [tup]
                if len(values) != len(columns):
                    raise errors.ProgrammingError(
                        f"{len(values)} values for {len(columns)} columns in {quote_sql(self.sql)}"
                    )
                rows.append(tuple(self._insert_value(v) for v in values))
        elif isinstance(source, exp.Select | exp.SetOperation):
            raise refuse("INSERT … SELECT", "it reads other rows, which needs a query engine")
        else:
            raise refuse("this form of INSERT", "use INSERT … VALUES")
        returning = self._returning(node)
        return InsertPlan(
            self.sql, table, self._parameters(), tuple(columns), tuple(rows), returning
        )

    def _insert_value(self, node: exp.Expr) -> Expr | None:
        if isinstance(node, exp.Var) and node.name.upper() == "DEFAULT":
            return None
        value = self.expr(node)
        if not is_constant(value):
            raise errors.ProgrammingError("INSERT … VALUES cannot read columns")
        return value

    def _returning(self, node: exp.Expr) -> tuple[OutputColumn, ...]:
        returning = node.args.get("returning")
        if returning is None:
            return ()
        self.allow_params = False
        try:
            out = tuple(self._output(e) for e in returning.expressions)
        finally:
            self.allow_params = True
        if any(o.expr is None for o in out):
            raise refuse("RETURNING *", "name the columns to return", hybrid=False)
        return out

    def update(self, node: exp.Update) -> UpdatePlan:
        if node.args.get("from_"):
            raise refuse("UPDATE … FROM", "it joins tables, and CouchDB has no joins")
        self._check_args(node, {"this", "expressions", "where", "returning"}, "UPDATE")
        table = self._table(node.this, "UPDATE")
        assignments: list[tuple[str, Expr]] = []
        for eq in node.expressions:
            if not isinstance(eq, exp.EQ) or not isinstance(eq.this, exp.Column):
                raise errors.ProgrammingError(
                    f"cannot read the SET clause of {quote_sql(self.sql)}"
                )
            self._check_qualifier(eq.this)
            name = self._column_name(eq.this.name)
            if name == ID_COLUMN:
                raise refuse(
                    "changing id",
                    "a CouchDB document id is immutable; insert a new row and delete the old one",
                    hybrid=False,
                )
            if name == REV_COLUMN:
                raise errors.ProgrammingError("column 'rev' is set by CouchDB on every write")
            if any(name == a for a, _ in assignments):
                raise errors.ProgrammingError(f"column {name!r} is assigned twice")
            assignments.append((name, self.expr(eq.expression)))
        where_node = node.args.get("where")
        where = self._condition(where_node.this) if where_node is not None else None
        returning = self._returning(node)
        return UpdatePlan(
            self.sql, table, self._parameters(), where, returning, None, tuple(assignments)
        )

    def delete(self, node: exp.Delete) -> DeletePlan:
        if node.args.get("using") or node.args.get("tables"):
            raise refuse("DELETE … USING", "it joins tables, and CouchDB has no joins")
        self._check_args(node, {"this", "where", "returning"}, "DELETE")
        table = self._table(node.this, "DELETE")
        where_node = node.args.get("where")
        where = self._condition(where_node.this) if where_node is not None else None
        returning = self._returning(node)
        fields = self._fields(False, [where, *(o.expr for o in returning)])
        if fields is not None:
            fields = ("_id", "_rev", *(f for f in fields if f != "_id"))
        return DeletePlan(self.sql, table, self._parameters(), where, returning, fields)

    def create(self, node: exp.Create) -> CreateTablePlan | CreateIndexPlan:
        return create_plan(node, self.sql, self._table, self._column_name)

    def drop(self, node: exp.Drop) -> DropTablePlan | DropIndexPlan:
        return drop_plan(node, self.sql, self._table)

    # -- expressions --------------------------------------------------------------------------

    def _condition(self, node: exp.Expr) -> Expr:
        saved, self.aggregates = self.aggregates, None
        try:
            return nnf(as_condition(self.expr(node)))
        finally:
            self.aggregates = saved

    def _column_name(self, name: str) -> str:
        if name == TYPE_FIELD:
            raise errors.ProgrammingError(
                f"column name {TYPE_FIELD!r} is reserved: it holds the table name in every document"
            )
        if name.startswith("_") or not name:
            raise errors.ProgrammingError(
                f"column name {name!r} is reserved: CouchDB keeps fields starting with '_'"
            )
        return name

    def _check_qualifier(self, node: exp.Column) -> None:
        if node.args.get("db") or node.args.get("catalog"):
            raise refuse(
                f"schema-qualified column {node.sql()}",
                "a CouchDB database has one namespace of tables",
                hybrid=False,
            )
        qualifier = node.table
        if qualifier and qualifier not in self.qualifiers:
            raise errors.ProgrammingError(
                f"column {node.sql()} names table {qualifier!r}, but the statement reads "
                f"{self.table!r} only"
            )

    def _param(self, node: exp.Placeholder) -> Param:
        if not self.allow_params:
            raise refuse("parameters in RETURNING", "return columns only", hybrid=False)
        name = node.this  # None for '?'
        positional = name is None
        if self.positional is not None and self.positional != positional:
            raise errors.ProgrammingError("a statement cannot mix '?' and ':name' parameters")
        self.positional = positional
        if positional:
            slot = len(self.param_names)
            self.param_names.append(f"?{slot + 1}")
            return Param(slot, self.param_names[-1])
        name = str(name)
        if name not in self.param_slots:
            self.param_slots[name] = len(self.param_names)
            self.param_names.append(name)
        return Param(self.param_slots[name], name)

    def expr(self, node: exp.Expr) -> Expr:
        """Translate one sqlglot expression; refuse what cannot be evaluated exactly."""
        if isinstance(node, exp.Paren):
            return self.expr(node.this)
        if isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):
                raise errors.ProgrammingError("* is only allowed in the select list")
            self._check_qualifier(node)
            if self.table is None:
                raise errors.ProgrammingError(f"column {node.sql()} needs a FROM clause")
            name = self._column_name(node.name)
            return Column(name, column_to_field(name))
        if isinstance(node, exp.Placeholder):
            return self._param(node)
        if isinstance(node, exp.Literal):
            return Literal(node.this if node.is_string else _number(node.this))
        if isinstance(node, exp.Boolean):
            return Literal(bool(node.this))
        if isinstance(node, exp.Null):
            return Literal(None)
        if isinstance(node, exp.Neg):
            return Neg(self.expr(node.this))
        op = _ARITH.get(type(node))
        if op is not None:
            return Arith(op, self.expr(node.this), self.expr(node.expression))
        op = _COMPARE.get(type(node))
        if op is not None:
            return Compare(op, self.expr(node.this), self.expr(node.expression))
        if isinstance(node, exp.NullSafeEQ | exp.NullSafeNEQ):
            return NullSafeEq(
                self.expr(node.this), self.expr(node.expression), isinstance(node, exp.NullSafeNEQ)
            )
        if isinstance(node, exp.Is):
            if isinstance(node.expression, exp.Null):
                return IsNull(self.expr(node.this))
            if isinstance(node.expression, exp.Boolean):  # a truth test, as in SQLite/PG
                return IsBool(self.expr(node.this), bool(node.expression.this))
            return NullSafeEq(self.expr(node.this), self.expr(node.expression))
        if isinstance(node, exp.In):
            return self._in(node)
        if isinstance(node, exp.Escape):
            like = node.this
            if not isinstance(like, exp.Like | exp.ILike):
                raise refuse("ESCAPE outside LIKE", "it only applies to LIKE")
            return self._like(like, self.expr(node.expression))
        if isinstance(node, exp.Like | exp.ILike):
            return self._like(node, None)
        if isinstance(node, exp.Between):
            if node.args.get("symmetric"):
                raise refuse("BETWEEN SYMMETRIC", "use two comparisons", hybrid=False)
            value = self.expr(node.this)
            low, high = self.expr(node.args["low"]), self.expr(node.args["high"])
            return And((Compare(">=", value, low), Compare("<=", value, high)))
        if isinstance(node, exp.And | exp.Or):
            items = (as_condition(self.expr(node.this)), as_condition(self.expr(node.expression)))
            return And(items) if isinstance(node, exp.And) else Or(items)
        if isinstance(node, exp.Not):
            return Not(as_condition(self.expr(node.this)))
        if isinstance(node, exp.Case):
            return self._case(node)
        if isinstance(node, exp.Cast) and not isinstance(node, exp.TryCast):
            return self._cast(node)
        if isinstance(node, exp.Coalesce):
            args = [node.this, *(node.expressions or [])]
            return Func("coalesce", tuple(self.expr(a) for a in args))
        if isinstance(node, exp.Nullif):
            return Func("nullif", (self.expr(node.this), self.expr(node.expression)))
        function = _FUNCTIONS.get(type(node))
        if function is not None:
            if any(v for k, v in node.args.items() if k != "this"):
                raise refuse(f"{function}() with several arguments", "it takes one argument")
            return Func(function, (self.expr(node.this),))
        aggregate = _AGGREGATES.get(type(node))
        if aggregate is not None:
            return self._aggregate(node, aggregate)
        if isinstance(node, exp.Tuple):
            raise refuse(
                f"row values {node.sql()[:40]}", "compare the columns one by one", hybrid=False
            )
        if isinstance(node, exp.Window):
            raise refuse("window functions (OVER)", "they need a query engine")
        if isinstance(node, exp.Subquery | exp.Select | exp.Exists | exp.SetOperation):
            raise refuse("subqueries", "CouchDB answers one query over one table at a time")
        if isinstance(node, exp.Func):
            fname = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
            raise refuse(
                f"function {fname.upper()}()",
                "the translator evaluates only "
                + ", ".join(sorted(FUNCTION_NAMES))
                + ", count, sum, avg, min and max",
            )
        raise refuse(
            f"{type(node).__name__} ({node.sql()[:60]})",
            "the translator cannot evaluate it exactly",
        )

    def _in(self, node: exp.In) -> Expr:
        if node.args.get("query") is not None:
            raise refuse("subqueries", "CouchDB answers one query over one table at a time")
        for key in ("unnest", "field"):
            if node.args.get(key) is not None:
                raise refuse(f"IN {key.upper()}", "use a list of values")
        items = tuple(self.expr(e) for e in node.expressions)
        return InList(self.expr(node.this), items)

    def _like(self, node: exp.Like | exp.ILike, escape: Expr | None) -> Expr:
        return Like(
            self.expr(node.this),
            self.expr(node.expression),
            escape,
            negated=bool(node.args.get("negate")),
            case_insensitive=isinstance(node, exp.ILike),
        )

    def _case(self, node: exp.Case) -> Expr:
        subject = self.expr(node.this) if node.this is not None else None
        whens: list[tuple[Expr, Expr]] = []
        for when in node.args.get("ifs") or []:
            cond = self.expr(when.this)
            cond = Compare("=", subject, cond) if subject is not None else as_condition(cond)
            whens.append((cond, self.expr(when.args["true"])))
        default = node.args.get("default")
        return Case(tuple(whens), self.expr(default) if default is not None else None)

    def _cast(self, node: exp.Cast) -> Expr:
        to = node.to
        type_name = to.this.name if isinstance(to, exp.DataType) else str(to)
        target = _CAST_TARGET.get(type_name)
        if target is None:
            raise refuse(f"CAST to {to.sql()}", "casts go to INTEGER, REAL, NUMERIC or TEXT")
        return Cast(self.expr(node.this), target)

    def _aggregate(self, node: exp.Expr, name: str) -> Expr:
        if self.aggregates is None:
            raise errors.ProgrammingError(
                f"aggregate {name}() is only allowed in the select list (no GROUP BY)"
            )
        if node.args.get("expressions"):
            raise refuse(f"{name}() with several arguments", "it takes one argument")
        arg = node.this
        distinct = isinstance(arg, exp.Distinct)
        if distinct:
            if len(arg.expressions) != 1:
                raise refuse(f"{name}(DISTINCT …) over several values", "it takes one value")
            arg = arg.expressions[0]
        saved, self.aggregates = self.aggregates, None  # no aggregate inside an aggregate
        try:
            if isinstance(arg, exp.Star):
                if name != "count" or distinct:
                    raise errors.ProgrammingError(f"{name}(*) is not valid SQL")
                value: Expr | None = None
            else:
                value = self.expr(arg)
        finally:
            self.aggregates = saved
        aggregate = Aggregate(name, value, distinct)
        slot = len(saved)
        saved.append(aggregate)
        return Column(f"\0agg{slot}", f"\0agg{slot}")


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)
