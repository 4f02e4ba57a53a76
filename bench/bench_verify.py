"""Verify figures: ``couchdb-replicator verify`` of a SQLite copy of N documents against the
least work any comparison must do, and its memory at two database sizes.

N is 100,000 documents (``--quick``: 10,000; ``--rows`` overrides), of three types, copied
into a SQLite file by the replicator before anything is timed. In interleaved rounds
(medians):

- ``verify.default``: ``verify`` (ids and revisions) against the raw read of both sides'
  ``(id, rev)`` pairs — ``GET _all_docs`` paged by 1,000 through httpx and ``json.loads``,
  ``SELECT id, rev`` of every table through ``sqlite3`` — compared as two dicts in memory
  (which is what a naive check does, and why its memory grows with the database).
  Seconds; goal ratio <= 2.
- ``verify.deep``: ``verify --deep`` (every document and row read and compared) against
  the raw read of ``_all_docs?include_docs=true`` and ``SELECT *``. Seconds; goal <= 3.
- ``verify.peak_memory`` / ``verify.deep_peak_memory``: peak Python memory (tracemalloc,
  in runs of their own) of a check of N documents against a check of N/10: memory must not
  grow with the database. Goal ratio <= 1.5 (a check that held every id would be ~10).
- ``verify.repair``: ``verify --repair`` after 1% of the rows were deleted from the copy,
  against a ``verify`` of the equal copy. Seconds; no goal (the repair's own cost, shown).

Everything runs with the collector tuned as the CLI tunes it (``tune_garbage_collector``).
Run it through the harness: ``python -m bench --only verify [--quick]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sqlite3
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.harness import Server, describe_error, interleave, median, peak_memory, timed
from couchdb_replicator import replicate_async
from couchdb_replicator.runner import tune_garbage_collector
from couchdb_replicator.verify import verify_async

KINDS = ("customer", "order", "product")
PAGE = 1000  # verify's default chunk
MIB = 1024 * 1024


def document(i: int) -> dict[str, Any]:
    kind = KINDS[i % len(KINDS)]
    return {
        "_id": f"{kind}:{i:08d}",
        "type": kind,
        "n": i,
        "name": f"name {i}",
        "score": i / 3,
        "active": i % 2 == 0,
        "tags": ["a", str(i % 10)],
    }


@contextlib.contextmanager
def replicated(server: Server, n: int) -> Iterator[tuple[str, str, Path]]:
    """A database of ``n`` documents and its SQLite copy: (source URL, target URL, file)."""
    name = server.create_database("bench_verify")
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        try:
            docs = [document(i) for i in range(n)]
            for start in range(0, n, 2000):
                response = server.http.post(
                    f"/{name}/_bulk_docs", json={"docs": docs[start : start + 2000]}
                )
                response.raise_for_status()
            del docs
            path = Path(tmp) / "copy.db"
            source, target = server.dialect_url(name), f"sqlite:///{path}"
            asyncio.run(replicate_async(source, target, batch_size=2000))
            yield source, target, path
        finally:
            server.drop_database(name)


def verify(source: str, target: str, **options: Any) -> Any:
    report = asyncio.run(verify_async(source, target, **options))
    if not report.ok:
        raise AssertionError(f"verify found drift in an equal copy: {report.lines()[-1]}")
    return report


def raw_couch_pairs(server: Server, database: str, include_docs: bool) -> dict[str, Any]:
    """Every live document's rev (or body), paged the way verify pages ``_all_docs``."""
    out: dict[str, Any] = {}
    start: str | None = None
    while True:
        params: dict[str, Any] = {"limit": PAGE + 1}
        if include_docs:
            params["include_docs"] = "true"
        if start is not None:
            params["startkey"] = json.dumps(start)
        rows = json.loads(server.http.get(f"/{database}/_all_docs", params=params).content)["rows"]
        for r in rows[:PAGE]:
            out[r["id"]] = r["doc"] if include_docs else r["value"]["rev"]
        if len(rows) <= PAGE:
            return out
        start = rows[PAGE]["id"]


def raw_copy_pairs(path: Path, whole_rows: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with contextlib.closing(sqlite3.connect(path)) as conn:
        for kind in KINDS:
            columns = "*" if whole_rows else "id, rev"
            for row in conn.execute(f'SELECT {columns} FROM "{kind}"'):
                out[row[0]] = row if whole_rows else row[1]
    return out


def raw_compare(server: Server, database: str, path: Path, deep: bool) -> bool:
    couch = raw_couch_pairs(server, database, deep)
    copy = raw_copy_pairs(path, deep)
    if deep:
        return couch.keys() == copy.keys()
    return couch == copy


def run(
    server_url: str, quick: bool, *, rows: int | None = None, rounds: int | None = None
) -> list[dict[str, Any]]:
    n = rows or (10_000 if quick else 100_000)
    # At least a few pages (verify collects garbage every 5): one page proves nothing.
    small = max(n // 10, 5 * PAGE)
    repeat = rounds or (2 if quick else 3)
    print(f"   sizes: n={n}, small={small}, rounds={repeat}", flush=True)
    results: list[dict[str, Any]] = []
    # As `couchdb-replicator verify` runs: the CLI tunes the collector (the baselines run
    # under the same settings); the harness process gets its own back afterwards.
    thresholds = gc.get_threshold()
    tune_garbage_collector()
    with Server(server_url) as server:
        try:
            with replicated(server, n) as (source, target, path):
                database = source.rsplit("/", 1)[1].split("?")[0]
                results.extend(
                    attempt(
                        "timings",
                        lambda: timings(server, database, source, target, path, n, repeat),
                    )
                )
                big = attempt("memory", lambda: memory(source, target))
                with replicated(server, small) as (small_source, small_target, _):
                    little = attempt("memory", lambda: memory(small_source, small_target))
                results.extend(memory_figures(big, little, n, small))
                results.extend(attempt("repair", lambda: repair(source, target, path, n, repeat)))
        except Exception as err:
            traceback.print_exc()
            results.append(figure(name="setup", value=None, error=describe_error(err)))
        finally:
            gc.unfreeze()
            gc.set_threshold(*thresholds)
    return results


def attempt(name: str, step: Callable[[], Any]) -> Any:
    try:
        return step()
    except Exception as err:
        traceback.print_exc()
        return [figure(name=name, value=None, error=describe_error(err))]


def figure(**fields: Any) -> dict[str, Any]:
    fields["name"] = "verify." + fields["name"]
    return fields


def timings(
    server: Server, database: str, source: str, target: str, path: Path, n: int, repeat: int
) -> list[dict[str, Any]]:
    verify(source, target)  # warm: imports, the server's first read of the database
    out = []
    for deep, goal in ((False, 2.0), (True, 3.0)):

        def checked(_: int, deep: bool = deep) -> float:
            return timed(lambda: verify(source, target, deep=deep))[0]

        def raw(_: int, deep: bool = deep) -> float:
            return timed(lambda: raw_compare(server, database, path, deep))[0]

        samples = interleave({"verify": checked, "raw": raw}, repeat)
        value, baseline = median(samples["verify"]), median(samples["raw"])
        what = "every value" if deep else "ids and revisions"
        out.append(
            figure(
                name="deep" if deep else "default",
                value=round(value, 3),
                unit="s",
                baseline=round(baseline, 3),
                goal=goal,
                direction="lower",
                notes=f"verify of {n:,} documents ({what}; {n / value:,.0f} docs/s) vs the raw "
                "read of both sides compared in memory",
                extra={"samples": samples, "documents": n},
            )
        )
    return out


def memory(source: str, target: str) -> dict[str, int]:
    verify(source, target)  # warm caches outside the measurement
    peaks = {}
    for deep in (False, True):

        def checked(deep: bool = deep) -> Any:
            return verify(source, target, deep=deep)

        peaks["deep" if deep else "default"] = peak_memory(checked)[0]
    return peaks


def memory_figures(big: Any, little: Any, n: int, small: int) -> list[dict[str, Any]]:
    if isinstance(big, list):
        return big
    if isinstance(little, list):
        return little
    out = []
    for kind, name in (("default", "peak_memory"), ("deep", "deep_peak_memory")):
        out.append(
            figure(
                name=name,
                value=round(big[kind] / MIB, 2),
                unit="MiB",
                baseline=round(little[kind] / MIB, 2),
                goal=1.5,
                direction="lower",
                notes=f"peak Python memory of verify{' --deep' if kind == 'deep' else ''} of "
                f"{n:,} documents vs {small:,}: flat when the ratio is ~1",
                extra={"documents": n, "baseline_documents": small},
            )
        )
    return out


def repair(source: str, target: str, path: Path, n: int, repeat: int) -> list[dict[str, Any]]:
    doomed = max(n // 100, 1)

    def damage() -> None:
        with contextlib.closing(sqlite3.connect(path)) as conn, conn:
            for kind in KINDS:
                conn.execute(
                    f'DELETE FROM "{kind}" WHERE id IN '
                    f'(SELECT id FROM "{kind}" ORDER BY id LIMIT {doomed // len(KINDS) + 1})'
                )

    def repaired(_: int) -> float:
        damage()
        seconds, report = timed(lambda: verify(source, target, repair=True))
        if sum(report.repaired_counts().values()) < doomed:
            raise AssertionError(f"repaired {report.repaired_counts()}, expected {doomed}")
        return seconds

    samples = interleave(
        {"repair": repaired, "verify": lambda _: timed(lambda: verify(source, target))[0]},
        repeat,
    )
    value, baseline = median(samples["repair"]), median(samples["verify"])
    return [
        figure(
            name="repair",
            value=round(value, 3),
            unit="s",
            baseline=round(baseline, 3),
            direction="lower",
            notes=f"verify --repair of {n:,} documents with ~{doomed:,} rows deleted from the "
            "copy vs verify of the equal copy",
            extra={"samples": samples},
        )
    ]
