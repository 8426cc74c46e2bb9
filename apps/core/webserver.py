"""One web process: uvicorn serving apps.asgi on a listening socket of its own.

`python -m apps.core.webserver --host H --port P`. `manage.py serve` starts one per CPU
(`--web-workers`) and starts again any that exits. Each binds host:port with SO_REUSEPORT,
so the kernel spreads new connections over the processes' sockets evenly. With uvicorn's
`--workers` the processes share one socket and whichever wakes first accepts every
connection waiting (asyncio accepts up to the backlog at a time): a burst of 50 keep-alive
connections was split 37 to 13, and the process holding 37 answered at about three times
the other's latency for as long as they stayed open (docs/deployment.md).

Liveness: each process writes a byte to a pipe from its event loop once a second (uvicorn's
own tick, the hook its `--workers` supervisor pings through); serve kills and starts again
a process whose beats stop for `WEB_HEARTBEAT_TIMEOUT_S` (a stuck loop answers nothing, yet
never exits).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import time

BACKLOG = 2048  # uvicorn's default
# Before its first beat a process loads Django (seconds, more on a busy machine): it is given
# this long, or the timeout if longer, so a slow start is not taken for a hang.
STARTUP_S = 120.0


def listening_socket(host: str, port: int, *, shared: bool = True) -> socket.socket:
    """A TCP socket listening on host:port; ``shared``: with SO_REUSEPORT, one of a group
    the kernel balances new connections over."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def check_free(host: str, port: int) -> None:
    """Raise OSError if host:port is taken. A socket without SO_REUSEPORT cannot bind beside
    one that has it, so another server (this one started twice, say) is found here instead
    of silently sharing the port's connections with it."""
    listening_socket(host, port, shared=False).close()


class Heartbeat:
    """The supervisor's end of one web process's heartbeat pipe."""

    def __init__(self) -> None:
        self.read_fd, self._write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        self.started = time.monotonic()
        self.last: float | None = None

    def start(self, command: list[str], **popen) -> subprocess.Popen:
        """Start the web process `command` with the pipe's write end."""
        try:
            return subprocess.Popen(
                [*command, "--heartbeat-fd", str(self._write_fd)],
                pass_fds=(self._write_fd,),
                **popen,
            )
        finally:
            os.close(self._write_fd)  # the child's copy alone: its exit reads as EOF here

    def overdue(self, timeout: float) -> str | None:
        """Why the process counts as hung (no beat for `timeout` seconds), or None."""
        now = time.monotonic()
        try:
            while os.read(self.read_fd, 4096):  # b"": the process has exited
                self.last = now
        except BlockingIOError:
            pass
        if self.last is None:
            silent, allowed = now - self.started, max(timeout, STARTUP_S)
        else:
            silent, allowed = now - self.last, timeout
        return f"sent no heartbeat for {silent:.0f} s" if silent > allowed else None

    def close(self) -> None:
        os.close(self.read_fd)


def _beater(fd: int, server):
    os.set_blocking(fd, False)

    async def beat() -> None:
        try:
            os.write(fd, b".")
        except BlockingIOError:
            pass  # the supervisor is behind: 64 KiB of beats wait in the pipe
        except BrokenPipeError:
            # The supervisor is gone: nobody would replace this process, and it would keep
            # the port from a new serve (check_free).
            server.should_exit = True

    return beat


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--heartbeat-fd", type=int, help="beat into this pipe each second")
    args = parser.parse_args(argv)
    import uvicorn

    config = uvicorn.Config(
        "apps.asgi:application", host=args.host, port=args.port, access_log=False
    )
    server = uvicorn.Server(config)
    if args.heartbeat_fd is not None:
        # Called from the loop's tick once a second (0: at every tick that may call it).
        config.callback_notify, config.timeout_notify = _beater(args.heartbeat_fd, server), 0
    # Loaded before the socket is bound: connections the kernel gives this socket do not wait
    # in its backlog while Django starts (a process started again beside a running one).
    config.load()
    server.run(sockets=[listening_socket(args.host, args.port)])


if __name__ == "__main__":
    main()
