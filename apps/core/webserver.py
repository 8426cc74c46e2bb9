"""One web process: uvicorn serving apps.asgi on a listening socket of its own.

`python -m apps.core.webserver --host H --port P`. `manage.py serve` starts one per CPU
(`--web-workers`) and starts again any that exits. Each binds host:port with SO_REUSEPORT,
so the kernel spreads new connections over the processes' sockets evenly. With uvicorn's
`--workers` the processes share one socket and whichever wakes first accepts every
connection waiting (asyncio accepts up to the backlog at a time): a burst of 50 keep-alive
connections was split 37 to 13, and the process holding 37 answered at about three times
the other's latency for as long as they stayed open (docs/deployment.md).
"""

from __future__ import annotations

import argparse
import socket

BACKLOG = 2048  # uvicorn's default


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    import uvicorn

    sock = listening_socket(args.host, args.port)
    config = uvicorn.Config(
        "apps.asgi:application", host=args.host, port=args.port, access_log=False
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
