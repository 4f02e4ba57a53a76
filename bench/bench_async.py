"""Async figures: ``couchdb+async://`` against a raw ``httpx.AsyncClient`` on the same server.

- ``async.point_query``: a cached ``SELECT … WHERE k = :k`` on an indexed column through an
  ``AsyncConnection``, against a raw ``POST _find`` sent with ``httpx.AsyncClient`` with the
  very body the dialect sends (captured from its own request); median latency of sequential
  queries, goal ratio <= 1.25.
- ``async.concurrent_50``: batches of 50 such queries run with ``asyncio.gather`` over the
  engine's pool (``pool_size=50``, connections opened beforehand), against batches of 50
  concurrent raw ``_find`` requests; queries/s, goal ratio >= 0.8. The raw side runs two
  ways, one ``httpx.AsyncClient`` with 50 keep-alive connections, and 50 clients of one
  connection each (what the pool holds: one client per DB-API connection); the baseline is
  the faster of the two, so the ratio is never flattered by a slow baseline.

Both variants run in interleaved rounds (the order alternates each round) and report
medians: on a shared machine, read the ratios, not the absolute values.

Standalone: ``python bench/bench_async.py [--quick]`` uses ``COUCHDB_URL`` (a server URL with
admin credentials, no database) or starts the local test server; prints a table and writes
``bench/out/async.json``. The harness calls :func:`run` (``python -m bench --only async``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import random
import secrets
import statistics
import sys
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
OUT = BENCH_DIR / "out" / "async.json"

TABLE = "items"
CONCURRENCY = 50
SENTINEL = 987_654_321  # a key no row has: its place in the captured body is the parameter

metadata = sa.MetaData()
items = sa.Table(
    TABLE,
    metadata,
    sa.Column("id", sa.String, primary_key=True, server_default=sa.FetchedValue()),
    sa.Column("rev", sa.String),
    sa.Column("k", sa.Integer, index=True),
    sa.Column("name", sa.String(50)),
    sa.Column("score", sa.Float),
)
POINT_QUERY = sa.select(items).where(items.c.k == sa.bindparam("k"))


def sizes(quick: bool) -> dict[str, int]:
    return {
        "rows": 2_000 if quick else 10_000,
        "point_rounds": 5 if quick else 10,
        "point_queries": 20 if quick else 50,
        "gather_rounds": 3 if quick else 7,
        "gather_batches": 2 if quick else 5,
    }


# -- the server ------------------------------------------------------------------------------


class RawServer:
    """Admin access to the server under test with a plain ``httpx.AsyncClient``."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        self.auth = None
        if parts.username is not None:
            self.auth = httpx.BasicAuth(
                urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")
            )
        # Credentials go to Basic auth, not the base URL: httpx quotes request URLs in errors.
        self.base_url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()

    def client(self, connections: int = 10) -> httpx.AsyncClient:
        # Idle keep-alive connections live long enough to outlast the other variant's turn:
        # the raw side never pays for reconnecting.
        return httpx.AsyncClient(
            base_url=self.base_url,
            auth=self.auth,
            timeout=300,
            limits=httpx.Limits(
                max_connections=connections,
                max_keepalive_connections=connections,
                keepalive_expiry=600,
            ),
            headers={"Accept": "application/json"},
        )

    def dialect_url(self, database: str) -> str:
        """``couchdb+async://user:pass@host:port/<database>`` for this server."""
        parts = urllib.parse.urlsplit(self.url)
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{parts.hostname}:{port}" if userinfo else f"{parts.hostname}:{port}"
        return f"couchdb+async://{netloc}/{database}" + ("?use_ssl=true" if https else "")

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = httpx.get(self.base_url + "/", auth=self.auth, timeout=30).json()
        return info


def document(i: int) -> dict[str, Any]:
    return {"_id": f"item{i:07d}", "type": TABLE, "k": i, "name": f"name {i}", "score": i / 4}


async def seed(http: httpx.AsyncClient, database: str, n: int) -> None:
    for start in range(0, n, 1000):
        docs = [document(i) for i in range(start, min(n, start + 1000))]
        response = await http.post(f"/{database}/_bulk_docs", json={"docs": docs})
        response.raise_for_status()
        failed = [r for r in response.json() if "error" in r]
        if failed:
            raise RuntimeError(f"seeding: {len(failed)} documents failed, first {failed[0]}")


def driver_http(dbapi_connection: Any) -> httpx.AsyncClient:
    client: httpx.AsyncClient = dbapi_connection.driver_connection.client.http
    return client


# -- measuring -------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


async def interleave(
    variants: dict[str, Callable[[int], Awaitable[Any]]], rounds: int
) -> dict[str, list[Any]]:
    """Each variant once per round, rotating which goes first; samples by variant."""
    names = list(variants)
    samples: dict[str, list[Any]] = {name: [] for name in names}
    for round_no in range(rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(await variants[name](round_no))
    return samples


class PointQueries:
    """The dialect's query and the raw request with the very same ``_find`` body."""

    def __init__(self, engine: AsyncEngine, raw: httpx.AsyncClient, database: str) -> None:
        self.engine = engine
        self.raw = raw
        self.path = f"/{database}/_find"
        self.template = ""
        self.find_body: dict[str, Any] = {}
        self.requests = 0

    async def capture(self, conn: AsyncConnection) -> None:
        """Learn the dialect's ``_find`` body, with the parameter where SENTINEL is."""
        bodies: list[bytes] = []

        async def hook(request: httpx.Request) -> None:
            if request.url.path.endswith("/_find"):
                bodies.append(request.content)

        http = driver_http(await conn.get_raw_connection())
        http.event_hooks = {"request": [hook], "response": []}
        try:
            assert (await conn.execute(POINT_QUERY, {"k": SENTINEL})).all() == []
        finally:
            http.event_hooks = {"request": [], "response": []}
        if len(bodies) != 1:
            raise RuntimeError(f"the point query sent {len(bodies)} _find requests, not 1")
        self.find_body = json.loads(bodies[0])
        self.template = json.dumps(self.find_body, separators=(",", ":"))
        if self.template.count(str(SENTINEL)) != 1:
            raise RuntimeError(f"cannot find the parameter in the dialect's _find: {self.template}")

    async def dialect(self, conn: AsyncConnection, k: int) -> None:
        rows = (await conn.execute(POINT_QUERY, {"k": k})).all()
        if len(rows) != 1 or rows[0].k != k:
            raise RuntimeError(f"dialect point query k={k} returned {rows!r}")

    async def raw_find(self, k: int, client: httpx.AsyncClient | None = None) -> None:
        response = await (client or self.raw).post(
            self.path,
            content=self.template.replace(str(SENTINEL), str(k)),
            headers={"Content-Type": "application/json"},
        )
        response.raise_for_status()
        docs = response.json()["docs"]
        if len(docs) != 1 or docs[0]["k"] != k:
            raise RuntimeError(f"raw _find k={k} returned {docs!r}")


async def bench_point_query(
    q: PointQueries, conn: AsyncConnection, n: int, rounds: int, queries: int
) -> dict[str, Any]:
    rng = random.Random(7)
    keys = [[rng.randrange(n) for _ in range(queries)] for _ in range(rounds)]

    def latencies(query: Callable[[int], Awaitable[None]]) -> Callable[[int], Awaitable[Any]]:
        async def one_round(round_no: int) -> list[float]:
            out = []
            for k in keys[round_no]:
                start = time.perf_counter()
                await query(k)
                out.append(time.perf_counter() - start)
            return out

        return one_round

    samples = await interleave(
        {
            "dialect": latencies(lambda k: q.dialect(conn, k)),
            "raw": latencies(q.raw_find),
        },
        rounds,
    )
    dialect_ms = [x * 1000 for s in samples["dialect"] for x in s]
    raw_ms = [x * 1000 for s in samples["raw"] for x in s]
    value, baseline = median(dialect_ms), median(raw_ms)
    return figure(
        name="point_query",
        value=value,
        unit="ms",
        baseline=baseline,
        goal=1.25,
        direction="lower",
        notes=(
            f"{rounds * queries} sequential queries on {n:,} rows, {rounds} interleaved rounds; "
            f"round medians dialect {_list([median(s) * 1000 for s in samples['dialect']])}, "
            f"raw {_list([median(s) * 1000 for s in samples['raw']])} ms; body {q.template}"
        ),
        extra={"rows": n, "queries": rounds * queries, "find_body": q.find_body},
    )


async def bench_concurrent(
    q: PointQueries, raw_clients: Sequence[httpx.AsyncClient], n: int, rounds: int, batches: int
) -> dict[str, Any]:
    rng = random.Random(11)
    keys = [
        [[rng.randrange(n) for _ in range(CONCURRENCY)] for _ in range(batches)]
        for _ in range(rounds)
    ]

    async def one_dialect_query(slot: int, k: int) -> None:
        async with q.engine.connect() as conn:
            await q.dialect(conn, k)

    async def one_raw_shared(slot: int, k: int) -> None:
        await q.raw_find(k)

    async def one_raw_own_client(slot: int, k: int) -> None:
        await q.raw_find(k, raw_clients[slot])

    def throughput(
        query: Callable[[int, int], Awaitable[None]],
    ) -> Callable[[int], Awaitable[Any]]:
        async def one_round(round_no: int) -> float:
            start = time.perf_counter()
            for batch in keys[round_no]:
                await asyncio.gather(*(query(slot, k) for slot, k in enumerate(batch)))
            return batches * CONCURRENCY / (time.perf_counter() - start)

        return one_round

    samples = await interleave(
        {
            "dialect": throughput(one_dialect_query),
            "raw_shared": throughput(one_raw_shared),
            "raw_clients": throughput(one_raw_own_client),
        },
        rounds,
    )
    value = median(samples["dialect"])
    shared, own = median(samples["raw_shared"]), median(samples["raw_clients"])
    return figure(
        name="concurrent_50",
        value=value,
        unit="queries/s",
        baseline=max(shared, own),
        goal=0.8,
        direction="higher",
        notes=(
            f"{rounds} interleaved rounds of {batches} gather()s of {CONCURRENCY} point queries "
            f"on {n:,} rows; pool_size={CONCURRENCY}; dialect {_list(samples['dialect'])}, "
            f"raw one client {_list(samples['raw_shared'])}, raw {CONCURRENCY} clients "
            f"{_list(samples['raw_clients'])} queries/s; baseline: the faster raw way"
        ),
        extra={
            "rows": n,
            "concurrency": CONCURRENCY,
            "samples": samples,
            "raw_shared_client": shared,
            "raw_client_per_slot": own,
        },
    )


def figure(**fields: Any) -> dict[str, Any]:
    fields["name"] = "async." + fields["name"]
    value, baseline = fields["value"], fields["baseline"]
    fields["ratio"] = value / baseline if baseline else None
    ratio, goal = fields["ratio"], fields["goal"]
    if ratio is None:
        fields["met"] = None
    else:
        fields["met"] = ratio <= goal if fields["direction"] == "lower" else ratio >= goal
    return fields


def _list(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:,.2f}" if v < 100 else f"{v:,.0f}" for v in values) + "]"


# -- the run ---------------------------------------------------------------------------------


def run(server_url: str, quick: bool) -> list[dict[str, Any]]:
    """Every figure of this module; what the harness calls."""
    return asyncio.run(_run(RawServer(server_url), sizes(quick)))


async def _run(server: RawServer, size: dict[str, int]) -> list[dict[str, Any]]:
    print(f"   sizes: {size}", flush=True)
    database = f"bench_async_{secrets.token_hex(5)}"
    admin = server.client()
    raw = server.client(CONCURRENCY)
    raw_clients = [server.client(1) for _ in range(CONCURRENCY)]
    engine = create_async_engine(
        server.dialect_url(database), pool_size=CONCURRENCY, max_overflow=0
    )
    try:
        (await admin.put(f"/{database}")).raise_for_status()
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)  # the table and its index on k
        await seed(admin, database, size["rows"])
        q = PointQueries(engine, raw, database)
        results = []
        async with engine.connect() as conn:
            # Warm up: the first query builds the index; plan and index list get cached.
            await q.dialect(conn, 0)
            await q.capture(conn)
            await q.raw_find(0)
            results.append(
                await bench_point_query(
                    q, conn, size["rows"], size["point_rounds"], size["point_queries"]
                )
            )
        # Open the pool's connections up front: connecting is not what is measured.
        held = [await engine.connect() for _ in range(CONCURRENCY)]
        await asyncio.gather(*(q.dialect(c, i) for i, c in enumerate(held)))
        for c in held:
            await c.close()
        await asyncio.gather(*(q.raw_find(i) for i in range(CONCURRENCY)))
        await asyncio.gather(*(q.raw_find(i, c) for i, c in enumerate(raw_clients)))
        results.append(
            await bench_concurrent(
                q, raw_clients, size["rows"], size["gather_rounds"], size["gather_batches"]
            )
        )
        return results
    finally:
        await engine.dispose()
        await raw.aclose()
        for client in raw_clients:
            await client.aclose()
        with contextlib.suppress(httpx.HTTPError):
            await admin.delete(f"/{database}")
        await admin.aclose()


@contextlib.contextmanager
def server_url() -> Iterator[str]:
    """``COUCHDB_URL``, else a local test server started for the run."""
    if url := os.environ.get("COUCHDB_URL"):
        yield url.rstrip("/")
        return
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import testserver

    with testserver.start_server(log_level="warning") as server:
        yield server.url


def print_table(results: Sequence[dict[str, Any]]) -> None:
    header = f"{'figure':<20} {'value':>18} {'baseline':>18} {'ratio':>7}  {'goal':<9} met"
    print(header)
    print("-" * len(header))
    for r in results:
        op = "<=" if r["direction"] == "lower" else ">="
        value = f"{r['value']:,.2f} {r['unit']}"
        baseline = f"{r['baseline']:,.2f} {r['unit']}"
        print(
            f"{r['name']:<20} {value:>18} {baseline:>18} {r['ratio']:>7.3f}  "
            f"{op} {r['goal']:<6g} {'yes' if r['met'] else 'NO'}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and rounds")
    parser.add_argument("--out", type=Path, default=OUT, help=f"JSON output (default {OUT})")
    args = parser.parse_args(argv)
    with server_url() as url:
        server = RawServer(url)
        info = server.info()
        results = run(url, args.quick)
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "module": "async",
        "quick": args.quick,
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "server": info,
        "python": platform.python_version(),
        "sqlalchemy": sa.__version__,
        "httpx": httpx.__version__,
        "cores": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
