"""The embedded services: idempotent start, clean stop, data that survives a restart."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from apps import stack


def _redis(paths, *args: str) -> str:
    cli = os.path.join(os.path.dirname(stack.redis_server_binary()), "redis-cli")
    return subprocess.run([cli, "-s", str(paths.socket), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_redis_start_is_idempotent_and_data_survives_restart(tmp_path):
    paths = stack.redis_paths(tmp_path / "redis")
    try:
        stack.start_redis(paths)
        pid = paths.pidfile.read_text().strip()
        stack.start_redis(paths)  # second start: same server
        assert paths.pidfile.read_text().strip() == pid
        _redis(paths, "SET", "answer", "42")
        _redis(paths, "RPUSH", "ingest", "a message")
        assert stack.stop_redis(paths) is True
        assert not stack.redis_alive(paths.socket)
        stack.start_redis(paths)
        assert _redis(paths, "GET", "answer") == "42"
        assert _redis(paths, "LRANGE", "ingest", "0", "-1") == "a message"
    finally:
        stack.stop_redis(paths)
    assert stack.stop_redis(paths) is False  # stopping twice is harmless


def test_long_paths_get_a_short_socket(tmp_path):
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    paths = stack.redis_paths(deep)
    assert len(str(paths.socket)) <= 100


def test_postgres_with_pgvector_restarts_with_its_data(tmp_path):
    """In a child process with its own var dir: start, write, stop, start again, read."""
    script = textwrap.dedent("""
        import subprocess, sys
        from apps import stack
        url = stack.ensure_postgres()
        assert stack.ensure_postgres() == url
        psql = stack._psql()
        q = lambda sql: subprocess.run([psql, url, "-Atc", sql], check=True,
                                       capture_output=True, text=True).stdout.strip()
        if sys.argv[1] == "write":
            q("CREATE TABLE notes (id int, v vector(3))")
            q("INSERT INTO notes VALUES (1, '[1,2,3]')")
        else:
            print(q("SELECT v <-> '[1,2,4]' FROM notes WHERE id = 1"))
        assert stack.stop_postgres() is True
        assert not stack.postgres_running()
    """)
    env = {**os.environ, "SCRIPTORIUM_VAR_DIR": str(tmp_path / "var")}
    for step in ("write", "read"):
        out = subprocess.run([sys.executable, "-c", script, step], env=env, cwd=stack.BASE_DIR,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"  # distance between [1,2,3] and [1,2,4]
