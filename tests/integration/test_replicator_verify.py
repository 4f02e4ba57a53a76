"""``couchdb-replicator verify [--repair] [--deep]`` against real servers, on SQLite and
PostgreSQL: every kind of drift — made in the copy (a row deleted, a row CouchDB never had,
an older rev, a value changed under the same rev) and in CouchDB while the replicator was
not running (updates, deletions, creations, type changes) — is found with its exact ids
and repaired; an equal copy verifies clean; dead letters are reported as such; a repair
racing the live replicator leaves the copy equal to CouchDB; ``run --verify-every``
exports the counts and repairs."""

from __future__ import annotations

import asyncio
import decimal
import json
import random
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from test_replicator_support import (
    DROP,
    Copy,
    Couch,
    assert_copy_equals_couchdb,
    copy_fixture,
    couch_fixture,
    run_cli,
    start_cli,
    stop_cli,
    target_url_fixture,
    unique_type,
    wait_until,
)

from couchdb_replicator import MetadataSchema, replicate_async
from couchdb_replicator.status import gather_status
from couchdb_replicator.targets import create_target_engine
from couchdb_replicator.verify import verify_async
from couchdb_replicator.verify_copy import CopyReader
from couchdb_replicator.verify_repair import Repairer
from couchdb_replicator.verify_report import EXIT_DRIFT, VerifyReport
from sqlalchemy_couchdb.dbapi import ConnectionSettings

# pytest finds the shared fixtures by these imports.
FIXTURES = (copy_fixture, couch_fixture, target_url_fixture)

PASSWORD = "testserver-pw"
BACKENDS = ["sqlite", "postgresql"]


def documents(kind: str, n: int, start: int = 0) -> list[dict[str, Any]]:
    """Documents with a field of every JSON kind (and some left out or null)."""
    return [
        {
            "_id": f"{kind}-{i:03d}",
            "type": kind,
            "name": f"name {i}" if i % 7 else None,
            "age": 20 + i,
            "score": i / 8,
            "active": i % 2 == 0,
            "tags": ["a", str(i)],
            "address": {"city": "Z", "zip": i, "ok": True},
            **({"note": "ünïcödé ✓"} if i % 3 == 0 else {}),
        }
        for i in range(start, start + n)
    ]


def found(report: VerifyReport) -> dict[str, dict[str, set[str]]]:
    """{table: {kind: ids}} of what the report lists (shown ids; tests keep show high)."""
    out: dict[str, dict[str, set[str]]] = {}
    for name, table in report.tables.items():
        for kind, ids in table.ids.items():
            if ids:
                out.setdefault(name, {})[kind] = set(ids)
                assert len(set(ids)) == len(ids), f"{name} {kind}: an id counted twice: {ids}"
                assert table.found[kind] == len(ids), (name, kind)
    return out


def dead_letters(report: VerifyReport) -> dict[str, set[str]]:
    return {n: set(t.dead_letter_ids) for n, t in report.tables.items() if t.dead_letter_ids}


def checkpoint(copy: Copy) -> tuple[Any, Any]:
    row = copy.checkpoint()
    return row.seq, row.updated_at


@pytest.mark.parametrize("target_url", BACKENDS, indirect=True)
async def test_an_equal_copy_verifies_clean_by_default_and_deep(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    users, orders = unique_type("vu"), unique_type("vo")
    couch.bulk(documents(users, 40))
    couch.bulk([{"_id": f"o{i}", "type": orders, "total": i * 1.5} for i in range(30)])
    couch.bulk([{"_id": "_design/app", "views": {}}, {"_id": "untyped", "x": 1}])
    await replicate_async(couchdb_url, target_url, batch_size=25)

    for deep in (False, True):
        report = await verify_async(couchdb_url, target_url, deep=deep, chunk_size=16)
        assert report.equal and report.ok and report.exit_code == 0, report.lines()
        assert report.documents == 71  # the design document is not counted
        assert report.rows == 70
        assert report.not_copied == 1  # "untyped"
        assert set(report.tables) == {users, orders}
        assert report.disorder == 0


@pytest.mark.parametrize("target_url", BACKENDS, indirect=True)
async def test_every_kind_of_drift_is_found_exactly_and_repaired(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    a, b = unique_type("va"), unique_type("vb")
    poison = "couchdb_replicator_evil"  # a type that cannot be a table: a dead letter
    couch.bulk(documents(a, 30))
    couch.bulk(documents(b, 10))
    couch.bulk([{"_id": "evil-1", "type": poison, "x": 1}])
    couch.update(f"{a}-002", age=1)  # at rev 2, so the copy can be set back to rev 1
    await replicate_async(couchdb_url, target_url, batch_size=10)
    assert copy.dead_letters().keys() == {"evil-1"}
    before = checkpoint(copy)

    # Drift in the copy: someone wrote to it.
    old_rev = "1-" + "0" * 32
    with copy.engine.begin() as conn:
        ta, tb = (sa.Table(t, sa.MetaData(), autoload_with=conn) for t in (a, b))
        conn.execute(sa.delete(ta).where(ta.c.id == f"{a}-001"))  # missing
        conn.execute(sa.insert(ta).values(id="ghost-1", rev="1-abc", age=5))  # extra
        conn.execute(sa.update(ta).where(ta.c.id == f"{a}-002").values(rev=old_rev))  # stale
        conn.execute(sa.update(ta).where(ta.c.id == f"{a}-003").values(age=-1))  # drifted
        row = conn.execute(sa.select(ta.c.id, ta.c.rev).where(ta.c.id == f"{a}-004")).one()
        conn.execute(sa.insert(tb).values(id=row.id, rev=row.rev))  # extra: wrong table
    # Drift in CouchDB: changes the replicator has not applied.
    couch.update(f"{a}-005", age=500)  # stale
    couch.delete(f"{a}-006")  # extra
    couch.bulk([{"_id": f"{a}-new", "type": a, "age": 1}])  # missing
    couch.update(f"{a}-007", type=b)  # extra in a, missing in b
    couch.update(f"{b}-001", type=DROP)  # extra: no type any more

    expected = {
        a: {
            "missing": {f"{a}-001", f"{a}-new"},
            "extra": {"ghost-1", f"{a}-006", f"{a}-007"},
            "stale": {f"{a}-002", f"{a}-005"},
        },
        b: {"missing": {f"{a}-007"}, "extra": {f"{a}-004", f"{b}-001"}},
    }
    report = await verify_async(couchdb_url, target_url, chunk_size=8, show=100)
    assert found(report) == expected, report.lines()
    assert dead_letters(report) == {poison: {"evil-1"}}
    assert report.exit_code == EXIT_DRIFT and not report.repair
    # The default check takes a row at CouchDB's rev as right; --deep reads the values.
    deep = await verify_async(couchdb_url, target_url, deep=True, chunk_size=8, show=100)
    expected[a]["drifted"] = {f"{a}-003"}
    assert found(deep) == expected, deep.lines()
    assert checkpoint(copy) == before  # verify writes nothing

    repaired = await verify_async(
        couchdb_url, target_url, deep=True, repair=True, chunk_size=8, show=100
    )
    assert found(repaired) == expected
    assert repaired.ok and repaired.exit_code == 0, repaired.lines()
    assert repaired.repaired_counts() == repaired.counts()
    assert repaired.unrepaired == 0 and repaired.superseded == 0
    assert checkpoint(copy) == before  # the checkpoint never moves

    again = await verify_async(couchdb_url, target_url, deep=True)
    assert again.equal, again.lines()
    assert dead_letters(again) == {poison: {"evil-1"}}
    assert_copy_equals_couchdb(copy, couch, dead=["evil-1"])


@pytest.mark.parametrize("target_url", BACKENDS, indirect=True)
async def test_repair_never_moves_a_row_back_to_an_older_revision(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    kind = unique_type("vg")
    couch.bulk(documents(kind, 5))
    await replicate_async(couchdb_url, target_url)
    newer = "7-" + "f" * 32  # a later generation than CouchDB's 1-…
    with copy.engine.begin() as conn:
        t = sa.Table(kind, sa.MetaData(), autoload_with=conn)
        conn.execute(sa.update(t).where(t.c.id == f"{kind}-001").values(rev=newer, age=-1))
        conn.execute(sa.delete(t).where(t.c.id == f"{kind}-002"))

    report = await verify_async(couchdb_url, target_url, repair=True, show=100)
    assert found(report) == {kind: {"stale": {f"{kind}-001"}, "missing": {f"{kind}-002"}}}
    assert report.repaired_counts()["missing"] == 1 and report.repaired_counts()["stale"] == 0
    assert report.unrepaired_ids == [f"{kind}-001"]
    assert report.exit_code == EXIT_DRIFT and "later revision than CouchDB" in report.lines()[-1]
    rows = copy.rows(kind)
    assert rows[f"{kind}-001"]["rev"] == newer and rows[f"{kind}-001"]["age"] == -1
    assert f"{kind}-002" in rows


@pytest.mark.parametrize("target_url", ["sqlite"], indirect=True)
async def test_cli_exit_status_text_and_json(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str, tmp_path: Path
) -> None:
    kind = unique_type("vc")
    couch.bulk(documents(kind, 12))
    never = run_cli("verify", "--source", couchdb_url, "--target", f"sqlite:///{tmp_path}/no.db")
    assert never.returncode == 1
    assert "holds no copy of" in never.stderr and "couchdb-replicator run" in never.stderr
    assert PASSWORD not in never.stderr + never.stdout

    await replicate_async(couchdb_url, target_url)
    clean = run_cli("verify", "--source", couchdb_url, "--target", target_url)
    assert clean.returncode == 0, clean.stderr
    assert "equal: the copy matches CouchDB" in clean.stdout

    couch.bulk([{"_id": f"{kind}-new", "type": kind}])
    with copy.engine.begin() as conn:
        conn.execute(sa.text(f'DELETE FROM "{kind}" WHERE id = :id'), {"id": f"{kind}-003"})
    drift = run_cli("verify", "--source", couchdb_url, "--target", target_url)
    assert drift.returncode == EXIT_DRIFT, drift.stderr
    assert f"{kind} missing: {kind}-003, {kind}-new" in drift.stdout
    assert "drift: 2 rows in 1 table (2 missing)" in drift.stdout
    assert PASSWORD not in drift.stdout + drift.stderr and "Traceback" not in drift.stderr

    as_json = run_cli("verify", "--json", "--source", couchdb_url, "--target", target_url)
    assert as_json.returncode == EXIT_DRIFT
    data = json.loads(as_json.stdout)
    assert data["equal"] is False and data["drift"]["missing"] == 2
    assert data["tables"][kind]["ids"] == {"missing": [f"{kind}-003", f"{kind}-new"]}
    assert PASSWORD not in as_json.stdout

    fixed = run_cli("verify", "--repair", "--source", couchdb_url, "--target", target_url)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "repaired: 2 of 2 rows" in fixed.stdout
    assert (await verify_async(couchdb_url, target_url)).equal
    assert_copy_equals_couchdb(copy, couch)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def caught_up(couchdb_url: str, target_url: str, timeout: float = 60.0) -> None:
    """Wait until the daemon's checkpoint has nothing left to read."""
    target = create_target_engine(target_url)
    settings = ConnectionSettings.from_url(couchdb_url)
    try:
        deadline = time.monotonic() + timeout
        while (await gather_status(settings, target)).backlog != 0:
            assert time.monotonic() < deadline, "the daemon did not catch up"
            await asyncio.sleep(0.2)
    finally:
        await target.dispose()


class Writer(threading.Thread):
    """Writes to CouchDB until stopped: updates, deletions, type changes and creations,
    spread over the documents a repair is working on."""

    def __init__(self, couch: Couch, kind: str, other: str, ids: list[str], seed: int) -> None:
        super().__init__(daemon=True)
        self.couch, self.kind, self.other = couch, kind, other
        self.ids = list(ids)
        self.seed = seed
        self.random = random.Random(seed)
        self.stop = threading.Event()
        self.writes = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set() and self.ids:
                doc_id = self.random.choice(self.ids)
                action = self.random.random()
                if action < 0.15:
                    self.couch.delete(doc_id)
                    self.ids.remove(doc_id)
                elif action < 0.3:
                    self.couch.update(doc_id, type=self.random.choice([self.kind, self.other]))
                elif action < 0.4:
                    new = f"{self.kind}-w{self.seed}-{self.writes}"
                    self.couch.bulk([{"_id": new, "type": self.kind, "age": self.writes}])
                    self.ids.append(new)
                else:
                    self.couch.update(doc_id, age=self.writes, name=f"w{self.writes}")
                self.writes += 1
        except BaseException as exc:  # reported by the test
            self.error = exc


@pytest.mark.slow
@pytest.mark.parametrize("target_url", BACKENDS, indirect=True)
async def test_a_repair_racing_the_live_replicator_leaves_the_copy_equal(
    couch: Couch,
    copy: Copy,
    couchdb_url: str,
    target_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Widen the race: each repair batch starts 0.3 s after its documents were read, time
    # for CouchDB to change them and for the replicator to apply the changes. Without the
    # lock and the checks made under it, the repair then writes old revisions over new.
    real_repair = Repairer.repair

    async def late_repair(self: Repairer, items: Any) -> Any:
        await asyncio.sleep(0.3)
        return await real_repair(self, items)

    monkeypatch.setattr(Repairer, "repair", late_repair)
    kind, other = unique_type("vr"), unique_type("vs")
    couch.bulk(documents(kind, 300))
    couch.bulk(documents(other, 20))
    await replicate_async(couchdb_url, target_url)
    log = tmp_path / "daemon.log"
    daemon = start_cli(
        "run", "--source", couchdb_url, "--target", target_url, "--batch-delay", "0.02", log=log
    )
    try:
        await caught_up(couchdb_url, target_url)
        for round_no in range(3):
            # Drift only a repair fixes: the replicator never touches these rows again
            # unless CouchDB changes them (and the writer below may well do that).
            doomed = [f"{kind}-{n:03d}" for n in range(round_no, 300, 10)]
            with copy.engine.begin() as conn:
                t = sa.Table(kind, sa.MetaData(), autoload_with=conn)
                conn.execute(sa.delete(t).where(t.c.id.in_(doomed[0::4])))
                conn.execute(sa.update(t).where(t.c.id.in_(doomed[1::4])).values(age=-1))
                conn.execute(
                    sa.update(t).where(t.c.id.in_(doomed[2::4])).values(rev="1-" + "0" * 32)
                )
                conn.execute(sa.insert(t).values(id=f"ghost-{round_no}", rev="1-x"))
            # CouchDB keeps changing those documents, and the live replicator applies
            # the changes, all the while the repair runs.
            writer = Writer(couch, kind, other, doomed, seed=round_no)
            writer.start()
            try:
                report = await verify_async(
                    couchdb_url, target_url, deep=True, repair=True, chunk_size=25
                )
            finally:
                writer.stop.set()
                writer.join(30)
            assert writer.error is None, writer.error
            assert writer.writes > 0
            assert report.ok, report.lines()
            assert sum(report.repaired_counts().values()) > 0, report.lines()
        await caught_up(couchdb_url, target_url)
        final = await verify_async(couchdb_url, target_url, deep=True)
        assert final.equal, final.lines()
        assert_copy_equals_couchdb(copy, couch)
    finally:
        assert stop_cli(daemon) == 0, log.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("target_url", ["sqlite"], indirect=True)
async def test_run_verify_every_repairs_and_exports_the_drift(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str, tmp_path: Path
) -> None:
    kind = unique_type("vp")
    couch.bulk(documents(kind, 20))
    await replicate_async(couchdb_url, target_url)
    port = free_port()
    daemon = start_cli(
        "run",
        "--source",
        couchdb_url,
        "--target",
        target_url,
        "--verify-every",
        "500ms",
        "--repair",
        "--metrics-port",
        str(port),
        log=tmp_path / "daemon.log",
    )
    log = tmp_path / "daemon.log"
    try:

        def metrics() -> str:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.TransportError:
                return ""

        wait_until(lambda: 'verify_runs_total{outcome="equal"}' in metrics(), timeout=30)
        with copy.engine.begin() as conn:
            t = sa.Table(kind, sa.MetaData(), autoload_with=conn)
            conn.execute(sa.delete(t).where(t.c.id.in_([f"{kind}-001", f"{kind}-002"])))
            conn.execute(sa.insert(t).values(id="ghost", rev="1-x"))
        missing = f'couchdb_replicator_repaired_rows_total{{kind="missing",table="{kind}"}} 2.0'
        extra = f'couchdb_replicator_repaired_rows_total{{kind="extra",table="{kind}"}} 1.0'
        wait_until(lambda: missing in (text := metrics()) and extra in text, timeout=30)
        assert 'verify_runs_total{outcome="repaired"} 1.0' in metrics()
        # The next check finds the copy equal: the gauges go back to 0.
        gauge = f'couchdb_replicator_drift_rows{{kind="missing",table="{kind}"}}'
        wait_until(lambda: f"{gauge} 0.0" in metrics(), timeout=30)
        assert_copy_equals_couchdb(copy, couch)
    finally:
        assert stop_cli(daemon) == 0, log.read_text()
    assert "periodic verify: repaired: 3 of 3 rows" in log.read_text()


def declared(kind: str) -> sa.MetaData:
    metadata = sa.MetaData()
    sa.Table(
        kind,
        metadata,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("rev", sa.String(64)),
        sa.Column("name", sa.String(20)),
        sa.Column("n", sa.Integer),
        sa.Column("price", sa.Numeric(10, 2)),
        sa.Column("ratio", sa.Float),
        sa.Column("ok", sa.Boolean),
        sa.Column("at", sa.DateTime),
        sa.Column("at_tz", sa.DateTime(timezone=True)),
        sa.Column("day", sa.Date),
        sa.Column("extra", sa.JSON),
    )
    return metadata


@pytest.mark.parametrize("target_url", BACKENDS, indirect=True)
async def test_declared_types_compare_equal_and_bad_values_are_dead_letters(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    kind = unique_type("vd")
    copy.extra_tables.add(kind)
    metadata = declared(kind)
    couch.bulk(
        [
            {
                "_id": f"d{i}",
                "type": kind,
                "name": f"n{i}",
                "n": i,
                "price": 10.125 + i,  # NUMERIC(10, 2) rounds it
                "ratio": 0.1 * i,
                "ok": i % 2 == 1,
                "at": "2024-05-06T07:08:09.123456",
                "at_tz": "2024-05-06T07:08:09+02:00",
                "day": "2024-05-06",
                "extra": {"k": [i, None, "x"]},
                "undeclared": "dropped",
            }
            for i in range(10)
        ]
    )
    couch.bulk([{"_id": "too-long", "type": kind, "name": "x" * 21}])  # a dead letter
    couch.bulk([{"_id": "other", "type": unique_type("vx")}])  # not copied: no table
    await replicate_async(couchdb_url, target_url, metadata=metadata)
    assert copy.dead_letters().keys() == {"too-long"}

    report = await verify_async(couchdb_url, target_url, metadata=metadata, deep=True)
    assert report.equal, report.lines()
    assert dead_letters(report) == {kind: {"too-long"}}
    assert report.not_copied == 1

    with copy.engine.begin() as conn:
        t = metadata.tables[kind]
        conn.execute(sa.update(t).where(t.c.id == "d1").values(price=decimal.Decimal("1.00")))
        conn.execute(sa.update(t).where(t.c.id == "d2").values(extra={"k": []}))
        conn.execute(sa.update(t).where(t.c.id == "d3").values(ok=False))
    report = await verify_async(couchdb_url, target_url, metadata=metadata, deep=True, repair=True)
    assert found(report) == {kind: {"drifted": {"d1", "d2", "d3"}}}
    assert report.ok, report.lines()
    assert (await verify_async(couchdb_url, target_url, metadata=metadata, deep=True)).equal


@pytest.mark.parametrize("target_url", BACKENDS, indirect=True)
async def test_both_ways_of_reading_the_copy_give_ids_in_couchdb_order(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    """Keyset pages and the one streamed query (PostgreSQL under a collation that is not
    code point order; INTEGER ids) read the same keys, in the order of ``_all_docs``."""
    strings, numbers = unique_type("vk"), unique_type("vn")
    copy.extra_tables.update({strings, numbers})
    metadata = sa.MetaData()
    sa.Table(
        strings,
        metadata,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("rev", sa.String(64)),
    )
    sa.Table(
        numbers,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("rev", sa.String(64)),
    )
    odd_ids = ["B", "a", "a b", "a-b", "a_b", "ab", "Z9", "é", "É", "~", "0", "_x", "a:10", "a:9"]
    with copy.engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(metadata.tables[strings].insert(), [{"id": i, "rev": "1-a"} for i in odd_ids])
        conn.execute(
            metadata.tables[numbers].insert(),
            [{"id": n, "rev": "1-b"} for n in (1, 2, 9, 10, 100, -3)],
        )
    target = create_target_engine(target_url)
    try:
        schema = MetadataSchema(metadata)
        await schema.prepare(target, "x")
        keys = {}
        for streamed in (False, True):
            reader = CopyReader(target, schema, "x", page_size=4)
            await reader.prepare()
            if streamed:
                reader.streamed = True
                reader._collation = "C" if target.backend == "postgresql" else None
            keys[streamed] = [
                (k.id, k.table) for page in [p async for p in reader.ordered_keys()] for k in page
            ]
        expected = sorted(
            [(i, strings) for i in odd_ids]
            + [(f"{numbers}:{n}", numbers) for n in (1, 2, 9, 10, 100, -3)]
        )
        assert keys[False] == expected
        assert keys[True] == expected
        rows = await reader.rows([f"{numbers}:10", f"{numbers}:010", "a b", "A B", "nope"])
        assert {(r.id, r.table) for found_rows in rows.values() for r in found_rows} == {
            (f"{numbers}:10", numbers),
            ("a b", strings),
        }
    finally:
        await target.dispose()


@pytest.mark.parametrize("target_url", ["postgresql"], indirect=True)
async def test_exact_when_the_copy_orders_ids_unlike_couchdb(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str
) -> None:
    """A declared ``id`` column with a language collation (ICU: ``a < A < b``, punctuation
    ignored first) reads in another order than ``_all_docs``: the verdict stays exact."""
    kind = unique_type("vi")
    copy.extra_tables.add(kind)
    metadata = sa.MetaData()
    sa.Table(
        kind,
        metadata,
        sa.Column("id", sa.String(64, collation="en-x-icu"), primary_key=True),
        sa.Column("rev", sa.String(64)),
        sa.Column("n", sa.Integer),
    )
    ids = [f"{p}{i}" for i in range(15) for p in ("a", "A", "a-", "a_", "B", "b ", "é")]
    couch.bulk([{"_id": i, "type": kind, "n": n} for n, i in enumerate(ids)])
    await replicate_async(couchdb_url, target_url, metadata=metadata)
    clean = await verify_async(couchdb_url, target_url, metadata=metadata, chunk_size=10)
    assert clean.equal, clean.lines()
    assert clean.disorder > 0  # the orders did disagree

    with copy.engine.begin() as conn:
        t = metadata.tables[kind]
        conn.execute(sa.delete(t).where(t.c.id.in_(["A3", "a-7", "é14"])))
        stale = ["b 2", "a-3", "é5", "A7", "a_11", "B12"]
        conn.execute(sa.update(t).where(t.c.id.in_(stale)).values(rev="1-0"))
        conn.execute(sa.insert(t).values(id="A-ghost", rev="1-x"))
    couch.delete("a_9")
    expected = {
        kind: {"missing": {"A3", "a-7", "é14"}, "stale": set(stale), "extra": {"A-ghost", "a_9"}}
    }
    # Lookups in batches of 2: an id the orders split comes up twice, in two batches, and
    # must be counted once.
    for chunk_size in (2, 10):
        report = await verify_async(
            couchdb_url, target_url, metadata=metadata, chunk_size=chunk_size, show=50
        )
        assert found(report) == expected, (chunk_size, report.lines())
    report = await verify_async(
        couchdb_url, target_url, metadata=metadata, chunk_size=2, repair=True, show=50
    )
    assert found(report) == expected
    assert report.ok, report.lines()
    assert (await verify_async(couchdb_url, target_url, metadata=metadata)).equal


@pytest.mark.parametrize("declared", [True, False], ids=["metadata", "inferred"])
@pytest.mark.parametrize("target_url", BACKENDS, indirect=True)
async def test_integer_id_tables_made_by_the_dialect_verify_and_repair(
    couch: Couch, copy: Copy, couchdb_url: str, target_url: str, declared: bool
) -> None:
    """Tables created through ``couchdb://`` with an INTEGER ``id``: the copy holds ``n``
    for ``"<table>:n"`` (declared by --metadata, or by the dialect's catalog), an equal
    copy verifies clean, and drift is found under the CouchDB ids and repaired."""
    metadata = sa.MetaData()
    users_t = sa.Table(
        unique_type("vu"),
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("rev", sa.String(64)),
        sa.Column("name", sa.String(50)),
    )
    orders_t = sa.Table(
        unique_type("vo"),
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("rev", sa.String(64)),
        sa.Column("user_id", sa.Integer),
    )
    users, orders = users_t.name, orders_t.name
    copy.extra_tables.update({users, orders})
    dialect = sa.create_engine(couchdb_url)
    try:
        metadata.create_all(dialect)
        with dialect.begin() as conn:
            conn.execute(users_t.insert(), [{"id": i, "name": f"u{i}"} for i in range(1, 21)])
            conn.execute(orders_t.insert(), [{"id": i, "user_id": i % 4 + 1} for i in range(1, 16)])
        couch.bulk([{"_id": "bob", "type": users, "name": "bob"}])  # not "<users>:<n>"
        md = metadata if declared else None
        await replicate_async(couchdb_url, target_url, metadata=md)
        with copy.engine.connect() as conn:
            ids = conn.execute(sa.text(f"SELECT id FROM {users} ORDER BY id")).scalars().all()
        assert ids == list(range(1, 21))

        # chunk_size 4: pages end inside runs like "u:1", "u:10", "u:11" … "u:2", whose
        # text order is not the numbers' order.
        for deep in (False, True):
            clean = await verify_async(
                couchdb_url, target_url, metadata=md, deep=deep, chunk_size=4, show=100
            )
            assert clean.equal, clean.lines()
            assert clean.rows == 35
            assert dead_letters(clean) == {users: {"bob"}}

        old_rev = "1-" + "0" * 32
        with copy.engine.begin() as conn:
            tu, to = (sa.Table(t, sa.MetaData(), autoload_with=conn) for t in (users, orders))
            conn.execute(sa.delete(tu).where(tu.c.id == 1))  # missing
            conn.execute(sa.insert(tu).values(id=99, rev="1-abc", name="ghost"))  # extra
            conn.execute(sa.update(tu).where(tu.c.id == 2).values(rev=old_rev))  # stale
            conn.execute(sa.update(tu).where(tu.c.id == 3).values(name="drifted"))  # drifted
            conn.execute(sa.insert(to).values(id=16, rev="1-abc", user_id=1))  # extra
        with dialect.begin() as conn:  # changes the replicator has not applied
            conn.execute(users_t.update().where(users_t.c.id == 6).values(name="changed"))
            conn.execute(users_t.delete().where(users_t.c.id == 7))
            conn.execute(users_t.insert(), {"id": 30, "name": "u30"})
            conn.execute(orders_t.delete().where(orders_t.c.id == 8))
    finally:
        dialect.dispose()

    expected = {
        users: {
            "missing": {f"{users}:1", f"{users}:30"},
            "extra": {f"{users}:99", f"{users}:7"},
            "stale": {f"{users}:2", f"{users}:6"},
        },
        orders: {"extra": {f"{orders}:16", f"{orders}:8"}},
    }
    report = await verify_async(couchdb_url, target_url, metadata=md, chunk_size=4, show=100)
    assert found(report) == expected, report.lines()
    assert report.exit_code == EXIT_DRIFT
    expected[users]["drifted"] = {f"{users}:3"}
    repaired = await verify_async(
        couchdb_url, target_url, metadata=md, deep=True, repair=True, chunk_size=4, show=100
    )
    assert found(repaired) == expected, repaired.lines()
    assert repaired.ok and repaired.unrepaired == 0, repaired.lines()

    again = await verify_async(couchdb_url, target_url, metadata=md, deep=True)
    assert again.equal, again.lines()
    assert dead_letters(again) == {users: {"bob"}}
    rows = copy.rows(users)
    assert sorted(rows) == [*range(1, 7), *range(8, 21), 30]
    assert rows[3]["name"] == "u3" and rows[6]["name"] == "changed"
    assert sorted(copy.rows(orders)) == [i for i in range(1, 16) if i != 8]
