"""The pure parts of ``verify``: the merge join of the two id-ordered streams, revision
generations and the never-move-back rule, value equality, durations, the report, the
metrics it exports, and which database errors mean "locked, try again"."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterable

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from prometheus_client import generate_latest

from couchdb_replicator.cli import main
from couchdb_replicator.metrics import Metrics
from couchdb_replicator.verify import parse_duration
from couchdb_replicator.verify_merge import (
    CopyKey,
    CouchKey,
    MergeJoin,
    Pair,
    may_replace,
    rev_generation,
    same_value,
)
from couchdb_replicator.verify_repair import _lock_conflict
from couchdb_replicator.verify_report import EXIT_DRIFT, VerifyReport


def couch(*ids: str) -> list[CouchKey]:
    return [CouchKey(i, f"1-{i}") for i in ids]


def copy(*items: str) -> list[CopyKey]:
    """``"id"`` or ``"id@table"``; rev ``1-<id>``."""
    out = []
    for item in items:
        doc_id, _, table = item.partition("@")
        out.append(CopyKey(doc_id, table or "t", f"1-{doc_id}"))
    return out


def summary(pairs: Iterable[Pair]) -> list[tuple[str, bool, list[str]]]:
    return [(p.id, p.couch is not None, [r.table for r in p.rows]) for p in pairs]


def run_merge(
    couch_pages: list[list[CouchKey]], copy_pages: list[list[CopyKey]]
) -> tuple[list[Pair], MergeJoin]:
    """Drive a MergeJoin the way the verifier does, a page at a time on demand."""
    merge = MergeJoin()
    couch_iter, copy_iter = iter(couch_pages), iter(copy_pages)
    out: list[Pair] = []
    held = 0
    while True:
        out.extend(merge.pairs())
        if merge.done:
            return out, merge
        assert merge.needs_couch or merge.needs_copy
        if merge.needs_couch:
            page = next(couch_iter, None)
            merge.add_couch(page or [], last=page is None)
        if merge.needs_copy:
            page2 = next(copy_iter, None)
            merge.add_copy(page2 or [], last=page2 is None)
        held = max(held, len(merge._couch), len(merge._copy))
        # A page of each side (pages of 3 here), plus the rows of the id a page ended on.
        assert held <= 3 + 2


def test_merge_pairs_every_id_once_in_order() -> None:
    pairs, merge = run_merge(
        [couch("a", "b", "d"), couch("f", "g")],
        [copy("a", "c", "d"), copy("e", "g", "h")],
    )
    assert summary(pairs) == [
        ("a", True, ["t"]),
        ("b", True, []),
        ("c", False, ["t"]),
        ("d", True, ["t"]),
        ("e", False, ["t"]),
        ("f", True, []),
        ("g", True, ["t"]),
        ("h", False, ["t"]),
    ]
    assert merge.disorder == 0


def test_merge_groups_the_rows_of_one_id_across_a_page_boundary() -> None:
    # "b" has rows in two tables; the first page ends between them.
    pairs, _ = run_merge([couch("a", "b", "c")], [copy("a", "b@t1"), copy("b@t2", "c")])
    assert summary(pairs) == [("a", True, ["t"]), ("b", True, ["t1", "t2"]), ("c", True, ["t"])]


def test_merge_with_one_side_empty() -> None:
    pairs, _ = run_merge([], [copy("x", "y")])
    assert summary(pairs) == [("x", False, ["t"]), ("y", False, ["t"])]
    pairs, _ = run_merge([couch("x", "y")], [])
    assert summary(pairs) == [("x", True, []), ("y", True, [])]
    pairs, merge = run_merge([], [])
    assert pairs == [] and merge.done


def test_merge_counts_keys_out_of_order_but_still_hands_every_key_out() -> None:
    # A server that sorts differently (PouchDB: UTF-16 code units) puts U+1F600 before
    # U+FF01; the copy sorts by code point. Every key still comes out exactly once; an id
    # the orders disagree on comes out on each side alone (and is then looked up by key).
    high, astral = "\uff01", "\U0001f600"
    pairs, merge = run_merge([couch("a", astral, high)], [copy("a", high, astral)])
    assert merge.disorder == 1
    assert [(p.id, p.couch is not None, bool(p.rows)) for p in pairs] == [
        ("a", True, True),
        (high, False, True),
        (astral, True, True),
        (high, True, False),
    ]


def test_rev_generation() -> None:
    assert rev_generation("12-abc") == 12
    assert rev_generation("1-x") == 1
    assert rev_generation(None) is None
    assert rev_generation("") is None
    assert rev_generation("abc") is None
    assert rev_generation("x-1") is None
    assert rev_generation("\u0661-x") is None  # an Arabic-Indic digit is not a generation


def test_may_replace_never_moves_a_row_back_a_generation() -> None:
    assert may_replace("1-a", "2-b")
    assert may_replace("2-a", "2-b")  # same generation: CouchDB's winner wins
    assert may_replace("2-a", "2-a")  # same rev, drifted values
    assert not may_replace("3-a", "2-b")
    assert not may_replace("10-a", "9-z")  # numbers, not text: "10" < "9" as strings
    assert may_replace(None, "1-a")  # no rev in the row: nothing to protect
    assert may_replace("junk", "1-a")
    assert may_replace("5-a", None)  # CouchDB never had the document


@pytest.mark.parametrize(
    ("expected", "stored"),
    [
        (1, 1),
        (1, 1.0),
        (1.5, decimal.Decimal("1.5")),
        (decimal.Decimal("1.50"), decimal.Decimal("1.5")),
        (True, True),
        (True, 1),  # MySQL BOOLEAN comes back as 0/1
        ("x", "x"),
        ({"a": [1, 2.0, None]}, {"a": [1, 2, None]}),
        (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), dt.datetime(2024, 1, 2, 3, 4, 5)),
        (dt.datetime(2024, 1, 2, 3, 4, 5, 400000), dt.datetime(2024, 1, 2, 3, 4, 5)),
        (
            dt.datetime(2024, 1, 2, 5, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        ),
        (dt.date(2024, 1, 2), dt.date(2024, 1, 2)),
        (uuid.UUID(int=5), str(uuid.UUID(int=5))),
        (b"\x00\x01", memoryview(b"\x00\x01")),
        (None, None),
    ],
)
def test_same_value_accepts_what_backends_do_to_a_value(expected: object, stored: object) -> None:
    assert same_value(expected, stored)


@pytest.mark.parametrize(
    ("expected", "stored"),
    [
        (1, 2),
        (1, None),
        (None, 0),
        (None, ""),
        ("x", "y"),
        ("1", 1),
        (True, False),
        (True, 2),
        (True, "true"),
        (1.0, 1.0000001),
        ({"a": 1}, {"a": 1, "b": 2}),
        ({"a": True}, {"a": 1}),  # JSON keeps booleans apart from numbers
        ([1, 2], [2, 1]),
        (dt.datetime(2024, 1, 2, 3, 4, 5, 1), dt.datetime(2024, 1, 2, 3, 4, 5, 2)),
        (dt.datetime(2024, 1, 2, 3, 4, 5), dt.datetime(2024, 1, 2, 3, 4, 7)),
        (b"a", b"b"),
    ],
)
def test_same_value_tells_different_values_apart(expected: object, stored: object) -> None:
    assert not same_value(expected, stored)


def test_same_value_single_precision_tolerance() -> None:
    assert not same_value(0.1, 0.10000000149011612)
    assert same_value(0.1, 0.10000000149011612, float_tolerance=1e-6)
    assert not same_value(0.1, 0.2, float_tolerance=1e-6)


def test_parse_duration() -> None:
    assert parse_duration("90") == 90
    assert parse_duration("30s") == 30
    assert parse_duration("5m") == 300
    assert parse_duration("1.5h") == 5400
    assert parse_duration("1d") == 86400
    assert parse_duration("250ms") == 0.25
    for bad in ("", "0", "5x", "-1s", "m5", "1 h 2"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_report_verdict_and_exit_status() -> None:
    report = VerifyReport(source="couchdb://h/db", target="sqlite:///x", show=2)
    report.table("a")
    assert report.equal and report.ok and report.exit_code == 0
    report.add_dead_letter("a", "poison-1")
    assert report.equal and report.exit_code == 0  # dead letters are not drift
    for doc_id in ("m1", "m2", "m3"):
        report.add("a", "missing", doc_id)
    report.add("b", "extra", "x1")
    assert not report.equal and report.exit_code == EXIT_DRIFT
    assert report.counts() == {"missing": 3, "extra": 1, "stale": 0, "drifted": 0}
    text = "\n".join(report.lines())
    assert "a missing: m1, m2 (and 1 more)" in text
    assert "b extra: x1" in text
    assert "a dead letters: poison-1" in text
    assert "drift: 4 rows in 2 tables" in text
    data = report.to_json()
    assert data["equal"] is False and data["drift"]["missing"] == 3
    assert data["tables"]["a"]["ids"] == {"missing": ["m1", "m2"]}
    assert data["tables"]["a"]["dead_letter_ids"] == ["poison-1"]

    report.repair = True
    for kind, table in (("missing", "a"),) * 3 + (("extra", "b"),):
        report.add_repaired(table, kind)
    assert report.ok and report.exit_code == 0
    report.add_unrepaired("m3")
    assert not report.ok and report.exit_code == EXIT_DRIFT
    assert "later revision than CouchDB (m3)" in report.lines()[-1]


def test_metrics_export_the_last_check_and_zero_what_is_gone() -> None:
    metrics = Metrics()
    metrics.record_verify(
        {("a", "missing"): 2, ("a", "extra"): 1}, {("a", "missing"): 2}, 1.5, "repaired"
    )
    metrics.record_verify({("a", "missing"): 0, ("b", "stale"): 4}, {}, 0.5, "drift")
    metrics.record_verify({}, {}, 0.0, "failed")
    text = generate_latest(metrics.registry).decode()
    assert 'couchdb_replicator_drift_rows{kind="missing",table="a"} 0.0' in text
    assert 'couchdb_replicator_drift_rows{kind="extra",table="a"} 0.0' in text
    assert 'couchdb_replicator_drift_rows{kind="stale",table="b"} 4.0' in text
    assert 'couchdb_replicator_repaired_rows_total{kind="missing",table="a"} 2.0' in text
    assert 'couchdb_replicator_verify_runs_total{outcome="failed"} 1.0' in text
    assert "couchdb_replicator_verify_seconds 0.5" in text


class _Orig(Exception):
    def __init__(self, *args: object, sqlstate: str | None = None, code: int | None = None):
        super().__init__(*args)
        if sqlstate is not None:
            self.sqlstate = sqlstate
        if code is not None:
            self.sqlite_errorcode = code


def _dbapi_error(orig: BaseException) -> sa.exc.DBAPIError:
    return sa.exc.DBAPIError("LOCK TABLE t", None, orig)


def test_lock_conflicts_are_told_by_code_not_message() -> None:
    assert _lock_conflict(_dbapi_error(_Orig(sqlstate="55P03")))  # PostgreSQL NOWAIT
    assert _lock_conflict(_dbapi_error(_Orig(sqlstate="40P01")))  # deadlock
    assert _lock_conflict(_dbapi_error(_Orig(code=5)))  # SQLITE_BUSY
    assert _lock_conflict(_dbapi_error(_Orig(code=517)))  # SQLITE_BUSY_SNAPSHOT
    assert _lock_conflict(_dbapi_error(_Orig(1213, "Deadlock found")))  # MySQL
    assert not _lock_conflict(_dbapi_error(_Orig(sqlstate="23505")))  # unique violation
    assert not _lock_conflict(_dbapi_error(_Orig("database is locked")))  # no code: no
    assert not _lock_conflict(_dbapi_error(_Orig(1062, "Duplicate entry")))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--repair"], "--repair needs --verify-every"),
        (["--once", "--verify-every", "1m"], "does not go with --once"),
        (["--verify-every", "5x"], "is not a duration"),
        (["--verify-every", "0s"], "more than 0"),
    ],
)
def test_run_refuses_bad_verify_options_before_connecting(args: list[str], message: str) -> None:
    source = "couchdb://u:secret@127.0.0.1:1/db"  # nothing listens: never reached
    result = CliRunner().invoke(main, ["run", "--source", source, *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "secret" not in result.output
