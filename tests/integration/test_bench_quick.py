"""The benchmark harness keeps working: a quick run at tiny sizes writes every figure.

No timing is asserted: the machines are shared and the numbers noisy. What must hold is that
``python -m bench`` runs against the test server, and that its JSON names every figure with a
number, its table and chart come out, and a missing or broken module is recorded, not fatal.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from bench import harness

SYNC_FIGURES = {
    "sync.bulk_insert",
    "sync.point_query",
    "sync.full_scan",
    "sync.full_scan_peak_memory",
    "sync.full_scan_streamed",
    "sync.full_scan_streamed_peak_memory",
    "sync.full_scan_raw_keyset",
    "sync.client_cost",
    "sync.client_cost_translate",
    "sync.client_cost_sqlalchemy",
}
JUDGED = {
    "sync.bulk_insert",
    "sync.point_query",
    "sync.full_scan",
    "sync.full_scan_streamed",
    "sync.client_cost",
    "sync.client_cost_translate",
}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@pytest.mark.slow
def test_quick_run_writes_every_sync_figure(couchdb_server_url: str, tmp_path: Path) -> None:
    argv = ["--quick", "--only", "sync", "--rows", "300", "--rounds", "1"]
    code = harness.main([*argv, "--server", couchdb_server_url, "--out", str(tmp_path)])

    assert code == 0
    report = json.loads((tmp_path / "results.json").read_text())
    assert [m["status"] for m in report["modules"]] == ["ok"]
    results = {r["name"]: r for r in report["results"]}
    assert set(results) >= SYNC_FIGURES
    for name in SYNC_FIGURES:
        assert _number(results[name]["value"]), (name, results[name])
        assert results[name]["error"] is None
    for name in JUDGED:
        assert results[name]["goal"] is not None
        assert isinstance(results[name]["met"], bool), name
        if results[name]["goal_on"] == "ratio":
            assert _number(results[name]["ratio"]), name
    assert report["server"]["description"]
    assert report["machine"]["cores"] >= 1
    assert (tmp_path / "ratios.png").stat().st_size > 0
    # The request counts the figures rely on: one _find per cached point query.
    assert results["sync.point_query"]["extra"]["requests_per_execute"] == 1
    assert results["sync.client_cost"]["extra"]["requests_per_execute"] == 1


def test_missing_and_failing_modules_are_recorded(tmp_path: Path) -> None:
    (tmp_path / "bench_broken_example.py").write_text(
        "def run(server_url, quick):\n    raise RuntimeError('boom')\n"
    )
    (tmp_path / "bench_good_example.py").write_text(
        "def run(server_url, quick):\n"
        "    return [{'name': 'x.ratio', 'value': 9.0, 'unit': 'ms', 'baseline': 10.0,\n"
        "             'goal': 1.25, 'direction': 'lower'}]\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        missing, none = harness.run_module("gone", "bench.bench_gone", "http://x", True, {})
        broken, nothing = harness.run_module("broken", "bench_broken_example", "", True, {})
        good, results = harness.run_module("good", "bench_good_example", "", True, {"rows": 5})
    finally:
        sys.path.remove(str(tmp_path))

    assert (missing.status, none) == ("missing", [])
    assert (broken.status, nothing) == ("failed", [])
    assert broken.error is not None and "RuntimeError: boom" in broken.error
    assert good.status == "ok"
    (result,) = results
    assert (result.module, result.ratio, result.met) == ("good", 0.9, True)
