"""The benchmark harness: one command, every figure against its limit, a table, JSON and a chart.

``python -m bench [--quick] [--only NAME]`` (or ``make bench``) finds a server (``--server``,
else ``COUCHDB_URL``, else the local test server), runs each benchmark module's
``run(server_url, quick) -> list[dict]``, and writes ``bench/out/results.json`` and
``bench/out/ratios.png``. A module that is missing or fails is recorded as such; the others
still run.

The tools every module may use live here too: :func:`interleave` (rounds that alternate the
order of the variants, so a noisy neighbour hurts all of them alike), :func:`median`,
:func:`peak_memory` (tracemalloc), :class:`Result` (one figure) and :class:`Server` (a raw
httpx client and scratch databases on the server under test).

Timings on a shared machine are noisy: figures are medians of interleaved rounds, and the
ratio to a baseline measured in the same run is what to read, not the absolute value.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import inspect
import json
import math
import os
import platform
import secrets
import statistics
import subprocess
import sys
import time
import traceback
import tracemalloc
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import httpx

__all__ = [
    "MODULES",
    "Result",
    "Server",
    "describe_error",
    "interleave",
    "main",
    "median",
    "paired_ratio",
    "peak_memory",
    "run_module",
]

T = TypeVar("T")

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DEFAULT_OUT = BENCH_DIR / "out"

#: Benchmark modules by the name ``--only`` takes, in the order they run.
MODULES: dict[str, str] = {
    "sync": "bench.bench_sync",
    "async": "bench.bench_async",
    "replicator": "bench.bench_replicator",
    "verify": "bench.bench_verify",
}

Direction = Literal["higher", "lower"]


# -- one figure ------------------------------------------------------------------------------


@dataclass
class Result:
    """One figure: its value, the baseline it is compared with, and the goal.

    ``goal_on`` says what the goal applies to: the ``ratio`` (value / baseline, the usual
    case) or the ``value`` itself (e.g. a cost in microseconds with no baseline).
    ``direction`` is ``higher`` when bigger is better (met when >= goal) and ``lower``
    when smaller is better (met when <= goal). ``met`` is None for figures without a goal
    and for figures that could not be measured (``error``).
    """

    name: str
    value: float | None
    unit: str = ""
    baseline: float | None = None
    ratio: float | None = None
    goal: float | None = None
    direction: Direction = "higher"
    goal_on: Literal["ratio", "value"] = "ratio"
    met: bool | None = None
    notes: str = ""
    module: str = ""
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ratio is None and _number(self.value) and _number(self.baseline):
            assert self.value is not None and self.baseline is not None
            self.ratio = self.value / self.baseline if self.baseline else None
        if self.met is None:
            self.met = self.judge()

    def judge(self) -> bool | None:
        """Whether the goal is met; None when there is no goal or nothing to compare."""
        measured = self.ratio if self.goal_on == "ratio" else self.value
        if self.goal is None or not _number(measured):
            return None
        assert measured is not None
        return measured >= self.goal if self.direction == "higher" else measured <= self.goal

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], module: str) -> Result:
        """A record handed back by a module; unknown keys go to ``extra``."""
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = dict(data.get("extra") or {})
        extra.update({k: v for k, v in data.items() if k not in known and k != "extra"})
        kwargs.setdefault("value", None)
        kwargs["module"] = kwargs.get("module") or module
        if "name" not in kwargs:
            raise ValueError(f"a result of module {module!r} has no name: {dict(data)!r}")
        if kwargs.get("direction") not in (None, "higher", "lower"):
            raise ValueError(f"{kwargs['name']}: direction must be 'higher' or 'lower'")
        return cls(**kwargs, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# -- measuring -------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def paired_ratio(values: Sequence[float], baselines: Sequence[float]) -> float:
    """Median of the per-round ratios of samples from :func:`interleave`.

    Each round's two samples were taken moments apart, so their ratio cancels the load
    of that moment; the ratio of two medians can pair a quiet round with a busy one.
    """
    return median([v / b for v, b in zip(values, baselines, strict=True) if b])


def interleave(
    variants: Mapping[str, Callable[[int], T]],
    rounds: int,
    *,
    between: Callable[[int], None] | None = None,
) -> dict[str, list[T]]:
    """Run every variant once per round, rotating which goes first; samples by variant.

    Each variant is called with the round number and returns its measurement. Rotating the
    order (AB, BA for two; ABC, BCA, CAB for three) means a slow spell on the shared machine
    lands on every variant in turn instead of always on the same one. ``between`` runs after
    each round (cleanup), outside any timing.
    """
    names = list(variants)
    samples: dict[str, list[T]] = {name: [] for name in names}
    for round_no in range(rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(variants[name](round_no))
        if between is not None:
            between(round_no)
    return samples


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Seconds ``fn`` took (``perf_counter``), and what it returned."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def peak_memory(fn: Callable[[], T]) -> tuple[int, T]:
    """Peak bytes Python allocated while ``fn`` ran (tracemalloc), and what it returned.

    tracemalloc slows allocation-heavy code down several times: measure memory in a run
    of its own, never in a timed one.
    """
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    try:
        value = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return max(0, peak - base), value


# -- the server under test -------------------------------------------------------------------


class Server:
    """The server under test: a raw httpx client on it and scratch databases.

    ``url`` is a server URL with admin credentials and no database
    (``http://admin:pw@127.0.0.1:5984``), the form ``COUCHDB_URL`` takes.
    """

    def __init__(self, url: str, *, timeout: float = 600.0) -> None:
        self.url = url.rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        auth = None
        if parts.username is not None:
            auth = httpx.BasicAuth(
                urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")
            )
        # Credentials go to Basic auth, not the base URL: httpx quotes request URLs in errors.
        self.base_url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        self.http = httpx.Client(base_url=self.base_url, auth=auth, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = self.http.get("/").json()
        return info

    def dialect_url(self, database: str) -> str:
        """``couchdb://user:pass@host:port/<database>`` for this server."""
        parts = urllib.parse.urlsplit(self.url)
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{parts.hostname}:{port}" if userinfo else f"{parts.hostname}:{port}"
        return f"couchdb://{netloc}/{database}" + ("?use_ssl=true" if https else "")

    def create_database(self, prefix: str = "bench") -> str:
        # CouchDB names: lowercase, starting with a letter.
        name = f"{prefix}_{secrets.token_hex(5)}"
        response = self.http.put(f"/{name}")
        if response.status_code not in (201, 202):
            raise RuntimeError(f"cannot create database {name}: {response.status_code}")
        return name

    def drop_database(self, name: str) -> None:
        self.http.delete(f"/{name}")

    @contextlib.contextmanager
    def database(self, prefix: str = "bench") -> Iterator[str]:
        name = self.create_database(prefix)
        try:
            yield name
        finally:
            self.drop_database(name)


@contextlib.contextmanager
def server_url(explicit: str | None) -> Iterator[str]:
    """``--server``, else ``COUCHDB_URL``, else a local test server started for the run."""
    url = explicit or os.environ.get("COUCHDB_URL")
    if url:
        yield url.rstrip("/")
        return
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import testserver

    with testserver.start_server() as server:
        yield server.url


def redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


# -- the run ---------------------------------------------------------------------------------


@dataclass
class ModuleRun:
    """How one benchmark module went: ``ok``, ``missing`` or ``failed``, and how long."""

    name: str
    status: str
    seconds: float = 0.0
    error: str | None = None


def run_module(
    name: str, module_path: str, url: str, quick: bool, options: Mapping[str, Any]
) -> tuple[ModuleRun, list[Result]]:
    """Import a module and call its ``run(server_url, quick)``; never raises.

    ``options`` (e.g. ``rows``, ``rounds``) are passed only to a ``run`` that declares them.
    """
    try:
        module = importlib.import_module(module_path)
    except ModuleNotFoundError as err:
        if err.name in (module_path, module_path.rpartition(".")[0]):
            return ModuleRun(name, "missing", error=f"{module_path} is not there yet"), []
        return ModuleRun(name, "failed", error=describe_error(err)), []
    except Exception as err:
        return ModuleRun(name, "failed", error=describe_error(err)), []
    run = getattr(module, "run", None)
    if not callable(run):
        return ModuleRun(name, "missing", error=f"{module_path} has no run(server_url, quick)"), []
    accepted = inspect.signature(run).parameters
    kwargs = {k: v for k, v in options.items() if v is not None and k in accepted}
    start = time.perf_counter()
    try:
        records = run(url, quick, **kwargs)
        results = [Result.from_dict(r, name) for r in records]
    except Exception as err:
        traceback.print_exc()
        return ModuleRun(name, "failed", time.perf_counter() - start, describe_error(err)), []
    return ModuleRun(name, "ok", time.perf_counter() - start), results


def describe_error(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(err).__name__}: {err}{where}"


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024**2, 1)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": memory_gib,
        "load_average": [round(x, 2) for x in load] if load else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def software_versions() -> dict[str, str | None]:
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for package in ("sqlalchemy-couchdb", "sqlalchemy", "httpx", "sqlglot"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        versions["git"] = commit or None
    return versions


def describe_server(info: Mapping[str, Any]) -> str:
    if "couchdb" in info:
        return f"Apache CouchDB {info.get('version', '?')}"
    if "express-pouchdb" in info:
        return f"PouchDB Server (express-pouchdb {info.get('version', '?')})"
    return json.dumps(dict(info))[:80]


# -- output ----------------------------------------------------------------------------------


def _fmt(value: Any, unit: str = "") -> str:
    if not _number(value):
        return "—"
    number = float(value)
    if abs(number) >= 1000:
        text = f"{number:,.0f}"
    elif abs(number) >= 10:
        text = f"{number:.1f}"
    else:
        text = f"{number:.3g}"
    return f"{text} {unit}".strip()


def _goal_text(result: Result) -> str:
    if result.goal is None:
        return ""
    op = ">=" if result.direction == "higher" else "<="
    what = "ratio" if result.goal_on == "ratio" else result.unit
    return f"{what} {op} {result.goal:g}"


def print_table(results: Sequence[Result], modules: Sequence[ModuleRun], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for column, justify in (
        ("figure", "left"),
        ("value", "right"),
        ("baseline", "right"),
        ("ratio", "right"),
        ("goal", "left"),
        ("met?", "center"),
    ):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for r in results:
        met = {True: "[green]yes[/]", False: "[red]NO[/]", None: ""}[r.met]
        if r.error:
            met = "[red]error[/]"
        table.add_row(
            r.name,
            _fmt(r.value, r.unit),
            _fmt(r.baseline, r.unit),
            f"{r.ratio:.2f}" if _number(r.ratio) else "—",
            _goal_text(r),
            met,
        )
    console = Console(width=max(Console().width, 132))
    console.print(table)
    for r in results:
        if r.notes or r.error:
            console.print(f"[bold]{r.name}[/]: {r.error or ''}{r.notes}", soft_wrap=True)
    for m in modules:
        line = f"module {m.name}: {m.status} ({m.seconds:.0f} s)"
        console.print(line + (f" — {m.error}" if m.error else ""), soft_wrap=True)


def draw_chart(results: Sequence[Result], path: Path, title: str) -> Path | None:
    """One small panel per figure with a goal: the measured ratio (or value) and the goal."""
    judged = [r for r in results if r.goal is not None]
    if not judged:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(4, len(judged))
    rows = math.ceil(len(judged) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.8 * rows), squeeze=False)
    for ax, r in zip(axes.flat, judged, strict=False):
        measured = r.ratio if r.goal_on == "ratio" else r.value
        assert r.goal is not None
        colour = {True: "tab:green", False: "tab:red", None: "tab:gray"}[r.met]
        height = float(measured) if measured is not None and _number(measured) else 0.0
        ax.bar([0], [height], color=colour, width=0.5)
        ax.axhline(r.goal, color="black", linestyle="--", linewidth=1)
        op = ">=" if r.direction == "higher" else "<="
        ax.text(0.32, r.goal, f" goal {op} {r.goal:g}", va="bottom", fontsize=7)
        label = "n/a" if not _number(measured) else f"{height:.3g}"
        ax.text(0, height, label, ha="center", va="bottom", fontsize=9)
        ax.set_xticks([])
        ax.set_xlim(-0.6, 1.2)
        top = max(height, r.goal) * 1.3 or 1.0
        ax.set_ylim(0, top)
        ax.set_ylabel("ratio" if r.goal_on == "ratio" else r.unit, fontsize=8)
        ax.set_title(r.name, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(judged) :]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- the command -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks against raw HTTP on the same server (issue 7).",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (CI): ~10k rows")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(MODULES),
        help="run only this module (repeatable); default: all",
    )
    parser.add_argument("--server", help="server URL with credentials (default: COUCHDB_URL)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--rows", type=int, help="override the row count (modules that take it)")
    parser.add_argument("--rounds", type=int, help="override the rounds (modules that take it)")
    parser.add_argument(
        "--figure",
        action="append",
        dest="figures",
        help="only this figure of the selected modules (repeatable; modules that take it)",
    )
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; exit 0 when every module ran (misses are results, not errors)."""
    args = parse_args(argv)
    selected = args.only or list(MODULES)
    options = {"rows": args.rows, "rounds": args.rounds, "figures": args.figures}
    started = dt.datetime.now(dt.UTC)
    modules: list[ModuleRun] = []
    results: list[Result] = []
    with server_url(args.server) as url:
        with Server(url) as server:
            info = server.info()
        for name in selected:
            print(f"== {name}", flush=True)
            outcome, records = run_module(name, MODULES[name], url, args.quick, options)
            modules.append(outcome)
            results.extend(records)
    report = {
        "date": started.isoformat(timespec="seconds"),
        "seconds": round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1),
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "quick": args.quick,
        "server": {"description": describe_server(info), "info": info, "url": redact(url)},
        "machine": machine_info(),
        "versions": software_versions(),
        "modules": [asdict(m) for m in modules],
        "results": [r.to_dict() for r in results],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    json_path = args.out / "results.json"
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    title = (
        f"{describe_server(info)} · {report['machine']['cores']} cores · "
        f"{report['date']}{' · quick' if args.quick else ''}"
    )
    print_table(results, modules, title)
    chart = None if args.no_chart else draw_chart(results, args.out / "ratios.png", title)
    print(f"wrote {json_path}" + (f" and {chart}" if chart else ""))
    return 0 if all(m.status != "failed" for m in modules) else 1
