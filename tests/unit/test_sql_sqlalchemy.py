"""SQL that SQLAlchemy compiles, translated, must answer what SQLite answers.

Each Core statement runs on SQLite (``PRAGMA case_sensitive_like = ON``) and, compiled
for a CouchDB-style dialect, through the translator and the modelled ``_find``. The
dialect here is the default one with named parameters and native booleans, plus the
one change the translator asks of the real dialect's compiler: true division rendered
as ``x / (y + 0.0)`` (SQLite's spelling), because ``CAST(y AS NUMERIC)`` keeps integers
integral under SQLite's rules.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import default
from sqlalchemy.sql import compiler
from test_sql_mango import FakeServer, run_sql

from sqlalchemy_couchdb.sql import DeletePlan, MangoIndex, UpdatePlan, compile_sql

metadata = sa.MetaData()
t = sa.Table(
    "t",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("x", sa.Integer),
    sa.Column("y", sa.Float),
    sa.Column("name", sa.String),
    sa.Column("flag", sa.Boolean),
)

ROWS: list[dict[str, Any]] = [
    {"id": "a", "x": 1, "y": 1.5, "name": "apple", "flag": True},
    {"id": "b", "x": None, "y": 2.0, "name": "Banana", "flag": False},
    {"id": "c", "x": 3, "name": "cherry%", "flag": None},
    {"id": "d", "x": 3, "y": -1.0, "name": "date_", "flag": True},
    {"id": "e", "x": 7, "y": None, "name": None},
    {"id": "f", "x": -2, "y": 0.25, "name": "fig.*", "flag": False},
]
INDEXES = [
    MangoIndex(("type", "x"), "sqla-t", "ix_t_x"),
    MangoIndex(("type", "name"), "sqla-t", "ix_t_name"),
    MangoIndex(("type", "x", "y"), "sqla-t", "ix_t_x_y"),
]


class _Compiler(compiler.SQLCompiler):
    def visit_truediv_binary(self, binary: Any, operator: Any, **kw: Any) -> str:
        right = self.process(binary.right, **kw)
        return f"{self.process(binary.left, **kw)} / ({right} + 0.0)"


class _Dialect(default.DefaultDialect):
    statement_compiler = _Compiler
    supports_native_boolean = True
    default_paramstyle = "named"


def _docs() -> list[dict[str, Any]]:
    docs = []
    for row in ROWS:
        doc = {"_id": row["id"], "_rev": "1-x", "type": "t"}
        doc.update({k: v for k, v in row.items() if k != "id"})
        docs.append(doc)
    return docs


@pytest.fixture(scope="module")
def sqlite() -> Any:
    engine = sa.create_engine("sqlite://")

    @sa.event.listens_for(engine, "connect")
    def _pragma(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA case_sensitive_like = ON")

    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(t.insert(), [{**{"y": None, "flag": None}, **r} for r in ROWS])
    return engine


def _norm(rows: Any) -> list[tuple[Any, ...]]:
    return [tuple(int(v) if isinstance(v, bool) else v for v in row) for row in rows]


def _couch(stmt: Any, indexes: list[MangoIndex]) -> tuple[list[tuple[Any, ...]], str]:
    compiled = stmt.compile(dialect=_Dialect(), compile_kwargs={"render_postcompile": True})
    sql = str(compiled)
    _cols, rows = run_sql(sql, _docs(), dict(compiled.params), indexes)
    return _norm(rows), sql


SELECTS = [
    sa.select(t.c.id).where(t.c.x == 3),
    sa.select(t.c.id).where(t.c.x != 3),
    sa.select(t.c.id).where(~(t.c.x == 3)),
    sa.select(t.c.id).where(t.c.x > 1, t.c.y < 2),
    sa.select(t.c.id).where(sa.or_(t.c.x >= 3, t.c.y <= 0.25)),
    sa.select(t.c.id).where(t.c.x.in_([1, 7])),
    sa.select(t.c.id).where(t.c.x.in_([])),
    sa.select(t.c.id).where(t.c.x.not_in([])),
    sa.select(t.c.id).where(t.c.x.not_in([1, 7])),
    sa.select(t.c.id).where(~t.c.x.in_([1, 7])),
    sa.select(t.c.id).where(t.c.x.between(0, 3)),
    sa.select(t.c.id).where(t.c.x.is_(None)),
    sa.select(t.c.id).where(t.c.x.is_not(None), t.c.y.is_(None)),
    sa.select(t.c.id).where(t.c.x == None),  # noqa: E711
    sa.select(t.c.id).where(t.c.name.like("%a%")),
    sa.select(t.c.id).where(t.c.name.notlike("%a%")),
    sa.select(t.c.id).where(t.c.name.like("date/_", escape="/")),
    sa.select(t.c.id).where(t.c.name.contains("%", autoescape=True)),
    sa.select(t.c.id).where(t.c.name.contains(".*", autoescape=True)),
    sa.select(t.c.id).where(t.c.name.startswith("ch")),
    sa.select(t.c.id).where(t.c.name.endswith("_", autoescape=True)),
    sa.select(t.c.id).where(t.c.name.ilike("B%")),
    sa.select(t.c.id).where(t.c.name.not_ilike("%A%")),
    sa.select(t.c.id).where(t.c.flag == True),  # noqa: E712
    sa.select(t.c.id).where(t.c.flag.is_(False)),
    sa.select(t.c.id).where(t.c.flag),
    sa.select(t.c.id).where(~t.c.flag),
    sa.select(t.c.id).where(t.c.x + 1 == 4),
    sa.select(t.c.id).where(t.c.x % 2 == 1),
    sa.select(t.c.id, (t.c.x / 2).label("half")).where(t.c.x.is_not(None)),
    sa.select(t.c.id, (t.c.x * t.c.y).label("p"), (-t.c.x).label("m")),
    sa.select(t.c.id, (t.c.name + "!").label("s"), t.c.name.concat("?").label("q")),
    sa.select(
        t.c.id,
        sa.func.lower(t.c.name),
        sa.func.upper(t.c.name),
        sa.func.length(t.c.name),
        sa.func.abs(t.c.x),
        sa.func.coalesce(t.c.x, 0).label("cx"),
    ),
    sa.select(
        t.c.id, sa.case((t.c.x > 2, "big"), (t.c.x.is_(None), "none"), else_="small").label("c")
    ),
    sa.select(sa.literal(1).label("one")),
]
ORDERED = [
    sa.select(t.c.id, t.c.x).order_by(t.c.x, t.c.id),
    sa.select(t.c.id, t.c.x).order_by(t.c.x.desc(), t.c.id.desc()),
    sa.select(t.c.id).order_by(t.c.id).limit(2).offset(1),
    sa.select(t.c.id).order_by(t.c.id.desc()).offset(4),
    sa.select(t.c.id).where(t.c.x > 0).order_by(t.c.x.desc(), t.c.id).limit(3),
    sa.select(t.c.id, t.c.y).order_by(t.c.y.asc().nulls_last(), t.c.id),
    sa.select(t.c.id, t.c.y).order_by(t.c.y.desc().nulls_first(), t.c.id),
    sa.select(t.c.name).order_by(t.c.name),
    sa.select(t.c.x.label("k")).distinct().order_by("k"),
    sa.select(t.c.x, t.c.y).order_by(t.c.x, t.c.y),
]
AGGREGATES = [
    sa.select(sa.func.count()).select_from(t),
    sa.select(sa.func.count(t.c.x), sa.func.count(sa.distinct(t.c.x))),
    sa.select(sa.func.sum(t.c.x), sa.func.min(t.c.y), sa.func.max(t.c.name)),
    sa.select(sa.func.avg(t.c.x)),
    sa.select(sa.func.sum(t.c.x)).where(t.c.x > 100),
    sa.select(sa.func.count()).select_from(t).where(t.c.name.like("%e%")),
]


@pytest.mark.parametrize("with_indexes", [False, True])
@pytest.mark.parametrize("stmt", SELECTS, ids=lambda s: str(s).replace("\n", " ")[:70])
def test_unordered_select(sqlite: Any, stmt: Any, with_indexes: bool) -> None:
    with sqlite.connect() as conn:
        expected = _norm(conn.execute(stmt).all())
    got, sql = _couch(stmt, INDEXES if with_indexes else [])
    assert sorted(got, key=repr) == sorted(expected, key=repr), sql


@pytest.mark.parametrize("with_indexes", [False, True])
@pytest.mark.parametrize("stmt", ORDERED + AGGREGATES, ids=lambda s: str(s).replace("\n", " ")[:70])
def test_ordered_select_and_aggregates(sqlite: Any, stmt: Any, with_indexes: bool) -> None:
    with sqlite.connect() as conn:
        expected = _norm(conn.execute(stmt).all())
    got, sql = _couch(stmt, INDEXES if with_indexes else [])
    assert got == expected, sql


WRITES = [
    t.update().values(x=t.c.x + 1).where(t.c.id == "a"),
    t.update().values(name=t.c.name + "!").where(t.c.x > 2),
    t.update().values(y=None).where(t.c.flag == False),  # noqa: E712
    t.update().values(x=t.c.x * 2),
    t.delete().where(t.c.x.in_([3, 7])),
    t.delete().where(t.c.name.like("%a%")),
    t.delete(),
]


@pytest.mark.parametrize("stmt", WRITES, ids=lambda s: str(s).replace("\n", " ")[:70])
def test_update_and_delete_touch_what_sqlite_touches(sqlite: Any, stmt: Any) -> None:
    with sqlite.connect() as conn:
        result = conn.execute(stmt)
        expected_count = result.rowcount
        after = {r.id: r._asdict() for r in conn.execute(sa.select(t))}
        conn.rollback()
    compiled = stmt.compile(dialect=_Dialect(), compile_kwargs={"render_postcompile": True})
    plan = compile_sql(str(compiled))
    assert isinstance(plan, UpdatePlan | DeletePlan)
    bound = plan.bind(dict(compiled.params), INDEXES)
    server = FakeServer(_docs(), INDEXES)
    touched = [d for r in bound.requests for d in server.answer(r) if bound.matches(d)]
    assert len(touched) == expected_count
    if isinstance(plan, DeletePlan):
        assert {d["_id"] for d in _docs()} - {d["_id"] for d in touched} == set(after)
        return
    for doc in touched:
        new = bound.apply(doc)  # type: ignore[union-attr]
        want = after[doc["_id"]]
        assert _norm([[new.get(k) for k in want if k != "id"]]) == _norm(
            [[v for k, v in want.items() if k != "id"]]
        )


def test_insert_many_from_sqlalchemy() -> None:
    stmt = t.insert()
    compiled = stmt.compile(dialect=_Dialect())
    plan = compile_sql(str(compiled))
    rows = [
        {"id": r["id"], "x": r["x"], "y": r.get("y"), "name": r["name"], "flag": r.get("flag")}
        for r in ROWS
    ]
    docs = plan.documents_many(rows)  # type: ignore[union-attr]
    assert [d["_id"] for d in docs] == [r["id"] for r in ROWS]
    assert docs[2] == {"_id": "c", "type": "t", "x": 3, "y": None, "name": "cherry%", "flag": None}
