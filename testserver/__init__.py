"""Start and stop the CouchDB-compatible test server (express-pouchdb 4.2.0 on PouchDB 9).

Apache CouchDB is not in the package registries this project can reach, so tests, the demo
and the benchmarks run against PouchDB Server from npm unless ``COUCHDB_URL`` names a real
CouchDB. This module installs it (``npm ci --ignore-scripts``, only when needed), starts it on
a free loopback port with an admin user, waits until it answers, and stops it by PID.

    with start_server() as server:              # in memory
        httpx.put(f"{server.url}/mydb")
    server = start_server(data_dir=path)        # on disk: survives server.restart()
    start_server(eventsource=False)             # no _changes?feed=eventsource (see below)

``_changes?feed=eventsource`` is served the way CouchDB 3.x serves it (``eventsource.js``:
``data:``/``id:`` frames, ``event: heartbeat``, ``Last-Event-ID``), which PouchDB Server cannot
do. ``eventsource=False`` starts a server without it, answering a normal feed as text/plain
like PouchDB Server does, to test a client's fallback to ``feed=continuous``.

Only the standard library is used, so the launcher works before the virtualenv exists.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_USER",
    "ROOT",
    "RunningServer",
    "TestServerError",
    "ensure_installed",
    "start_server",
]

ROOT = Path(__file__).resolve().parent
DEFAULT_USER = "admin"
DEFAULT_PASSWORD = "testserver-pw"

_LOCKFILE = ROOT / "package-lock.json"
_STAMP = ROOT / "node_modules" / ".testserver-lock.sha256"
_NPM_CI = ("npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund")
_LOG_TAIL_LINES = 40


class TestServerError(RuntimeError):
    """The test server could not be installed, started or stopped."""

    __test__ = False  # not a pytest test class, despite the name


def ensure_installed() -> bool:
    """Run ``npm ci --ignore-scripts`` unless node_modules matches package-lock.json.

    Returns True when it installed. ``--ignore-scripts`` keeps npm from downloading or
    compiling anything: leveldown's prebuilt binary ships inside its package. A file lock
    serialises concurrent callers (``make`` and a pytest session, parallel workers).
    """
    if _stamp_matches():
        return False
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise TestServerError(
            "Node.js 18+ and npm are needed for the test server (e.g. apt-get install nodejs "
            "npm), or set COUCHDB_URL to a running CouchDB 3.x"
        )
    lock_path = Path(tempfile.gettempdir()) / f"couchdb-testserver-{_digest(str(ROOT))[:12]}.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _stamp_matches():  # another process installed while we waited
            return False
        result = subprocess.run(
            _NPM_CI, cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        if result.returncode != 0:
            raise TestServerError(
                f"`{' '.join(_NPM_CI)}` failed in {ROOT} (exit {result.returncode}):\n"
                + _tail(result.stdout + result.stderr)
            )
        _STAMP.write_text(_digest(_LOCKFILE.read_text()))
    return True


def _stamp_matches() -> bool:
    try:
        return _STAMP.read_text() == _digest(_LOCKFILE.read_text())
    except FileNotFoundError:
        return False


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _tail(text: str, lines: int = _LOG_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _http_status(url: str, timeout: float = 1.0) -> int | None:
    """Status of ``GET url``, or None when nothing answers HTTP there."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as err:
        return err.code
    except (OSError, ValueError):
        return None


@dataclass
class RunningServer:
    """A started test server; stop it with ``stop()`` or use it as a context manager.

    ``url`` carries the admin credentials (``http://admin:pw@127.0.0.1:PORT``) and no
    database, the form ``COUCHDB_URL`` takes. ``data_dir`` is None for an in-memory server.
    """

    host: str
    port: int
    user: str
    password: str
    data_dir: Path | None
    workdir: Path
    log_level: str = "info"
    follow_parent: bool = True
    #: Serve ``_changes?feed=eventsource`` as CouchDB does (False: as PouchDB Server, not at all).
    eventsource: bool = True
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _owns_workdir: bool = field(default=False, repr=False)
    _console_offset: int = field(default=0, repr=False)

    @property
    def base_url(self) -> str:
        """The server's URL without credentials."""
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The server's URL with the admin credentials, no database."""
        return f"http://{self.user}:{self.password}@{self.host}:{self.port}"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines of the server's console output and request log, for error messages."""
        parts = []
        for name in ("console.txt", "log.txt"):
            path = self.workdir / name
            if path.exists():
                text = path.read_text(errors="replace")
                parts.append(f"--- {path} ---\n{_tail(text, lines)}")
        return "\n".join(parts) or f"(no output in {self.workdir})"

    def start(self, ready_timeout: float = 20.0) -> None:
        """Launch the process and wait until ``GET /`` answers 200 from it."""
        if self.is_running():
            raise TestServerError(f"test server already running on {self.base_url}")
        if _http_status(self.base_url + "/") is not None:
            raise TestServerError(f"port {self.port} already answers HTTP; refusing to use it")
        command = [
            "node",
            "-r",
            str(ROOT / "guard.js"),
            str(ROOT / "server.js"),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--log-level",
            self.log_level,
        ]
        if self.data_dir is not None:
            command += ["--data-dir", str(self.data_dir)]
        if self.follow_parent:
            command += ["--exit-with-pid", str(os.getpid())]
        if not self.eventsource:
            command.append("--no-eventsource")
        env = {
            **os.environ,
            "TESTSERVER_ADMIN_USER": self.user,
            "TESTSERVER_ADMIN_PASSWORD": self.password,
        }
        self.workdir.mkdir(parents=True, exist_ok=True)
        console_path = self.workdir / "console.txt"
        with console_path.open("ab") as console:
            self._console_offset = console.tell()
            # A new session: a Ctrl-C meant for the caller does not reach the server, which
            # is stopped by PID instead (the caller's cleanup may still need it).
            self._process = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready(ready_timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self._process is not None
            code = self._process.poll()
            if code is not None:
                self._process = None
                raise TestServerError(
                    f"test server exited with code {code} while starting on "
                    f"{self.base_url}:\n{self.log_tail()}"
                )
            # Trust GET / only once this process says it listens: another server may own the
            # port (it is checked before the start, but could be taken since).
            if self._announced_listening() and _http_status(self.base_url + "/", 0.5) == 200:
                return
            if time.monotonic() > deadline:
                self._terminate()
                raise TestServerError(
                    f"test server did not answer GET {self.base_url}/ within {timeout:.0f} s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    def _announced_listening(self) -> bool:
        with (self.workdir / "console.txt").open("rb") as console:
            console.seek(self._console_offset)
            return b"testserver listening on" in console.read()

    def _terminate(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the server, SIGKILL after ``timeout`` seconds; idempotent."""
        self._terminate(timeout)
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def restart(self, ready_timeout: float = 20.0) -> None:
        """Stop and start again on the same port and data directory.

        An on-disk server keeps its databases; an in-memory one comes back empty.
        """
        self._terminate()
        self.start(ready_timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_server(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    user: str = DEFAULT_USER,
    password: str = DEFAULT_PASSWORD,
    workdir: str | os.PathLike[str] | None = None,
    log_level: str = "info",
    follow_parent: bool = True,
    ready_timeout: float = 20.0,
    eventsource: bool = True,
) -> RunningServer:
    """Install if needed, start the server and wait until it answers.

    ``data_dir`` None keeps the databases in memory; a path stores them there as LevelDB
    files. ``port`` None picks a free one. ``workdir`` receives config.json, log.txt and
    console.txt (a temporary directory, removed by ``stop()``, when None). With
    ``follow_parent`` the server exits on its own if this process dies without stopping it.
    ``eventsource`` False leaves ``_changes?feed=eventsource`` unimplemented, as on PouchDB
    Server (a normal feed as text/plain), for testing the fallback to ``feed=continuous``.
    """
    ensure_installed()
    owns_workdir = workdir is None
    server = RunningServer(
        host=host,
        port=port if port is not None else _free_port(host),
        user=user,
        password=password,
        data_dir=Path(data_dir).resolve() if data_dir is not None else None,
        workdir=Path(workdir or tempfile.mkdtemp(prefix="couchdb-testserver-")).resolve(),
        log_level=log_level,
        follow_parent=follow_parent,
        eventsource=eventsource,
        _owns_workdir=owns_workdir,
    )
    try:
        server.start(ready_timeout)
    except BaseException:
        with contextlib.suppress(Exception):
            server.stop()
        raise
    return server
