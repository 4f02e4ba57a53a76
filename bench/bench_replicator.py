"""Benchmark of the replicator: backfill throughput against raw baselines, and live lag.

Backfill: N documents (default 100,000; ``--quick`` 5,000) copied by ``run --once``
into each target, against the slower of (a) one raw ``GET _changes?include_docs=true``
parsed with ``json.loads`` and (b) a raw ``executemany`` INSERT of the same rows into the
same target through the same driver — measured in the same run, round by round (odd
rounds run the replicator first); the figure is the median of the per-round ratios.
Goal: replicator throughput >= 0.8 x that baseline.

Lag: the daemon (``couchdb-replicator run`` as a subprocess) follows the feed while
documents are written at 50/200/500 per second (``_bulk_docs`` every 20 ms); the lag of a
document is the time from CouchDB's answer to its write until a poller (every 5 ms)
sees its row in the copy. Goal: p99 < 1 s at 200 writes/s.

    python bench/bench_replicator.py [--quick] [--docs N] [--targets sqlite,postgresql]

CouchDB: ``COUCHDB_URL`` (server URL with credentials) or the local test server.
Results: a table on stdout and JSON in ``bench/out/``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from couchdb_replicator import replicate_async, tune_garbage_collector
from couchdb_replicator.state import CHECKPOINTS, DEAD_LETTERS, TABLES
from couchdb_replicator.targets import async_url

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out"
#: Document types, hence table names: unique per run, as the PostgreSQL and MariaDB
#: databases are shared with other benchmarks and tests.
KINDS = tuple(f"{kind}_{secrets.token_hex(3)}" for kind in ("customer", "order", "product"))
GOAL_RATIO = 0.8
GOAL_P99 = 1.0

TARGET_URLS = {
    "sqlite": None,  # a file in a temporary directory, per round
    "postgresql": os.environ.get("POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("MARIADB_URL", "mysql://root@127.0.0.1:3306/test"),
}


@contextlib.contextmanager
def couchdb_server() -> Iterator[str]:
    if url := os.environ.get("COUCHDB_URL"):
        yield url.rstrip("/")
        return
    sys.path.insert(0, str(ROOT.parent))
    import testserver

    with testserver.start_server() as server:
        yield server.url


def auth_client(server: str) -> httpx.Client:
    parts = httpx.URL(server)
    return httpx.Client(
        base_url=str(parts.copy_with(username=None, password=None)),
        auth=(parts.username, parts.password),
        timeout=600,
        headers={"Accept-Encoding": "identity"},
    )


def document(i: int) -> dict[str, Any]:
    kind = KINDS[i % len(KINDS)]
    return {
        "_id": f"{kind}-{i:08d}",
        "type": kind,
        "name": f"{kind} number {i}",
        "n": i,
        "price": round(i * 0.37, 2),
        "active": i % 2 == 0,
        "tags": ["x", str(i % 10)],
    }


def seed(http: httpx.Client, db: str, n: int) -> None:
    http.put(f"/{db}").raise_for_status()
    batch = 5000
    for start in range(0, n, batch):
        docs = [document(i) for i in range(start, min(start + batch, n))]
        http.post(f"/{db}/_bulk_docs", json={"docs": docs}).raise_for_status()


def dialect_url(server: str, db: str) -> str:
    u = httpx.URL(server)
    return f"couchdb://{u.username}:{u.password}@{u.host}:{u.port}/{db}"


def raw_read(http: httpx.Client, db: str) -> tuple[float, list[dict[str, Any]]]:
    started = time.perf_counter()
    response = http.get(f"/{db}/_changes", params={"include_docs": "true"})
    body = json.loads(response.content)
    docs = [r["doc"] for r in body["results"]]
    return time.perf_counter() - started, docs


async def raw_insert(target: str, docs: list[dict[str, Any]]) -> float:
    """executemany of plain INSERTs of the same rows, one transaction (no replicator)."""
    engine = create_async_engine(async_url(target))
    backend = engine.dialect.name
    text = sa.Text().with_variant(sa.dialects.mysql.LONGTEXT(), "mysql", "mariadb")
    name = f"bench_raw_{secrets.token_hex(3)}"
    table = sa.Table(
        name,
        sa.MetaData(),
        sa.Column("id", sa.String(512), primary_key=True),
        sa.Column("rev", sa.String(100)),
        sa.Column("name", text),
        sa.Column("n", sa.BigInteger),
        sa.Column("price", sa.Double),
        sa.Column("active", sa.Boolean),
        sa.Column("tags", text if backend in ("mysql", "mariadb") else sa.JSON),
    )
    rows = [
        {
            "id": d["_id"],
            "rev": d["_rev"],
            "name": d["name"],
            "n": d["n"],
            "price": d["price"],
            "active": d["active"],
            "tags": json.dumps(d["tags"]) if backend in ("mysql", "mariadb") else d["tags"],
        }
        for d in docs
        if "type" in d
    ]
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.create)
        started = time.perf_counter()
        async with engine.begin() as conn:
            await conn.execute(sa.insert(table), rows)
        return time.perf_counter() - started
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(table.drop)
        await engine.dispose()


async def reset_copy(target: str, source_key_prefix: str) -> None:
    """Drop the copy's tables and state so the next round backfills from scratch."""
    engine = create_async_engine(async_url(target))
    try:
        async with engine.begin() as conn:
            names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
            meta = sa.MetaData()
            for kind in KINDS:
                if kind in names:
                    await conn.run_sync(sa.Table(kind, meta).drop)
            for state in (CHECKPOINTS, DEAD_LETTERS, TABLES):
                if state.name in names:
                    await conn.execute(
                        sa.delete(state).where(state.c.source.like(f"{source_key_prefix}%"))
                    )
    finally:
        await engine.dispose()


def target_for(kind: str, workdir: Path, round_no: int) -> str:
    url = TARGET_URLS[kind]
    return url if url is not None else f"sqlite:///{workdir}/copy-{round_no}.db"


async def bench_backfill(
    server: str, http: httpx.Client, db: str, n: int, kinds: list[str], rounds: int, work: Path
) -> list[dict[str, Any]]:
    source = dialect_url(server, db)
    prefix = f"{httpx.URL(server).host}:{httpx.URL(server).port}/{db}"
    results = []
    for kind in kinds:
        reads, inserts, runs = [], [], []
        for r in range(rounds):
            target = target_for(kind, work, r)

            async def replicate(target: str = target) -> float:
                await reset_copy(target, prefix)
                started = time.perf_counter()
                summary = await replicate_async(source, target, batch_size=1000)
                seconds = time.perf_counter() - started
                assert summary.counts.upserted == n, summary
                await reset_copy(target, prefix)
                return seconds

            # Odd rounds run the replicator first: whatever a step leaves the machine
            # doing (the target flushing 100k rows, say) weighs on both sides alike.
            if r % 2:
                runs.append(await replicate())
            read_seconds, docs = raw_read(http, db)
            reads.append(read_seconds)
            inserts.append(await raw_insert(target, docs))
            # A million live objects would make every GC pass of the run below slower.
            del docs
            gc.collect()
            if not r % 2:
                runs.append(await replicate())
        read, insert, run = (statistics.median(x) for x in (reads, inserts, runs))
        baseline = max(read, insert)
        # Each round's baseline and run are measured minutes apart at most: the median of
        # the per-round ratios is steadier on a shared machine than a ratio of medians.
        ratios = [max(r, i) / t for r, i, t in zip(reads, inserts, runs, strict=True)]
        ratio = statistics.median(ratios)
        results.append(
            {
                "target": kind,
                "docs": n,
                "rounds": rounds,
                "raw_read_s": read,
                "raw_insert_s": insert,
                "baseline_s": baseline,
                "replicator_s": run,
                "replicator_docs_per_s": n / run,
                "baseline_docs_per_s": n / baseline,
                "ratio": ratio,
                "round_ratios": ratios,
                "goal": GOAL_RATIO,
                "met": ratio >= GOAL_RATIO,
            }
        )
        print(
            f"  backfill {kind:<10} read {read:6.2f} s  insert {insert:6.2f} s  "
            f"replicator {run:6.2f} s  ratio {ratio:4.2f} "
            f"(rounds: {' '.join(f'{r:.2f}' for r in ratios)})",
            flush=True,
        )
    return results


def bench_lag(
    server: str, http: httpx.Client, kind: str, rates: list[int], seconds: float, work: Path
) -> list[dict[str, Any]]:
    results = []
    for rate in rates:
        db = f"bench_lag_{secrets.token_hex(4)}"
        http.put(f"/{db}").raise_for_status()
        target = target_for(kind, work, 1000 + rate)
        prefix = f"{httpx.URL(server).host}:{httpx.URL(server).port}/{db}"
        table = f"lag_{secrets.token_hex(3)}"
        # Create the table first so the first writes do not measure CREATE TABLE.
        http.post(f"/{db}", json={"_id": "a-warmup", "type": table, "n": 0}).raise_for_status()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        log = (work / f"lag-{rate}.log").open("wb")
        daemon = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "couchdb_replicator",
                "run",
                "--source",
                dialect_url(server, db),
                "--target",
                target,
                "--log-level",
                "warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        engine = sa.create_engine(_sync_url(target))
        try:
            _wait_for_row(engine, table, "a-warmup", 60)
            lags = _measure(http, db, engine, table, rate, seconds)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
            log.close()
            with engine.begin() as conn:
                sa.Table(table, sa.MetaData()).drop(conn, checkfirst=True)
                for state in (CHECKPOINTS, DEAD_LETTERS, TABLES):
                    conn.execute(sa.delete(state).where(state.c.source.like(f"{prefix}%")))
            engine.dispose()
            http.delete(f"/{db}")
        lags.sort()
        entry = {
            "target": kind,
            "writes_per_s": rate,
            "seconds": seconds,
            "docs": len(lags),
            "p50_s": _pct(lags, 50),
            "p99_s": _pct(lags, 99),
            "max_s": lags[-1] if lags else None,
            "goal_p99_s": GOAL_P99 if rate == 200 else None,
            "met": (_pct(lags, 99) < GOAL_P99) if rate == 200 else None,
        }
        results.append(entry)
        print(
            f"  lag {kind:<10} {rate:4d}/s  p50 {entry['p50_s'] * 1000:7.1f} ms  "
            f"p99 {entry['p99_s'] * 1000:7.1f} ms  max {entry['max_s'] * 1000:7.1f} ms "
            f"({len(lags)} docs)",
            flush=True,
        )
    return results


def _q(engine: sa.Engine) -> str:
    return "`" if engine.dialect.name in ("mysql", "mariadb") else '"'


def _sync_url(target: str) -> str:
    url = sa.make_url(target)
    backend = url.get_backend_name()
    if backend == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    elif backend in ("mysql", "mariadb"):
        url = url.set(drivername="mysql+pymysql")
    return url.render_as_string(hide_password=False)


def _wait_for_row(engine: sa.Engine, table: str, doc_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(sa.exc.SQLAlchemyError), engine.connect() as conn:
            q = _q(engine)
            found = conn.exec_driver_sql(
                f"SELECT 1 FROM {q}{table}{q} WHERE id = '{doc_id}'"
            ).first()
            if found:
                return
        time.sleep(0.05)
    raise RuntimeError("the replicator did not start copying")


def _measure(
    http: httpx.Client, db: str, engine: sa.Engine, table: str, rate: int, seconds: float
) -> list[float]:
    """Write at ``rate`` docs/s; return each document's write-ack-to-visible lag."""
    acked: dict[str, float] = {}
    seen: dict[str, float] = {}
    done = threading.Event()
    tick = 0.02
    per_tick = rate * tick

    def writer() -> None:
        n, owed, next_tick = 0, 0.0, time.monotonic()
        end = next_tick + seconds
        while time.monotonic() < end:
            owed += per_tick
            count = int(owed)
            owed -= count
            if count:
                ids = [f"b-{n + i:09d}" for i in range(count)]
                n += count
                docs = [{"_id": i, "type": table, "n": 1} for i in ids]
                http.post(f"/{db}/_bulk_docs", json={"docs": docs}).raise_for_status()
                now = time.monotonic()
                for i in ids:
                    acked[i] = now
            next_tick += tick
            time.sleep(max(0.0, next_tick - time.monotonic()))
        done.set()

    def poller() -> None:
        last = "b-"
        q = _q(engine)
        give_up: float | None = None
        with engine.connect() as conn:
            while True:
                if done.is_set():
                    if len(seen) >= len(acked):
                        return
                    give_up = give_up or time.monotonic() + 30
                    if time.monotonic() > give_up:
                        return
                rows = conn.exec_driver_sql(
                    f"SELECT id FROM {q}{table}{q} WHERE id > %s ORDER BY id"
                    if engine.dialect.name != "sqlite"
                    else f'SELECT id FROM "{table}" WHERE id > ? ORDER BY id',
                    (last,),
                ).all()
                conn.rollback()  # a fresh snapshot for the next poll
                now = time.monotonic()
                for (doc_id,) in rows:
                    seen.setdefault(doc_id, now)
                    last = max(last, doc_id)
                time.sleep(0.005)

    threads = [threading.Thread(target=writer), threading.Thread(target=poller)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    missing = set(acked) - set(seen)
    if missing:
        raise RuntimeError(f"{len(missing)} documents never reached the copy")
    return [seen[i] - acked[i] for i in acked]


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    k = max(0, min(len(values) - 1, round(p / 100 * len(values)) - 1))
    return values[k]


def measure(
    server: str,
    n: int,
    rounds: int,
    lag_seconds: float,
    targets: list[str],
    lag_targets: list[str],
    rates: list[int],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Backfill and lag figures on one server: what ``main`` prints and ``run`` returns."""
    # As the CLI does; for the whole process, so the raw read's json.loads gains too.
    tune_garbage_collector()
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-replicator-{secrets.token_hex(3)}"
    work.mkdir(parents=True)
    with auth_client(server) as http:
        db = f"bench_{secrets.token_hex(4)}"
        print(f"seeding {n} documents into {db} ...", flush=True)
        seed(http, db, n)
        try:
            backfill = asyncio.run(bench_backfill(server, http, db, n, targets, rounds, work))
        finally:
            http.delete(f"/{db}")
        lag = [r for t in lag_targets for r in bench_lag(server, http, t, rates, lag_seconds, work)]
    return backfill, lag


def run(server_url: str, quick: bool) -> list[dict[str, Any]]:
    """The bench harness's entry point (``python -m bench --only replicator``)."""
    n, rounds, lag_seconds = (5_000, 1, 4.0) if quick else (100_000, 3, 15.0)
    backfill, lag = measure(
        server_url, n, rounds, lag_seconds, ["sqlite", "postgresql"], ["sqlite"], [50, 200, 500]
    )
    records: list[dict[str, Any]] = [
        {
            "name": f"replicator.backfill_{r['target']}",
            "value": r["replicator_docs_per_s"],
            "unit": "docs/s",
            "baseline": r["baseline_docs_per_s"],
            "ratio": r["ratio"],
            "goal": GOAL_RATIO,
            "notes": (
                f"{r['docs']:,} docs, median ratio of {r['rounds']} round(s); baseline = slower "
                "of raw "
                f"_changes read ({r['raw_read_s']:.2f} s) and raw executemany "
                f"({r['raw_insert_s']:.2f} s)"
            ),
        }
        for r in backfill
    ]
    records += [
        {
            "name": f"replicator.lag_p99_{r['target']}_{r['writes_per_s']}",
            "value": r["p99_s"],
            "unit": "s",
            "goal": GOAL_P99 if r["writes_per_s"] == 200 else None,
            "direction": "lower",
            "goal_on": "value",
            "notes": f"p50 {r['p50_s'] * 1000:.0f} ms, max {r['max_s'] * 1000:.0f} ms, "
            f"{r['docs']} docs over {r['seconds']:.0f} s",
        }
        for r in lag
        if r["p99_s"] is not None
    ]
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 docs, 1 round, 4 s lag runs")
    parser.add_argument("--docs", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--targets", default="sqlite,postgresql")
    parser.add_argument("--lag-targets", default="sqlite")
    parser.add_argument("--rates", default="50,200,500")
    parser.add_argument("--lag-seconds", type=float)
    args = parser.parse_args()
    n = args.docs or (5_000 if args.quick else 100_000)
    rounds = args.rounds or (1 if args.quick else 3)
    lag_seconds = args.lag_seconds or (4.0 if args.quick else 15.0)
    targets = [t for t in args.targets.split(",") if t]
    lag_targets = [t for t in args.lag_targets.split(",") if t]
    rates = [int(r) for r in args.rates.split(",") if r]
    with couchdb_server() as server:
        backfill, lag = measure(server, n, rounds, lag_seconds, targets, lag_targets, rates)
    report = {
        "benchmark": "replicator",
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "server": "COUCHDB_URL" if os.environ.get("COUCHDB_URL") else "testserver (PouchDB)",
        "backfill": backfill,
        "lag": lag,
    }
    OUT.mkdir(exist_ok=True)
    path = OUT / f"replicator-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(
        f"{'backfill':<12}{'docs':>8}{'read s':>9}{'insert s':>10}{'repl s':>9}"
        f"{'docs/s':>10}{'ratio':>7}  goal >= {GOAL_RATIO}"
    )
    for r in backfill:
        print(
            f"{r['target']:<12}{r['docs']:>8}{r['raw_read_s']:>9.2f}{r['raw_insert_s']:>10.2f}"
            f"{r['replicator_s']:>9.2f}{r['replicator_docs_per_s']:>10.0f}{r['ratio']:>7.2f}"
            f"  {'met' if r['met'] else 'NOT met'}"
        )
    header = f"{'lag':<12}{'writes/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    print(f"\n{header}  goal p99 < 1 s @200/s")
    for r in lag:
        verdict = "" if r["met"] is None else ("met" if r["met"] else "NOT met")
        print(
            f"{r['target']:<12}{r['writes_per_s']:>9}{r['p50_s'] * 1000:>9.1f}"
            f"{r['p99_s'] * 1000:>9.1f}{r['max_s'] * 1000:>9.1f}  {verdict}"
        )
    print(f"\nJSON: {path}")


if __name__ == "__main__":
    main()
