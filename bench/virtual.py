"""Virtual time for the whole product: hours of calling run as fast as the work in them allows.

The product, the simulated PBX and the operators' pages run in one process on an event loop
whose clock jumps ahead whenever nothing is left to do: no callback ready, no socket with data,
and no database query awaiting its answer. Work itself runs at its real speed (a 5 ms database
round trip still takes 5 ms), only idle time is skipped, so the engine's own reaction time
counts once, as it would on a real floor.

Every clock moves together, because they all read one offset added to the real time:
- the event loop's `time()` (asyncio sleeps, timeouts, aiohttp, asyncpg) adds it itself;
- wall-clock time (`datetime.now()`, `time.time()`) in this process and in PostgreSQL's
  processes (`now()`: leases, rolling abandon windows, attempt times) comes from libfaketime,
  preloaded into both, which reads the offset from a file on every call (`reexec`).
The monotonic clock is left alone by libfaketime (it would hang `time.sleep` on Python 3.11);
code that measures intervals against the loop uses the loop's clock.

A database query is "awaiting its answer" from a write on a connection to PostgreSQL until the
next read from it (sockets to PostgreSQL's port are tracked; the rest are in this process, where
the reader's socket is readable the moment the writer has written); work handed to a thread
(`asyncio.to_thread`, `run_in_executor`) holds the clock too until it is done.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import os
import selectors
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

ENV_FILE = "BENCH_VIRTUAL_CLOCK"  # the offset file, once this process runs under libfaketime
# Real time granted, before time jumps, to a reply already on its way from outside what is watched
QUIET_S = float(os.environ.get("BENCH_QUIET_S", "0.0005"))


def libfaketime() -> Path:
    spec = importlib.util.find_spec("libfaketime")  # found without importing it (it needs pytz)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("libfaketime is not installed: make venv installs it (pip install -e '.[dev]')")
    lib = Path(spec.submodule_search_locations[0]) / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
    if not lib.exists():
        raise RuntimeError(f"libfaketime's library is missing: {lib}")
    return lib


def reexec(start_epoch: float, argv: list[str]) -> None:
    """Run `python argv…` again under libfaketime, its wall clock starting at `start_epoch`
    (PostgreSQL started from it inherits the same clock). Returns only if already there."""
    if os.environ.get(ENV_FILE):
        atexit.register(Path(os.environ[ENV_FILE]).unlink, missing_ok=True)
        return
    fd, path = tempfile.mkstemp(prefix="bench-clock-")
    os.close(fd)
    _write(Path(path), start_epoch - time.time())
    env = {
        **os.environ,
        "LD_PRELOAD": f"{libfaketime()}:{os.environ['LD_PRELOAD']}"
        if os.environ.get("LD_PRELOAD")
        else str(libfaketime()),
        "FAKETIME_TIMESTAMP_FILE": path,
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        ENV_FILE: path,
    }
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *argv], env)


def _write(path: Path, offset: float) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{offset:+.6f}\n")
    os.replace(tmp, path)  # whole, never half-written: libfaketime reads it on every clock call


class Clock:
    """The offset of virtual time over real time, shared with libfaketime through its file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.offset = float(path.read_text()) if path else 0.0
        self.skipped = 0.0
        self.jumps = 0

    def advance(self, seconds: float) -> None:
        self.offset += seconds
        self.skipped += seconds
        self.jumps += 1
        if self.path is not None:
            _write(self.path, self.offset)


class TrackedSocket(socket.socket):
    """A connection to PostgreSQL that knows whether it awaits an answer."""

    awaiting = False

    def send(self, data: Any, flags: int = 0) -> int:
        self.awaiting = True
        return super().send(data, flags)

    def sendmsg(self, buffers: Any, *args: Any) -> int:  # transports' writelines (Python 3.12+)
        self.awaiting = True
        return super().sendmsg(buffers, *args)

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        if data:
            self.awaiting = False
        return data

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        n = super().recv_into(buffer, nbytes, flags)
        if n:
            self.awaiting = False
        return n


class _Selector:
    """The loop's selector, which moves the clock on instead of blocking while all is quiet."""

    def __init__(self, loop: VirtualLoop) -> None:
        self._real = selectors.DefaultSelector()
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        ready = self._real.select(QUIET_S if timeout is None else min(timeout, QUIET_S))
        if ready:
            return ready
        if self._loop.awaiting():
            return []  # a query is out: wait for it in real time
        if timeout is not None and timeout > QUIET_S:
            self._loop.clock.advance(timeout - QUIET_S)
        return []


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: Clock, database_port: int = 5432) -> None:
        self.clock = clock
        self.database_port = database_port  # over TCP; PostgreSQL's Unix sockets are told by name
        self._tracked: list[TrackedSocket] = []
        self._in_threads = 0
        super().__init__(_Selector(self))  # type: ignore[arg-type]

    def time(self) -> float:
        return time.monotonic() + self.clock.offset

    def awaiting(self) -> bool:
        """A query out to PostgreSQL, or work in a thread (password checks, file reads)."""
        if self._in_threads:
            return True
        self._tracked = [s for s in self._tracked if s.fileno() != -1]
        return any(s.awaiting for s in self._tracked)

    def run_in_executor(  # type: ignore[override]
        self, executor: Executor | None, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        fut = super().run_in_executor(executor, func, *args)
        self._in_threads += 1
        fut.add_done_callback(self._thread_done)
        return fut

    def _thread_done(self, _: object) -> None:
        self._in_threads -= 1

    def _make_socket_transport(self, sock: socket.socket, *args: Any, **kwargs: Any) -> Any:
        try:
            peer = sock.getpeername()
        except OSError:
            peer = None
        postgres = (isinstance(peer, tuple) and peer[1] == self.database_port) or (
            isinstance(peer, str) and ".s.PGSQL." in peer
        )
        if postgres and not isinstance(sock, TrackedSocket):
            family, kind, proto = sock.family, sock.type, sock.proto
            sock.setblocking(False)
            sock = TrackedSocket(family, kind, proto, fileno=sock.detach())
            self._tracked.append(sock)
        return super()._make_socket_transport(sock, *args, **kwargs)  # type: ignore[misc]


def new_loop(database_port: int = 5432) -> VirtualLoop:
    """A virtual-time loop; its clock is the one `reexec` set up (or virtual from zero, wall
    clocks untouched, when not re-executed: fine for code that reads only the loop's clock)."""
    path = os.environ.get(ENV_FILE)
    return VirtualLoop(Clock(Path(path) if path else None), database_port)
