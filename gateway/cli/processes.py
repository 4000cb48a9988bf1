"""`paymux serve --workers N` on Linux: N processes, each accepting on a listening socket of its own,
all bound to the one port with SO_REUSEPORT, so that the kernel spreads new connections over the
processes (by a hash of each connection's addresses).

uvicorn's own multi-process mode gives every process the one socket, and whichever process wakes first
accepts every connection waiting: a client that opens its keep-alive connections together (a channel's
notification servers, a load balancer's pool) met one process with nearly all of them while the other
idled (measured with bench/notify.py: 16 connections, 13–16 on one of two processes). With a socket per
process each connection goes to one process by its hash; where SO_REUSEPORT does not spread connections
so (not Linux), `serve` keeps uvicorn's mode.

The parent binds every socket before starting any process (a port in use fails at once, in the parent),
keeps them, and starts again a process that died, on the same socket: connections that reached it
meanwhile wait in its backlog. A process that fails while starting (exit code 3, uvicorn's startup
failure: the app or the database) stops the whole server, as it would fail again. SIGINT and SIGTERM
stop every process, each finishing what it is answering (uvicorn's graceful shutdown).
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import threading
import traceback
from multiprocessing.process import BaseProcess

import uvicorn
from uvicorn.config import STARTUP_FAILURE

SPREADS_CONNECTIONS = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")
_SPAWN = multiprocessing.get_context("spawn")   # a fresh interpreter: no threads or pools forked half-way


def listening_socket(host: str, port: int) -> socket.socket:
    """One process's socket: bound to host:port beside the other processes' (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _serve_one(sock: socket.socket) -> None:
    """In a worker process: uvicorn on this process's own socket, the app built by worker_app. A process
    that never started serving (its app's settings, a plugin, the database) exits with uvicorn's
    STARTUP_FAILURE, whatever uvicorn itself did (an app factory's own error is a traceback and exit 1)."""
    config = uvicorn.Config("gateway.cli.server:worker_app", factory=True, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except BaseException:
        if server.started:
            raise
        traceback.print_exc()
        sys.exit(STARTUP_FAILURE)
    if not server.started:
        sys.exit(STARTUP_FAILURE)


class Supervisor:
    def __init__(self, host: str, port: int, workers: int) -> None:
        self.sockets = [listening_socket(host, port) for _ in range(workers)]   # all bound before any starts
        self.processes: list[BaseProcess] = []
        self.stop = threading.Event()
        self.failed = False

    def _start(self, sock: socket.socket) -> BaseProcess:
        process = _SPAWN.Process(target=_serve_one, args=(sock,), name="paymux-serve")
        process.start()
        return process

    def run(self) -> int:
        """Serve until SIGINT or SIGTERM; 1 if a process failed while starting."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stop.set())
        try:
            self.processes = [self._start(sock) for sock in self.sockets]
            while not self.stop.wait(0.5):
                self._keep_alive()
        finally:
            for process in self.processes:
                if process.is_alive():
                    os.kill(process.pid, signal.SIGTERM)   # type: ignore[arg-type]
            for process in self.processes:
                process.join(timeout=30)
                if process.is_alive():
                    process.kill()
                    process.join()
            for sock in self.sockets:
                sock.close()
        return 1 if self.failed else 0

    def _keep_alive(self) -> None:
        for i, process in enumerate(self.processes):
            if process.is_alive() or self.stop.is_set():
                continue
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                print(f"paymux: serving process {process.pid} failed to start; stopping", file=sys.stderr, flush=True)
                self.failed = True
                self.stop.set()
                return
            print(f"paymux: serving process {process.pid} ended ({process.exitcode}); starting another on its socket",
                  file=sys.stderr, flush=True)
            self.processes[i] = self._start(self.sockets[i])
