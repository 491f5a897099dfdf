"""A throw-away PostgreSQL server for the tests, on loopback, in a temporary folder.

The server binaries come from the ``pgserver`` wheel (PostgreSQL 16 built for manylinux, pinned in
requirements.txt), so ``make .venv/.installed`` brings them and CI needs no apt; where that wheel
is missing, a ``postgres`` and an ``initdb`` on PATH serve (Debian's ``postgresql`` package). Only
the binaries are used, not ``pgserver``'s own start-up code: the server here listens on
127.0.0.1 at a free port (what ``--storage postgresql://host/db`` reaches across machines), with
no Unix socket, trust authentication and no fsync.

PostgreSQL refuses to run as root, and CI runs as root: there the server runs as ``nobody``, from
a copy of the wheel's binaries in the temporary folder (the checkout's folders may not be open to
that user). A server the tests cannot start raises ``Unavailable``, which the fixture turns into
a skip, or into a failure under CI.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

STARTUP_TIMEOUT = 30.0  # seconds for the server to accept connections
PORT_ATTEMPTS = 3  # a free port found by binding can be taken by another process before the server binds it
USER = "postgres"  # the superuser initdb creates
UNPRIVILEGED = "nobody"  # who runs the server when the tests run as root


class Unavailable(RuntimeError):
    """The server cannot be started here; the message says why."""


def in_ci() -> bool:
    """Whether this is a CI run (``CI`` set, as CI services and ``.ci/run`` do): a missing server
    is then a failure, never a skip."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _wheel_installation() -> Path | None:
    """``pgserver``'s PostgreSQL installation (bin/, lib/, share/), found without importing it."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    installation = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
    return installation if (installation / "bin" / "postgres").is_file() else None


def find_binaries() -> tuple[Path, str]:
    """The folder of ``initdb`` and ``postgres``, and where it comes from."""
    installation = _wheel_installation()
    if installation is not None:
        return installation / "bin", "the pgserver wheel"
    found = shutil.which("postgres"), shutil.which("initdb")
    if all(found):
        folder = Path(found[0]).resolve().parent
        if (folder / "initdb").is_file():
            return folder, f"{folder} on PATH"
    raise Unavailable("no PostgreSQL server binaries: install the pgserver wheel (pip install -r requirements.txt) "
                      "or Debian's postgresql package")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _die_with_parent():
    """A ``preexec_fn`` that has the kernel stop the server when the test process dies, even by
    SIGKILL (it runs after the change of user, which would clear it)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):  # not Linux
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGINT)


class PostgresServer:
    """A PostgreSQL server on 127.0.0.1, its data in a temporary folder; ``start()`` returns the
    URL of its ``postgres`` database, ``stop()`` ends it and removes the folder."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.process: subprocess.Popen | None = None
        self.port: int | None = None
        self.source = ""

    # --- starting -------------------------------------------------------------------------------

    def start(self) -> str:
        try:
            import psycopg  # noqa: F401  the driver SQLAlchemy 2.1 uses for postgresql:// URLs
        except ImportError as error:
            raise Unavailable(f"no PostgreSQL driver: {error} (pip install -r requirements.txt)") from None
        binaries, self.source = find_binaries()
        # not pytest's tmp_path: its folders are the test user's alone, and the server may run as another
        self.folder = Path(tempfile.mkdtemp(prefix="optimizer-lab-postgres-"))
        try:
            binaries, run_as = self._prepare(binaries)
            data = self.folder / "data"
            data.mkdir(mode=0o700)
            if run_as:
                os.chown(data, *run_as)
            self._run([binaries / "initdb", "-D", data, "-U", USER, "--auth=trust", "--encoding=UTF8", "--no-sync"],
                      run_as)
            for attempt in range(PORT_ATTEMPTS):
                self.port = _free_port()
                if self._launch(binaries, data, run_as, last=attempt == PORT_ATTEMPTS - 1):
                    return self.url("postgres")
        except BaseException:
            self.stop()
            raise
        raise AssertionError("unreachable")

    def _prepare(self, binaries: Path) -> tuple[Path, tuple[int, int] | None]:
        """The binaries to run and the (uid, gid) to run them as (``None``: this user)."""
        if os.geteuid() != 0:
            return binaries, None
        import pwd

        try:
            entry = pwd.getpwnam(UNPRIVILEGED)
        except KeyError:
            raise Unavailable(f"running as root, and there is no user {UNPRIVILEGED!r} to run PostgreSQL as") from None
        self.folder.chmod(0o755)
        installation = binaries.parent
        if installation.name == "pginstall":  # the wheel: its binaries find their libraries at ../../../pgserver.libs
            copy = self.folder / "pgserver" / "pginstall"
            shutil.copytree(installation, copy, symlinks=True)
            libraries = installation.parent.parent / "pgserver.libs"
            if libraries.is_dir():
                shutil.copytree(libraries, self.folder / "pgserver.libs", symlinks=True)
            for path in [self.folder, *self.folder.rglob("*")]:
                if not path.is_symlink():
                    path.chmod(path.stat().st_mode | 0o055 if path.is_dir() else path.stat().st_mode | 0o044)
            binaries = copy / "bin"
        return binaries, (entry.pw_uid, entry.pw_gid)

    def _run(self, command: list, run_as) -> None:
        ids = dict(user=run_as[0], group=run_as[1], extra_groups=[]) if run_as else {}
        try:
            completed = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=120, **ids)
        except (OSError, subprocess.SubprocessError) as error:
            raise Unavailable(f"{Path(command[0]).name} from {self.source} failed: {error}") from None
        if completed.returncode != 0:
            tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
            raise Unavailable(f"{Path(command[0]).name} from {self.source} failed: {' | '.join(tail)}")

    def _launch(self, binaries: Path, data: Path, run_as, last: bool) -> bool:
        """Start the server on ``self.port`` and wait until it accepts connections; ``False``
        when the port was taken meanwhile (and this is not the last attempt)."""
        import psycopg

        log = self.folder / "server.log"
        ids = dict(user=run_as[0], group=run_as[1], extra_groups=[]) if run_as else {}
        command = [str(binaries / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port), "-k", "",
                   "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                   "-c", "max_connections=200"]  # fmt: skip
        with open(log, "w") as output, warnings.catch_warnings():
            # the pre-exec function only sets the death signal before exec, which is safe in a
            # fork of a multithreaded process (JAX's), which Python warns about in general
            warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
            self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                            preexec_fn=_die_with_parent(), **ids)  # fmt: skip
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                text = log.read_text(errors="replace")
                self.process = None
                if not last and "could not bind" in text or "already in use" in text:
                    return False
                tail = " | ".join(text.strip().splitlines()[-3:])
                raise Unavailable(f"the server from {self.source} exited at start: {tail}")
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise Unavailable(f"the server from {self.source} did not accept connections in {STARTUP_TIMEOUT:.0f} s")

    # --- using and stopping --------------------------------------------------------------------------

    def url(self, database: str) -> str:
        """``postgresql://`` URL of ``database``: SQLAlchemy's default driver for it, as Optuna's
        storage opens it (psycopg 3 since SQLAlchemy 2.1)."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database ``name``; its URL."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Fast shutdown (clients disconnected, no checkpoint wait beyond the server's), then the folder."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
