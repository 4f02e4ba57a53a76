"""Command line for the test server: ``python -m testserver install|start|stop|run``.

``start`` leaves a server running in the background and prints its URL on stdout, so a shell
can do ``export COUCHDB_URL=$(python -m testserver start)``; ``stop`` ends it by the PID
recorded in the state file. ``run`` serves in the foreground until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from testserver import (
    DEFAULT_PASSWORD,
    DEFAULT_USER,
    ROOT,
    TestServerError,
    ensure_installed,
    start_server,
)

# Under the repository's git-ignored .testserver/, next to the server's working directory.
DEFAULT_STATE_DIR = ROOT.parent / ".testserver"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m testserver", description="CouchDB-compatible test server (PouchDB)."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="npm ci --ignore-scripts, when node_modules is stale")
    for name, text in (
        ("start", "start in the background and print the URL"),
        ("run", "serve in the foreground until interrupted"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("--port", type=int, help="default: a free port")
        command.add_argument("--data-dir", type=Path, help="store on disk here (default: memory)")
        command.add_argument("--user", default=DEFAULT_USER)
        command.add_argument("--password", default=DEFAULT_PASSWORD)
        command.add_argument("--log-level", default="info", help="debug|info|warning|error|none")
        command.add_argument(
            "--no-eventsource",
            dest="eventsource",
            action="store_false",
            help="answer feed=eventsource with a normal feed, as PouchDB Server does",
        )
    stop = commands.add_parser("stop", help="stop the server that `start` left running")
    stop.add_argument("--timeout", type=float, default=10.0)
    for command in commands.choices.values():
        command.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    return parser


def _start(args: argparse.Namespace, *, background: bool) -> int:
    state_file = args.state_dir / "state.json"
    if background and state_file.exists():
        state = json.loads(state_file.read_text())
        if _is_testserver(state["pid"]):
            print(f"test server pid {state['pid']} is running; stop it first", file=sys.stderr)
            return 1
    server = start_server(
        args.data_dir,
        port=args.port,
        user=args.user,
        password=args.password,
        workdir=args.state_dir / "work" if background else None,
        log_level=args.log_level,
        follow_parent=not background,
        eventsource=args.eventsource,
    )
    if background:
        state = {"pid": server.pid, "url": server.url, "workdir": str(server.workdir)}
        state_file.write_text(json.dumps(state) + "\n")
        print(f"test server pid {server.pid}, logs in {server.workdir}", file=sys.stderr)
        print(server.url)
        return 0
    print(f"test server at {server.url} (pid {server.pid}); Ctrl-C stops it", file=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while server.is_running():
            time.sleep(0.5)
        print(f"test server exited:\n{server.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


def _is_testserver(pid: int) -> bool:
    """True when ``pid`` is alive and runs our server.js (a stale state file may name a
    PID that the system has since given to an unrelated process)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(ROOT / "server.js").encode() in cmdline


def _stop(args: argparse.Namespace) -> int:
    state_file = args.state_dir / "state.json"
    if not state_file.exists():
        print(f"no test server recorded in {state_file}", file=sys.stderr)
        return 0
    pid = int(json.loads(state_file.read_text())["pid"])
    if _is_testserver(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + args.timeout
        while _is_testserver(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _is_testserver(pid):
            os.kill(pid, signal.SIGKILL)
        print(f"stopped test server pid {pid}", file=sys.stderr)
    else:
        print(f"test server pid {pid} was not running", file=sys.stderr)
    state_file.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.state_dir.mkdir(parents=True, exist_ok=True)
    try:
        if args.command == "install":
            print("installed" if ensure_installed() else "already installed", file=sys.stderr)
            return 0
        if args.command == "stop":
            return _stop(args)
        return _start(args, background=args.command == "start")
    except TestServerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
