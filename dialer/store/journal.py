"""Call records held while the database is away, kept on disk too (issue 5: nothing lost).

The engine holds a write the database could not take (campaigns.callflow) and appends it here,
to `<DIALER_VAR_DIR>/spool/held-<owner>.jsonl`, fsynced; a `done` line follows once the database
has taken it (or refused it for good). The file is locked (flock) for as long as its dialer
lives. A dialer that dies with records still held leaves its file unlocked: the next dialer to
start with the same DIALER_VAR_DIR takes it over and writes those records first, in order, with
the times they happened. Only writes of the store functions in WRITERS can be kept this way.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import IO, Any

from dialer import logs
from dialer.store import attempts, audit, dispositions, targets

log = logs.get("dialer.store")

WRITERS: dict[str, Callable[..., Any]] = {
    f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}": fn
    for fn in (
        attempts.milestone,
        attempts.finish,
        attempts.assign_operator,
        dispositions.settle,
        dispositions.settle_or_retry,
        targets.release,
        audit.record,  # a listen-in's further calls (campaigns.listening)
    )
}
_NAMES = {fn: name for name, fn in WRITERS.items()}


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$td": value.total_seconds()}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot keep a {type(value).__name__} on disk")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$dt"}:
            return datetime.fromisoformat(value["$dt"])
        if set(value) == {"$td"}:
            return timedelta(seconds=value["$td"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def entry_of(write: Callable[[], Any]) -> dict[str, Any] | None:
    """What is kept of a write: partial(<a WRITERS function>, pool, *args, **kwargs); else None."""
    if not isinstance(write, partial) or write.func not in _NAMES or not write.args:
        return None
    try:
        return {
            "fn": _NAMES[write.func],
            "args": _encode(list(write.args[1:])),
            "kwargs": _encode(write.keywords),
        }
    except TypeError:
        return None


def write_of(entry: dict[str, Any], pool: Any) -> Callable[[], Any]:
    return partial(WRITERS[entry["fn"]], pool, *_decode(entry["args"]), **_decode(entry["kwargs"]))


class Journal:
    def __init__(self, directory: Path, owner: str) -> None:
        self.directory = directory
        self.path = directory / f"held-{re.sub(r'[^A-Za-z0-9_.-]', '_', owner)}.jsonl"
        self._file: IO[str] | None = None
        self._seq = 0
        self._open = 0  # entries held and not done

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._file = self.path.open("a", encoding="utf-8")
        fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def close(self) -> None:
        """A clean stop: the file goes if nothing is held; else it stays for the next dialer."""
        if self._file is None:
            return
        if self._open == 0:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self._file.close()  # releases the lock
        self._file = None

    def hold(self, write: Callable[[], Any]) -> int | None:
        """Keep a held write on disk; its number, or None if it cannot be kept (memory only)."""
        entry = entry_of(write)
        if self._file is None or entry is None:
            return None
        self._seq += 1
        self._append({"seq": self._seq, **entry})
        self._open += 1
        return self._seq

    def hold_all(self, writes: list[Callable[[], Any]]) -> list[int | None]:
        """`hold` for many at once, with one fsync (another dialer's spool taken over by a live one:
        thousands of entries, each fsynced on the event loop, would stall its calls)."""
        if self._file is None:
            return [None] * len(writes)
        seqs: list[int | None] = []
        for write in writes:
            entry = entry_of(write)
            if entry is None:
                seqs.append(None)
                continue
            self._seq += 1
            self._file.write(json.dumps({"seq": self._seq, **entry}, ensure_ascii=False) + "\n")
            self._open += 1
            seqs.append(self._seq)
        self._file.flush()
        os.fsync(self._file.fileno())
        return seqs

    def done(self, seq: int | None) -> None:
        if self._file is None or seq is None:
            return
        self._open -= 1
        if self._open == 0:  # nothing held any more: start the file afresh
            self._file.seek(0)
            self._file.truncate()
            self._file.flush()
            os.fsync(self._file.fileno())
            return
        self._append({"done": seq})

    def _append(self, record: dict[str, Any]) -> None:
        assert self._file is not None
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def orphans(self) -> Iterator[tuple[Path, list[dict[str, Any]]]]:
        """Files other dialers left behind (nobody holds their lock): their entries not done, in
        order. The caller holds them itself, then `forget`s the file."""
        for path in sorted(self.directory.glob("held-*.jsonl")):
            if path == self.path:
                continue
            try:
                f = path.open("r+", encoding="utf-8")
            except FileNotFoundError:  # taken over and removed by another dialer meanwhile
                continue
            with f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # its dialer is alive (or another is taking it over)
                if not path.exists():  # taken over and removed between the open and the lock
                    continue
                yield path, list(_pending(f.read().splitlines(), path))

    @staticmethod
    def forget(path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _pending(lines: list[str], path: Path) -> Iterator[dict[str, Any]]:
    entries: dict[int, dict[str, Any]] = {}
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except ValueError:  # the last line of a dialer killed while writing it
            log.warning("journal.line_skipped", file=path.name, line=number)
            continue
        if "done" in record:
            entries.pop(record["done"], None)
        elif record.get("fn") in WRITERS:
            entries[record["seq"]] = record
    yield from entries.values()
