"""Bad input gets one clear line and a non-zero exit, never a traceback or a password.

These need no server: each fails before any request. Failures that need a server (401,
a missing database, an unreachable target) are in the integration tests.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from couchdb_replicator.cli import main
from couchdb_replicator.logformat import JsonFormatter


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--source", "couchdb://u:s3cret@h:5984/Bad"], "bad source URL: invalid database name"),
        (["--source", "couchdb://u:s3cret@h:notaport/db"], "bad source URL: bad port"),
        (["--source", "ftp://u:s3cret@h/db"], "bad source URL: unknown URL scheme"),
        (
            ["--source", "couchdb://u:s3cret@h:5984/db", "--target", "oracle://u:s3cret@h/x"],
            "unsupported target 'oracle'",
        ),
        (
            ["--source", "couchdb://u:s3cret@h:5984/db", "--metadata", "no_such_module:md"],
            "cannot import module 'no_such_module'",
        ),
        (
            ["--source", "couchdb://u:s3cret@h:5984/db", "--metadata", "json:dumps"],
            "not a SQLAlchemy MetaData",
        ),
        (
            ["--source", "couchdb://u:s3cret@h:5984/db", "--metadata", "json"],
            "must look like MODULE:ATTR",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], words: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["run", "--once", "--target", f"sqlite:///{tmp_path}/x.db", *args]
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("couchdb-replicator: error: ")
    assert words in lines[-1]
    assert "Traceback" not in result.output
    assert "s3cret" not in result.output


def test_status_with_bad_source_url() -> None:
    result = CliRunner().invoke(main, ["status", "--source", "nonsense"])
    assert result.exit_code == 2
    assert "bad source URL" in result.output


def test_usage_errors_are_clicks_exit_2() -> None:
    result = CliRunner().invoke(main, ["run", "--source", "couchdb://h/db", "--batch-size", "0"])
    assert result.exit_code == 2
    result = CliRunner().invoke(main, ["run", "--source", "couchdb://h/db", "--feed", "magic"])
    assert result.exit_code == 2


def test_source_from_the_environment_keeps_it_out_of_argv(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["run", "--once", "--target", f"sqlite:///{tmp_path}/x.db"],
        env={"COUCHDB_REPLICATOR_SOURCE": "couchdb://u:s3cret@h:5984/Bad"},
    )
    assert result.exit_code == 2 and "invalid database name" in result.output


def test_json_log_lines() -> None:
    import json

    record = logging.LogRecord("x.y", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "warning" and entry["logger"] == "x.y"
    assert entry["message"] == "hello you" and entry["time"].endswith("+00:00")
