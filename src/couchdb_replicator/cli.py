"""``couchdb-replicator``: ``run`` follows CouchDB's ``_changes`` into a relational copy,
``status`` says where the copy stands, ``verify`` compares it with CouchDB (and repairs it).

Exit status: 0 done (``--once`` caught up, or stopped by SIGTERM/SIGINT after committing;
``verify``: the copy equals CouchDB, or was repaired); 1 the source or target failed in a
way retrying cannot fix (bad credentials, missing database, unreachable target at start);
2 bad input (a malformed URL, an unknown ``--metadata`` module, a bad option); 3
``verify`` found rows that differ from CouchDB (and did not repair them all). Errors are
one line on stderr, without traceback (``--log-level debug`` logs it) and without
credentials. URLs may come from the environment (``COUCHDB_REPLICATOR_SOURCE``,
``COUCHDB_REPLICATOR_TARGET``) to keep passwords out of the process list.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console

from sqlalchemy_couchdb.dbapi import ConnectionSettings
from sqlalchemy_couchdb.dbapi.exceptions import InvalidConfiguration

from .errors import ConfigurationError, ReplicatorError
from .feed import FEED_MODES
from .logformat import configure_logging
from .metrics import Metrics
from .progress import LogProgress, ProgressReporter, RichProgress
from .runner import Replicator, RunOptions, RunSummary, tune_garbage_collector
from .schema import InferredSchema, MetadataSchema, Schema, load_metadata
from .status import gather_status
from .targets import DEFAULT_TARGET, create_target_engine

__all__ = ["main"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_SOURCE_HELP = "CouchDB database: couchdb://user:pass@host:5984/db (?use_ssl=true for https)"
_TARGET_HELP = "SQLAlchemy URL of the copy: sqlite:///file.db, postgresql://…, mysql://…"


def _source_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--source",
        envvar="COUCHDB_REPLICATOR_SOURCE",
        required=True,
        metavar="URL",
        help=_SOURCE_HELP,
    )(f)


def _target_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--target",
        envvar="COUCHDB_REPLICATOR_TARGET",
        default=DEFAULT_TARGET,
        show_default=True,
        metavar="URL",
        help=_TARGET_HELP,
    )(f)


def _logging_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--log-level",
        type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
        default="info",
        show_default=True,
    )(f)
    return click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Log lines as text or as JSON objects (one per line).",
    )(f)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="sqlalchemy-couchdb")
def main() -> None:
    """Keep a relational copy of a CouchDB database, fed from its _changes feed."""


@main.command()
@_source_option
@_target_option
@click.option(
    "--metadata",
    metavar="MODULE:ATTR",
    help="SQLAlchemy MetaData defining the copy's tables (created when missing); "
    "without it tables and columns are inferred from the documents.",
)
@click.option("--once", is_flag=True, help="Catch up to the current update_seq, then exit 0.")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="Changes per transaction at most.",
)
@click.option(
    "--batch-delay",
    type=click.FloatRange(0.0, 60.0),
    default=0.25,
    show_default=True,
    metavar="SECONDS",
    help="A batch commits at most this long after its first change.",
)
@click.option(
    "--feed",
    type=click.Choice(FEED_MODES),
    default="auto",
    show_default=True,
    help="How to follow: auto tries eventsource, then continuous.",
)
@click.option(
    "--heartbeat",
    type=click.FloatRange(0.5, 300.0),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="Heartbeat asked of CouchDB; three missed ones reconnect.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve Prometheus metrics on this port.",
)
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar during a backfill (default: when stderr is a terminal).",
)
@click.option(
    "--verify-every",
    metavar="DURATION",
    help="Once caught up, compare the copy with CouchDB every DURATION (30s, 5m, 1h) and "
    "export the drift as metrics.",
)
@click.option("--repair", is_flag=True, help="With --verify-every: repair what it finds.")
@_logging_options
def run(
    source: str,
    target: str,
    metadata: str | None,
    once: bool,
    batch_size: int,
    batch_delay: float,
    feed: str,
    heartbeat: float,
    metrics_port: int | None,
    metrics_host: str,
    progress: bool | None,
    verify_every: str | None,
    repair: bool,
    log_format: str,
    log_level: str,
) -> None:
    """Follow the source's _changes feed into the target."""
    every = _verify_interval(verify_every, repair, once)
    console = Console(stderr=True)
    show_bar = progress if progress is not None else console.is_terminal
    show_bar = show_bar and log_format == "text"
    handler: logging.Handler | None = None
    if show_bar:
        from rich.logging import RichHandler

        handler = RichHandler(console=console, show_path=False)
    configure_logging(log_format, log_level, handler=handler)
    options = RunOptions(
        once=once,
        batch_size=batch_size,
        batch_delay=batch_delay,
        feed=feed,  # type: ignore[arg-type]
        heartbeat=heartbeat,
        count_backlog=show_bar,
        verify_every=every,
        verify_repair=repair,
    )
    reporter: ProgressReporter = RichProgress(console) if show_bar else LogProgress()

    async def go() -> RunSummary:
        settings = _source_settings(source)
        schema: Schema = MetadataSchema(load_metadata(metadata)) if metadata else InferredSchema()
        copy = create_target_engine(target, replicating=True)
        metrics = Metrics() if metrics_port else None
        try:
            if metrics is not None and metrics_port is not None:
                try:
                    metrics.serve(metrics_port, metrics_host)
                except OSError as exc:
                    raise ConfigurationError(
                        f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc.strerror}"
                    ) from None
            replicator = Replicator(
                settings, copy, schema, options, reporter=reporter, metrics=metrics
            )
            tune_garbage_collector()
            task = asyncio.current_task()
            assert task is not None
            replicator.install_signal_handlers(task)
            return await replicator.run()
        finally:
            await copy.dispose()
            if metrics is not None:
                metrics.close()

    summary = _run_async(go)
    if summary.stopped:
        log.info("stopped; checkpoint %s committed", summary.seq)
    if once:
        c = summary.counts
        done = "stopped before catching up" if summary.stopped else "caught up"
        click.echo(
            f"{done}: {c.applied} changes applied ({c.upserted} upserted, {c.deleted} "
            f"deleted), {c.skipped_untyped + c.skipped_unmapped} skipped, "
            f"{c.dead_lettered} dead letters, in {summary.seconds:.1f} s -> {summary.target}"
        )


@main.command()
@_source_option
@_target_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_logging_options
def status(source: str, target: str, as_json: bool, log_format: str, log_level: str) -> None:
    """Print the checkpoint, update_seq, backlog, lag, counts and dead letters."""
    configure_logging(log_format, log_level)

    async def go() -> Any:
        settings = _source_settings(source)
        copy = create_target_engine(target)
        try:
            return await gather_status(settings, copy)
        finally:
            await copy.dispose()

    result = _run_async(go)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, default=str))
    else:
        result.render(Console())


@main.command()
@_source_option
@_target_option
@click.option(
    "--metadata",
    metavar="MODULE:ATTR",
    help="The MetaData the replicator runs with (--metadata of run), if any.",
)
@click.option("--repair", is_flag=True, help="Make the copy equal to CouchDB (CouchDB wins).")
@click.option(
    "--deep",
    is_flag=True,
    help="Compare every row's values too (reads every document); by default rows whose "
    "revision matches CouchDB's are taken as right.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--chunk-size",
    type=click.IntRange(10, 10_000),
    default=1000,
    show_default=True,
    help="Ids per request to CouchDB and per query on the copy.",
)
@click.option(
    "--show",
    type=click.IntRange(0, 10_000),
    default=10,
    show_default=True,
    help="Ids listed per table and kind of drift.",
)
@_logging_options
def verify(
    source: str,
    target: str,
    metadata: str | None,
    repair: bool,
    deep: bool,
    as_json: bool,
    chunk_size: int,
    show: int,
    log_format: str,
    log_level: str,
) -> None:
    """Compare the copy with CouchDB: rows missing, extra, stale (older rev) or drifted.

    Exit 0 when equal (or, with --repair, made equal), 3 when rows differ.
    """
    from .verify import Verifier, VerifyOptions

    configure_logging(log_format, log_level)
    tune_garbage_collector()
    options = VerifyOptions(deep=deep, repair=repair, chunk_size=chunk_size, show=show)

    async def go() -> Any:
        settings = _source_settings(source)
        schema: Schema = MetadataSchema(load_metadata(metadata)) if metadata else InferredSchema()
        copy = create_target_engine(target)
        try:
            return await Verifier(settings, copy, schema, options).run()
        finally:
            await copy.dispose()

    report = _run_async(go)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        for line in report.lines():
            click.echo(line)
    sys.exit(report.exit_code)


def _verify_interval(text: str | None, repair: bool, once: bool) -> float | None:
    from .verify import parse_duration

    if text is None:
        if repair:
            raise click.UsageError("--repair needs --verify-every (or use `verify --repair`)")
        return None
    if once:
        raise click.UsageError("--verify-every needs the daemon: it does not go with --once")
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--verify-every") from None


def _source_settings(url: str) -> ConnectionSettings:
    try:
        settings = ConnectionSettings.from_url(url)
    except InvalidConfiguration as exc:
        raise ConfigurationError(f"bad source URL: {exc}") from None
    if settings.database is None:  # pragma: no cover - from_url requires one
        raise ConfigurationError("the source URL must name a database")
    return settings


def _run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run the command's coroutine; turn failures into one line and an exit status."""

    async def runner() -> T:
        return await make()

    try:
        return asyncio.run(runner())
    except ReplicatorError as exc:
        log.debug("failed", exc_info=True)
        _fail(str(exc), exc.exit_code)
    except (KeyboardInterrupt, asyncio.CancelledError):
        _fail("interrupted before the batch in hand was committed; it is replayed next run", 130)
    except Exception as exc:
        log.debug("internal error", exc_info=True)
        _fail(f"internal error: {type(exc).__name__}: {exc} (--log-level debug shows more)", 1)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"couchdb-replicator: error: {message}", err=True)
    sys.exit(code)
