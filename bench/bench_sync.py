"""Sync figures: the ``couchdb://`` dialect and the DB-API against httpx straight to the server.

Each figure is measured against its limit in the same run, on the same server and the same
data, in interleaved rounds (see :func:`bench.harness.interleave`):

- ``sync.bulk_insert``: Core ``insert()`` with a list of rows (``executemany``) against raw
  ``POST _bulk_docs`` of the same documents in the same batch size (500); rows/s,
  goal ratio >= 0.9.
- ``sync.point_query``: a cached ``SELECT … WHERE k = :k`` on an indexed column against raw
  ``POST _find`` with the very body the dialect sends (captured from its own request);
  median latency, goal ratio <= 1.25.
- ``sync.full_scan`` / ``sync.full_scan_streamed``: every row of the table, plain
  (``.all()``) and streamed (``yield_per``), against raw ``_find`` paged by bookmark (CouchDB)
  or skip (PouchDB Server) with the same selector and page size; rows/s, goal ratio >= 0.8;
  peak Python memory of each, measured in separate runs under tracemalloc.
- ``sync.client_cost``: one cached point-query execution through the DB-API (translate, bind,
  build and send the request, parse the answer into rows) with HTTP faked by
  ``httpx.MockTransport``; microseconds, goal < 100 µs. Its baseline is the same request
  sent with the bare ``httpx.Client`` on the same MockTransport: the part no driver avoids.
  ``sync.client_cost_sqlalchemy`` is the same through a SQLAlchemy ``Connection``.

Run it through the harness: ``python -m bench --only sync [--quick]``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import random
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import sqlalchemy as sa

from bench.harness import (
    Server,
    describe_error,
    interleave,
    median,
    paired_ratio,
    peak_memory,
    timed,
)

TABLE = "items"
BATCH = 500  # the dialect's _bulk_docs chunk (operations.DEFAULT_BULK_CHUNK)
PAGE = 1000  # the dialect's _find page (operations.DEFAULT_FIND_PAGE)
SENTINEL = 987_654_321  # a key no row has: its place in the captured body is the parameter
EPOCH = dt.datetime(2024, 1, 1)
CITIES = ("London", "Paris", "Berlin", "Madrid", "Rome", "Vienna", "Oslo")
MIB = 1024 * 1024

metadata = sa.MetaData()
items = sa.Table(
    TABLE,
    metadata,
    sa.Column("id", sa.String, primary_key=True, server_default=sa.FetchedValue()),
    sa.Column("rev", sa.String),
    sa.Column("k", sa.Integer, index=True),
    sa.Column("name", sa.String(50)),
    sa.Column("city", sa.String),
    sa.Column("score", sa.Float),
    sa.Column("active", sa.Boolean),
    sa.Column("created", sa.DateTime),
)
POINT_QUERY = sa.select(items).where(items.c.k == sa.bindparam("k"))


def row(i: int) -> dict[str, Any]:
    """Row ``i`` as the dialect receives it."""
    return {
        "id": f"item{i:07d}",
        "k": i,
        "name": f"name {i}",
        "city": CITIES[i % len(CITIES)],
        "score": i * 0.25,
        "active": i % 2 == 0,
        "created": EPOCH + dt.timedelta(seconds=i),
    }


def document(i: int) -> dict[str, Any]:
    """Row ``i`` as the document the dialect stores (the raw baseline sends this)."""
    doc = row(i)
    doc["_id"] = doc.pop("id")
    doc["type"] = TABLE
    doc["created"] = doc["created"].isoformat()
    return doc


FIGURES = ("bulk_insert", "point_query", "full_scan", "client_cost")
#: PouchDB Server has no ``_find`` bookmark: every skip-paged page re-reads the index from
#: the start (1.3 s a page at 10k rows on this machine), so a scan costs O(rows²). Beyond
#: this many rows such a server is scanned at this size instead (stated in the notes).
SKIP_PAGED_SCAN_MAX = 20_000


def sizes(quick: bool, rows: int | None, rounds: int | None) -> dict[str, int]:
    n = rows or (10_000 if quick else 100_000)
    return {
        "rows": n,
        "bulk_rounds": rounds or (3 if quick else 5),
        "scan_rounds": rounds or 3,
        "point_rounds": rounds or (6 if quick else 10),
        "point_queries": 30 if quick else 60,
        "cost_rounds": rounds or 5,
        "cost_calls": 1000 if quick else 3000,
    }


def run(
    server_url: str,
    quick: bool,
    *,
    rows: int | None = None,
    rounds: int | None = None,
    figures: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    size = sizes(quick, rows, rounds)
    wanted = set(figures or FIGURES)
    if unknown := wanted - set(FIGURES):
        raise ValueError(f"unknown figure(s) {sorted(unknown)}; sync has {', '.join(FIGURES)}")
    print(f"   sizes: {size}", flush=True)
    results: list[dict[str, Any]] = []
    with Server(server_url) as server, contextlib.ExitStack() as databases:

        def seeded(n: int) -> str:
            name = seed_database(server, n)
            databases.callback(server.drop_database, name)
            return name

        read_db: str | None = None

        def bulk_insert() -> list[dict[str, Any]]:
            nonlocal read_db
            result, read_db = bench_bulk_insert(server, size["rows"], size["bulk_rounds"])
            databases.callback(server.drop_database, read_db)
            return [result]

        def point_query() -> list[dict[str, Any]]:
            database = read_db or seeded(size["rows"])
            return [
                bench_point_query(
                    server, database, size["rows"], size["point_rounds"], size["point_queries"]
                )
            ]

        def full_scan() -> list[dict[str, Any]]:
            scan_db = read_db or seeded(size["rows"])
            scan_rows, note = size["rows"], ""
            # An explicit --rows is taken as asked, even where it is slow.
            if (
                rows is None
                and scan_rows > SKIP_PAGED_SCAN_MAX
                and not pages_by_bookmark(server, scan_db)
            ):
                note = (
                    f"scanned {SKIP_PAGED_SCAN_MAX:,} rows, not {scan_rows:,}: this server "
                    "returns no bookmark, and skip paging costs O(rows²); "
                )
                scan_rows = SKIP_PAGED_SCAN_MAX
                scan_db = seeded(scan_rows)
            return bench_full_scan(server, scan_db, scan_rows, size["scan_rounds"], note)

        def client_cost() -> list[dict[str, Any]]:
            return bench_client_cost(size["cost_rounds"], size["cost_calls"])

        steps: dict[str, Callable[[], list[dict[str, Any]]]] = {
            "bulk_insert": bulk_insert,
            "point_query": point_query,
            "full_scan": full_scan,
            "client_cost": client_cost,
        }
        for name in FIGURES:
            if name in wanted:
                print(f"   {name}", flush=True)
                results.extend(attempt(name, steps[name]))
    return results


def attempt(name: str, step: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Run one figure's measurement; a failure becomes an error record, not a lost run."""
    try:
        return step()
    except Exception as err:
        traceback.print_exc()
        return [figure(name=name, value=None, error=describe_error(err))]


def seed_database(server: Server, n: int) -> str:
    """A database with the declared table, its index and ``n`` rows (raw ``_bulk_docs``)."""
    name = server.create_database("bench_read")
    with dialect_engine(server, name) as engine:
        metadata.create_all(engine)
    raw_bulk_insert(server.http, name, [document(i) for i in range(n)])
    return name


def warm_index(server: Server, database: str) -> None:
    """Have the server build the ``k`` index now, with the raw client's long timeout.

    Both servers build a Mango index on its first use; on 100k rows that takes longer
    than the dialect's default read timeout, and it must not land in a timed round.
    """
    json_post(
        server.http,
        f"/{database}/_find",
        {"selector": {"type": {"$eq": TABLE}, "k": {"$eq": -1}}, "limit": 1},
    )


def pages_by_bookmark(server: Server, database: str) -> bool:
    """Whether the server resumes ``_find`` by bookmark (CouchDB) or needs skip (PouchDB)."""
    answer = json_post(server.http, f"/{database}/_find", {"selector": {}, "limit": 1})
    return bool(answer.get("bookmark")) and answer["bookmark"] != "nil"


# -- helpers ---------------------------------------------------------------------------------


@contextlib.contextmanager
def dialect_engine(server: Server, database: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(server.dialect_url(database))
    try:
        yield engine
    finally:
        engine.dispose()


def _driver_client(conn: sa.Connection) -> Any:
    """The DB-API connection's ``CouchDBClient`` under a SQLAlchemy connection."""
    return conn.connection.dbapi_connection.client  # type: ignore[union-attr]


class RequestLog:
    """Records the requests an httpx client sends (an event hook): count and bodies."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []

    def __call__(self, request: httpx.Request) -> None:
        self.requests.append((request.method, request.url.path, request.content))

    def attach(self, client: httpx.Client) -> RequestLog:
        client.event_hooks = {**client.event_hooks, "request": [self]}
        return self

    @staticmethod
    def detach(client: httpx.Client) -> None:
        client.event_hooks = {**client.event_hooks, "request": []}

    def bodies(self, suffix: str) -> list[dict[str, Any]]:
        return [json.loads(body) for _, path, body in self.requests if path.endswith(suffix)]


def json_post(http: httpx.Client, path: str, body: Any) -> Any:
    response = http.post(
        path,
        content=json.dumps(body, separators=(",", ":")).encode(),
        headers={"Content-Type": "application/json"},
    )
    response.raise_for_status()
    return response.json()


def raw_bulk_insert(http: httpx.Client, database: str, docs: Sequence[dict[str, Any]]) -> int:
    written = 0
    for start in range(0, len(docs), BATCH):
        answer = json_post(http, f"/{database}/_bulk_docs", {"docs": docs[start : start + BATCH]})
        failed = [r for r in answer if "error" in r]
        if failed:
            raise RuntimeError(f"raw _bulk_docs: {len(failed)} failed, first {failed[0]}")
        written += len(answer)
    return written


def raw_paged_find(http: httpx.Client, database: str, body: dict[str, Any]) -> Iterator[Any]:
    """Every document of a ``_find``, page by page: bookmark when given, else skip."""
    skip = 0
    bookmark = None
    while True:
        page_body = {**body, "limit": PAGE}
        page_body.pop("skip", None)
        page_body.pop("bookmark", None)
        if bookmark:
            page_body["bookmark"] = bookmark
        elif skip:
            page_body["skip"] = skip
        answer = json_post(http, f"/{database}/_find", page_body)
        docs = answer["docs"]
        yield from docs
        if len(docs) < PAGE:
            return
        skip += len(docs)
        new = answer.get("bookmark")
        bookmark = new if new and new not in ("nil", bookmark) else None


def raw_keyset_find(http: httpx.Client, database: str, body: dict[str, Any]) -> Iterator[Any]:
    """Every document of a ``_find``, paged by ``_id`` ranges: what the server can do.

    ``$gte`` and dropping the boundary row, not ``$gt``: PouchDB Server's ``$gt`` with an
    index and a limit can return too few rows.
    """
    last: str | None = None
    while True:
        selector = {**body["selector"], "_id": {"$gte": last if last is not None else ""}}
        page_body = {**body, "selector": selector, "sort": [{"_id": "asc"}], "limit": PAGE}
        page_body.pop("use_index", None)
        page_body.pop("skip", None)
        docs = json_post(http, f"/{database}/_find", page_body)["docs"]
        fresh = docs[1:] if docs and last is not None and docs[0]["_id"] == last else docs
        yield from fresh
        if len(docs) < PAGE:
            return
        last = docs[-1]["_id"]


def figure(**fields: Any) -> dict[str, Any]:
    fields["name"] = "sync." + fields["name"]
    return fields


# -- bulk insert -----------------------------------------------------------------------------


def bench_bulk_insert(server: Server, n: int, rounds: int) -> tuple[dict[str, Any], str]:
    """Returns the figure and a database holding the rows (kept for the read figures)."""
    rows = [row(i) for i in range(n)]
    docs = [document(i) for i in range(n)]
    databases: list[str] = []

    def fresh_database() -> str:
        # Both sides get the same database: the declared table and its Mango index.
        name = server.create_database("bench_insert")
        databases.append(name)
        with dialect_engine(server, name) as engine:
            metadata.create_all(engine)
        return name

    def dialect(_: int, count: int = n) -> float:
        with dialect_engine(server, fresh_database()) as engine, engine.connect() as conn:
            seconds, result = timed(lambda: conn.execute(items.insert(), rows[:count]))
            conn.commit()
        if result.rowcount != count:
            raise RuntimeError(f"dialect executemany wrote {result.rowcount} of {count} rows")
        return count / seconds

    def raw(_: int, count: int = n) -> float:
        database = fresh_database()
        seconds, written = timed(lambda: raw_bulk_insert(server.http, database, docs[:count]))
        if written != count:
            raise RuntimeError(f"raw _bulk_docs wrote {written} of {count} documents")
        return count / seconds

    # Warm both paths up (imports, statement compilation, connections), untimed.
    dialect(0, min(n, 2 * BATCH))
    raw(0, min(n, 2 * BATCH))
    for name in databases:
        server.drop_database(name)
    databases.clear()

    keep: list[str] = []

    def cleanup(round_no: int) -> None:
        # Keep the last raw database: the read figures run on it.
        last = databases.pop() if round_no == rounds - 1 and databases else None
        for name in databases:
            server.drop_database(name)
        databases.clear()
        if last is not None:
            keep.append(last)

    # Whichever variant went last, the database kept holds the n rows and the index.
    samples = interleave({"dialect": dialect, "raw": raw}, rounds, between=cleanup)
    value, baseline = median(samples["dialect"]), median(samples["raw"])
    return (
        figure(
            name="bulk_insert",
            value=value,
            unit="rows/s",
            baseline=baseline,
            ratio=paired_ratio(samples["dialect"], samples["raw"]),
            goal=0.9,
            direction="higher",
            notes=(
                f"{n:,} rows, batches of {BATCH}, {rounds} interleaved rounds, ratio = median "
                "of the per-round ratios; "
                f"dialect {_list(samples['dialect'])}, raw {_list(samples['raw'])} rows/s"
            ),
            extra={"rows": n, "rounds": rounds, "samples": samples},
        ),
        keep[0],
    )


def _list(values: Sequence[float], digits: int = 0) -> str:
    return "[" + ", ".join(f"{v:,.{digits}f}" for v in values) + "]"


# -- point query -----------------------------------------------------------------------------


def bench_point_query(
    server: Server, database: str, n: int, rounds: int, queries: int
) -> dict[str, Any]:
    rng = random.Random(7)
    keys = [[rng.randrange(n) for _ in range(queries)] for _ in range(rounds)]
    warm_index(server, database)
    with dialect_engine(server, database) as engine, engine.connect() as conn:
        client = _driver_client(conn)
        # Warm up: the plan, the statement and the index list are cached on first use.
        conn.execute(POINT_QUERY, {"k": 0}).all()
        log = RequestLog().attach(client.http)
        assert conn.execute(POINT_QUERY, {"k": SENTINEL}).all() == []
        RequestLog.detach(client.http)
        (captured,) = log.bodies("/_find")
        template = json.dumps(captured, separators=(",", ":"))
        if template.count(str(SENTINEL)) != 1:
            raise RuntimeError(f"cannot find the parameter in the dialect's _find: {template}")
        raw_bodies = {k: template.replace(str(SENTINEL), str(k)) for ks in keys for k in ks}
        raw_bodies[0] = template.replace(str(SENTINEL), "0")
        path = f"/{database}/_find"
        headers = {"Content-Type": "application/json"}

        def raw_query(k: int) -> list[Any]:
            response = server.http.post(path, content=raw_bodies[k], headers=headers)
            response.raise_for_status()
            docs: list[Any] = response.json()["docs"]
            return docs

        def dialect_query(k: int) -> list[Any]:
            return list(conn.execute(POINT_QUERY, {"k": k}).all())

        raw_query(0)
        if len(raw_query(keys[0][0])) != 1 or len(dialect_query(keys[0][0])) != 1:
            raise RuntimeError("a point query did not find exactly one row")

        for k in keys[0][:10]:  # warm both connections and caches, untimed
            raw_query(k)
            dialect_query(k)
        flat = [k for ks in keys for k in ks]

        def latency(query: Callable[[int], list[Any]]) -> Callable[[int], float]:
            def one(i: int) -> float:
                start = time.perf_counter()
                query(flat[i])
                return time.perf_counter() - start

            return one

        # Interleaved query by query (the order alternates each time): on a shared machine
        # the load changes within seconds, and both sides should see the same moments.
        log = RequestLog().attach(client.http)
        samples = interleave(
            {"dialect": latency(dialect_query), "raw": latency(raw_query)}, len(flat)
        )
        RequestLog.detach(client.http)
    calls = len(flat)
    requests_per_query = len(log.requests) / calls
    dialect_ms = [x * 1000 for x in samples["dialect"]]
    raw_ms = [x * 1000 for x in samples["raw"]]
    round_medians = {
        name: [median(ms[r * queries : (r + 1) * queries]) for r in range(rounds)]
        for name, ms in (("dialect", dialect_ms), ("raw", raw_ms))
    }
    value, baseline = median(dialect_ms), median(raw_ms)
    return figure(
        name="point_query",
        value=value,
        unit="ms",
        baseline=baseline,
        goal=1.25,
        direction="lower",
        notes=(
            f"{calls} queries on {n:,} rows, alternating dialect and raw query by query; "
            f"p90 dialect {_pct(dialect_ms, 90):.2f} ms, raw {_pct(raw_ms, 90):.2f} ms; "
            f"round medians dialect {_list(round_medians['dialect'], 2)}, "
            f"raw {_list(round_medians['raw'], 2)} ms; "
            f"{requests_per_query:.2f} HTTP request(s) per execute; body {template}"
        ),
        extra={
            "rows": n,
            "queries": calls,
            "requests_per_execute": requests_per_query,
            "find_body": captured,
            "p90_ms": _pct(dialect_ms, 90),
            "baseline_p90_ms": _pct(raw_ms, 90),
        },
    )


def _pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# -- full scan -------------------------------------------------------------------------------


def bench_full_scan(
    server: Server, database: str, n: int, rounds: int, note: str = ""
) -> list[dict[str, Any]]:
    query = sa.select(items)
    warm_index(server, database)
    with dialect_engine(server, database) as engine, engine.connect() as conn:
        client = _driver_client(conn)
        log = RequestLog().attach(client.http)
        first = len(conn.execute(query).all())
        RequestLog.detach(client.http)
        if first != n:
            raise RuntimeError(f"the dialect's full scan returned {first} of {n} rows")
        dialect_pages = log.bodies("/_find")
        body = dialect_pages[0]

        def plain() -> int:
            return len(conn.execute(query).all())

        def streamed() -> int:
            count = 0
            for _ in conn.execution_options(yield_per=PAGE).execute(query):
                count += 1
            return count

        def raw() -> int:
            count = 0
            for _ in raw_paged_find(server.http, database, body):
                count += 1
            return count

        def keyset() -> int:
            count = 0
            for _ in raw_keyset_find(server.http, database, body):
                count += 1
            return count

        variants = {"plain": plain, "streamed": streamed, "raw": raw, "keyset": keyset}

        def rate(fn: Callable[[], int]) -> Callable[[int], float]:
            def one_round(_: int) -> float:
                seconds, count = timed(fn)
                if count != n:
                    raise RuntimeError(f"a full scan returned {count} of {n} rows")
                return n / seconds

            return one_round

        samples = interleave({name: rate(fn) for name, fn in variants.items()}, rounds)
        # Memory in runs of their own: tracemalloc slows allocation-heavy code down.
        peaks = {
            name: peak_memory(fn)[0] / MIB for name, fn in variants.items() if name != "keyset"
        }
    baseline = median(samples["raw"])
    results = []
    for name, label in (("plain", "full_scan"), ("streamed", "full_scan_streamed")):
        how = ".all()" if name == "plain" else f"yield_per={PAGE}"
        results.append(
            figure(
                name=label,
                value=median(samples[name]),
                unit="rows/s",
                baseline=baseline,
                ratio=paired_ratio(samples[name], samples["raw"]),
                goal=0.8,
                direction="higher",
                notes=(
                    f"{note}{n:,} rows ({how}), pages of {PAGE}, {rounds} interleaved rounds, "
                    "ratio = median of the per-round ratios; "
                    f"{name} {_list(samples[name])}, raw {_list(samples['raw'])} rows/s; "
                    f"peak memory {peaks[name]:.1f} MiB vs raw paged {peaks['raw']:.1f} MiB; "
                    f"{len(dialect_pages)} _find requests"
                ),
                extra={
                    "rows": n,
                    "rounds": rounds,
                    "samples": samples[name],
                    "baseline_samples": samples["raw"],
                    "peak_memory_mib": peaks[name],
                    "baseline_peak_memory_mib": peaks["raw"],
                    "find_requests": len(dialect_pages),
                    "find_body": body,
                },
            )
        )
        results.append(
            figure(
                name=f"{label}_peak_memory",
                value=peaks[name],
                unit="MiB",
                baseline=peaks["raw"],
                notes=f"tracemalloc peak over one {how} scan of {n:,} rows vs raw paged _find",
            )
        )
    keyset_rate = median(samples["keyset"])
    results.append(
        figure(
            name="full_scan_raw_keyset",
            value=keyset_rate,
            unit="rows/s",
            baseline=baseline,
            notes=(
                "headroom, not a goal: raw _find paged by _id ranges ($gte the last id, sorted "
                f"by _id) vs the raw bookmark/skip paging the dialect does: "
                f"{_list(samples['keyset'])} rows/s"
            ),
            extra={"samples": samples["keyset"]},
        )
    )
    return results


# -- client-side cost ------------------------------------------------------------------------

MOCK_URL = "couchdb://bench:secret@couchdb.invalid:5984/benchdb"


def _canned_doc(k: int) -> dict[str, Any]:
    doc = document(k)
    doc["_rev"] = "1-0123456789abcdef0123456789abcdef"
    return doc


def mock_transport(*, declared: bool = True) -> httpx.MockTransport:
    """Canned CouchDB 3 answers: ``GET /``, the index list, and a one-document ``_find``.

    ``declared`` False answers 404 for the schema document: a table that only exists as
    data (written by another program), never declared with ``CREATE TABLE``.
    """
    find_answer = json.dumps(
        {"docs": [_canned_doc(42)], "bookmark": "g1AAAABweJzLYWBgYMpgSmHgKy5JLCrJTq2MT8lPzkzJBQA"}
    ).encode()
    indexes = {
        "total_rows": 2,
        "indexes": [
            {
                "ddoc": None,
                "name": "_all_docs",
                "type": "special",
                "def": {"fields": [{"_id": "asc"}]},
            },
            {
                "ddoc": "_design/sqla-items",
                "name": "ix_items_k",
                "type": "json",
                "def": {"fields": [{"type": "asc"}, {"k": "asc"}]},
            },
        ],
    }
    index_answer = json.dumps(indexes).encode()
    server_answer = json.dumps({"couchdb": "Welcome", "version": "3.5.0"}).encode()
    # The table is declared (as create_all leaves it): its columns in the schema document.
    columns = [
        {"name": c.name, "type": str(c.type), "nullable": c.nullable, "primary_key": c.primary_key}
        for c in items.columns
    ]
    schema = {"_id": "_local/sqlalchemy_couchdb.schema", "_rev": "0-1"}
    schema_answer = json.dumps({**schema, "tables": {TABLE: {"columns": columns}}}).encode()
    json_headers = {"Content-Type": "application/json"}

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/_find"):
            return httpx.Response(200, content=find_answer, headers=json_headers)
        if path.endswith("/_index"):
            return httpx.Response(200, content=index_answer, headers=json_headers)
        if path.endswith("/_local/sqlalchemy_couchdb.schema") and declared:
            return httpx.Response(200, content=schema_answer, headers=json_headers)
        if path == "/":
            return httpx.Response(200, content=server_answer, headers=json_headers)
        return httpx.Response(404, json={"error": "not_found", "reason": "missing"})

    return httpx.MockTransport(handle)


def bench_client_cost(rounds: int, calls: int) -> list[dict[str, Any]]:
    from sqlalchemy_couchdb.dbapi import ConnectionSettings, CouchDBClient, connect
    from sqlalchemy_couchdb.dbapi.cursor import Stream
    from sqlalchemy_couchdb.httpx import dialect as couchdb_dialect

    settings = ConnectionSettings.from_url(MOCK_URL)
    sql = str(POINT_QUERY.compile(dialect=couchdb_dialect()))

    dbapi_conn = connect(settings, client=CouchDBClient(settings, transport=mock_transport()))
    cursor = dbapi_conn.cursor()

    def dbapi_execute(k: int) -> None:
        cursor.execute(sql, {"k": k})
        cursor.fetchall()

    dbapi_execute(0)
    log = RequestLog().attach(dbapi_conn.client.http)
    dbapi_execute(SENTINEL)
    RequestLog.detach(dbapi_conn.client.http)
    (find_body,) = log.bodies("/_find")
    template = json.dumps(find_body, separators=(",", ":"))
    path = log.requests[0][1]

    # The floor: the same request with the same client settings and no driver at all.
    bare = httpx.Client(transport=mock_transport(), **settings.httpx_options())
    headers = {"Content-Type": "application/json"}

    def bare_request(k: int) -> None:
        body = template.replace(str(SENTINEL), str(k)).encode()
        json.loads(bare.post(path, content=body, headers=headers).content)

    def translate_and_build(k: int) -> None:
        # Up to the hand-over to httpx: plan (cached), bind, the Call, its encoded body.
        # Internal API on purpose: this is the part of the cost the driver alone decides.
        stream = Stream(dbapi_conn._statement(sql, [{"k": k}]))
        call = stream.next_call()
        if call is None or not call.path.endswith("/_find"):
            raise RuntimeError(f"expected the point query's _find first, got {call}")
        dbapi_conn.client._request_kwargs(call)
        stream.close()

    client = CouchDBClient(settings, transport=mock_transport())
    engine = sa.create_engine(MOCK_URL, connect_args={"client": client})
    sa_conn = engine.connect()

    def sqlalchemy_execute(k: int) -> None:
        sa_conn.execute(POINT_QUERY, {"k": k}).all()

    sqlalchemy_execute(0)

    def per_call(fn: Callable[[int], None]) -> Callable[[int], float]:
        def one_round(_: int) -> float:
            start = time.perf_counter()
            for k in range(calls):
                fn(k)
            return (time.perf_counter() - start) / calls * 1e6

        return one_round

    samples = interleave(
        {
            "dbapi": per_call(dbapi_execute),
            "bare": per_call(bare_request),
            "sqlalchemy": per_call(sqlalchemy_execute),
            "translate": per_call(translate_and_build),
        },
        rounds,
    )
    log = RequestLog().attach(dbapi_conn.client.http)
    for k in range(10):
        dbapi_execute(k)
    RequestLog.detach(dbapi_conn.client.http)
    requests_per_execute = len(log.requests) / 10
    undeclared = requests_per_undeclared_execute(sql)
    sa_conn.close()
    engine.dispose()
    bare.close()
    dbapi_conn.close()
    value, floor, full, translate = (
        median(samples[k]) for k in ("dbapi", "bare", "sqlalchemy", "translate")
    )
    return [
        figure(
            name="client_cost",
            value=value,
            unit="µs",
            baseline=floor,
            goal=100.0,
            goal_on="value",
            direction="lower",
            notes=(
                f"DB-API cursor.execute + fetchall of a cached point query, HTTP faked by "
                f"httpx.MockTransport; {calls} calls x {rounds} rounds; baseline: the same "
                f"request with a bare httpx.Client ({floor:.0f} µs), so the driver's own share "
                f"is {value - floor:.0f} µs; {requests_per_execute:g} request(s) per execute "
                f"({undeclared:g} on a table never declared); "
                f"rounds {_list(samples['dbapi'], 1)} µs"
            ),
            extra={
                "samples": samples["dbapi"],
                "baseline_samples": samples["bare"],
                "requests_per_execute": requests_per_execute,
                "requests_per_execute_undeclared_table": undeclared,
            },
        ),
        figure(
            name="client_cost_translate",
            value=translate,
            unit="µs",
            goal=100.0,
            goal_on="value",
            direction="lower",
            notes=(
                "translate (cached plan) + bind + build the _find call and encode its body, "
                "up to the hand-over to httpx (no HTTP at all): "
                f"rounds {_list(samples['translate'], 1)} µs"
            ),
            extra={"samples": samples["translate"]},
        ),
        figure(
            name="client_cost_sqlalchemy",
            value=full,
            unit="µs",
            baseline=floor,
            notes=(
                "the same through a SQLAlchemy Connection (statement cache on): "
                f"rounds {_list(samples['sqlalchemy'], 1)} µs"
            ),
            extra={"samples": samples["sqlalchemy"]},
        ),
    ]


def requests_per_undeclared_execute(sql: str) -> float:
    """HTTP requests per cached point query on a table that was never declared."""
    from sqlalchemy_couchdb.dbapi import ConnectionSettings, CouchDBClient, connect

    # Another database: what the driver learnt of ``benchdb`` is kept for the process.
    settings = ConnectionSettings.from_url(MOCK_URL.replace("/benchdb", "/undeclareddb"))
    client = CouchDBClient(settings, transport=mock_transport(declared=False))
    with connect(settings, client=client) as conn:
        cursor = conn.cursor()
        cursor.execute(sql, {"k": 0})
        cursor.fetchall()
        log = RequestLog().attach(client.http)
        for k in range(10):
            cursor.execute(sql, {"k": k})
            cursor.fetchall()
    return len(log.requests) / 10
