"""The on-disk copy of held call records (dialer/store/journal.py), with real files and flock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from dialer.store import attempts, dispositions, targets
from dialer.store.journal import Journal, entry_of, write_of

POOL = object()  # stands for the pool: the journal never touches it


def test_writes_round_trip_with_their_types() -> None:
    at = datetime(2026, 12, 5, 14, 3, 2, 123456, tzinfo=UTC)
    writes = [
        partial(attempts.milestone, POOL, 7, "answered", None, at=at),
        partial(attempts.milestone, POOL, 7, "amd", {"amd": "HUMAN"}, at=at),
        partial(attempts.finish, POOL, 7, outcome="connected", hangup_by="operator", cause=16,
                amd_status="HUMAN", answered=True, at=at),
        partial(targets.release, POOL, 3, "dialer-x", done=False, delay=timedelta(minutes=30)),
        partial(dispositions.settle_or_retry, POOL, 7, "busy"),
    ]  # fmt: skip
    for write in writes:
        entry = entry_of(write)
        assert entry is not None
        again = write_of(json.loads(json.dumps(entry)), POOL)
        assert isinstance(again, partial)
        assert (again.func, again.args, again.keywords) == (write.func, write.args, write.keywords)


def test_only_known_store_writes_are_kept() -> None:
    assert entry_of(lambda: None) is None
    assert entry_of(partial(print, POOL, "x")) is None
    assert entry_of(partial(attempts.milestone, POOL, 1, "ringing", {"x": object()})) is None


def _held(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line]


def test_a_dead_dialers_file_is_taken_over_without_what_was_already_written(tmp_path: Path) -> None:
    dead = Journal(tmp_path, "dialer-dead")
    dead.open()
    one = dead.hold(
        partial(attempts.finish, POOL, 1, outcome="busy", hangup_by=None, cause=17, amd_status=None)
    )
    dead.hold(partial(dispositions.settle_or_retry, POOL, 1, "busy"))
    dead.done(one)
    assert len(_held(dead.path)) == 3
    with dead.path.open("a") as f:
        f.write('{"seq": 3, "fn": "attempts.fin')  # killed in the middle of a line
    live = Journal(tmp_path, "dialer-live")
    live.open()
    assert list(live.orphans()) == []  # the dead one still holds its lock: alive as far as we know
    dead._file.close()  # type: ignore[union-attr]  # what kill -9 does to the lock
    ((path, entries),) = list(live.orphans())
    assert path == dead.path
    assert [(e["fn"], e["args"]) for e in entries] == [("dispositions.settle_or_retry", [1, "busy"])]
    live.close()


def test_the_file_is_emptied_once_nothing_is_held_and_removed_on_a_clean_stop(tmp_path: Path) -> None:
    j = Journal(tmp_path, "dialer-a")
    j.open()
    seqs = [j.hold(partial(dispositions.settle, POOL, n)) for n in (1, 2)]
    for seq in seqs:
        j.done(seq)
    assert j.path.read_text() == ""
    kept = j.hold(partial(dispositions.settle, POOL, 3))
    j.close()
    assert j.path.exists()  # still held: the next dialer writes it
    j2 = Journal(tmp_path, "dialer-b")
    j2.open()
    ((_, entries),) = list(j2.orphans())
    assert [e["seq"] for e in entries] == [kept]
    j2.close()
    assert not j2.path.exists()
