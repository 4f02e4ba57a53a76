"""The dialect's compiler renders SQL the translator reads (no server)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from sqlalchemy_couchdb.httpx import dialect
from sqlalchemy_couchdb.sql import SelectPlan, compile_sql

t = sa.Table(
    "t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), sa.Column("x", sa.String)
)


def _compiled(stmt: Any) -> Any:
    return stmt.compile(dialect=dialect())


def _run(stmt: Any, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Rows of a SELECT without FROM, evaluated by the translator."""
    compiled = _compiled(stmt)
    plan = compile_sql(str(compiled))
    assert isinstance(plan, SelectPlan)
    run = plan.bind(compiled.construct_params(params)).start()
    return run.finish()


@pytest.mark.parametrize(
    "name", ["/slashes/", "more/slashes", "q?marks", "1param", "1col:on", "per % cent", "dot.s"]
)
def test_bind_names_the_parser_cannot_read_are_escaped(name: str) -> None:
    stmt = sa.select(t.c.id).where(t.c.x == sa.bindparam(name))
    compiled = _compiled(stmt)
    plan = compile_sql(str(compiled))
    (escaped,) = plan.parameters.names
    assert escaped.isidentifier() and escaped != name
    assert compiled.construct_params({name: "v"}) == {escaped: "v"}


def test_plain_bind_names_stay() -> None:
    compiled = _compiled(sa.select(t.c.id).where(t.c.x == sa.bindparam("_name")))
    assert ":_name" in str(compiled)


def test_expanding_in_with_an_escaped_name() -> None:
    stmt = sa.select(t.c.id).where(t.c.x.in_(sa.bindparam("1param", value=["a", "b"])))
    compiled = stmt.compile(dialect=dialect(), compile_kwargs={"render_postcompile": True})
    plan = compile_sql(str(compiled))
    assert plan.parameters.names == ("p1param_1", "p1param_2")


def test_true_division_of_integers() -> None:
    # Integers divide as integers in the translator (as in SQLite): the divisor is
    # made a float, as SQLite's own dialect does.
    assert _run(sa.select(sa.literal(15) / sa.literal(10))) == [(1.5,)]
    assert _run(sa.select(sa.literal(-15) / sa.literal(10))) == [(-1.5,)]
    assert _run(sa.select(sa.literal(15) // sa.literal(10))) == [(1,)]


def test_fetch_first_is_limit() -> None:
    stmt = sa.select(t.c.x).order_by(t.c.x).offset(1).fetch(2)
    sql = str(_compiled(stmt))
    assert "FETCH" not in sql and "LIMIT" in sql and "OFFSET" in sql
    assert isinstance(compile_sql(sql), SelectPlan)


def test_fetch_percent_and_ties_are_refused() -> None:
    with pytest.raises(sa.exc.CompileError, match="PERCENT / WITH TIES"):
        _compiled(sa.select(t.c.x).order_by(t.c.x).fetch(50, percent=True))
    with pytest.raises(sa.exc.CompileError, match="PERCENT / WITH TIES"):
        _compiled(sa.select(t.c.x).order_by(t.c.x).fetch(2, with_ties=True))
