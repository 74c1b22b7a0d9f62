"""A fuzzer throws malformed AMI frames at our reader over TCP: no crash, no hang, each bad frame
logged and skipped, and every good frame between them still arrives, in order, typed.

The bad frames are mutations of the frames a real Asterisk 22 sent (../shared/reference/
asterisk-22/raw): truncated (also inside a UTF-8 character), bytes overwritten with binary
garbage, Event/Response lines removed, lines without a colon, NUL bytes, stray CR/LF, a header
of 200 KiB, a thousand repeated headers, frames larger than the reader's limit, responses to no
action, and pure random bytes. AMI frames end only at a blank line, so each bad frame ends with
one too (a frame cut short without its blank line is indistinguishable from the start of the
next). Seeded, so a failure reproduces; `AMI_FUZZ_SEED` picks another run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator, Callable

import pytest

from dialer.ami import events
from dialer.ami.link import AmiLink, LinkEvent, LinkStatus
from dialer.ami.transport import MAX_FRAME_CHARS
from tests import transcripts
from tests.test_ami_link import Collector, _settings

EOL2 = b"\r\n\r\n"
SEED = int(os.environ.get("AMI_FUZZ_SEED", "20261205"))
ROUNDS = 400


def _real_frames() -> list[bytes]:
    """Every message Asterisk sent in the recorded transcripts, except banners and Shutdown."""
    frames = []
    for path in sorted(transcripts.RAW.glob("*.ami")):
        for block in transcripts.read(path.name):
            if block.direction != "<<<" or not block.lines or ":" not in block.lines[0]:
                continue
            if any(line.lower().startswith("event: shutdown") for line in block.lines):
                continue  # a real Shutdown ends the link by design: not a malformed frame
            frames.append("\r\n".join(block.lines).encode())
    return frames


def _no_blank_line(data: bytes) -> bytes:
    while EOL2 in data:
        data = data.replace(EOL2, b"\r\n.\r\n")
    return data


def _garbage(rng: random.Random, n: int) -> bytes:
    return _no_blank_line(rng.randbytes(n))


Mutation = Callable[[random.Random, bytes], tuple[bytes, bool]]  # -> (frame, judged bad by the reader)


def _truncate(rng: random.Random, frame: bytes) -> tuple[bytes, bool]:
    cut = rng.randrange(1, len(frame))
    kept = frame[:cut]
    return kept, not kept.startswith(b"Event: ")  # a Response of someone else's is skipped too


def _overwrite(rng: random.Random, frame: bytes) -> tuple[bytes, bool]:
    start = rng.randrange(len(frame))
    n = rng.randrange(1, 64)
    return frame[:start] + _garbage(rng, n) + frame[start + n :], False


def _no_event_line(rng: random.Random, frame: bytes) -> tuple[bytes, bool]:
    lines = [ln for ln in frame.split(b"\r\n") if not ln.lower().startswith((b"event:", b"response:"))]
    return b"\r\n".join(lines) or b"Privilege: call,all", True


def _no_colons(rng: random.Random, frame: bytes) -> tuple[bytes, bool]:
    return frame.replace(b": ", b" ").replace(b":", b""), True


def _nul_and_stray_eol(rng: random.Random, frame: bytes) -> tuple[bytes, bool]:
    out = bytearray(frame)
    for _ in range(rng.randrange(1, 8)):
        out.insert(rng.randrange(len(out) + 1), rng.choice([0, 0x0D, 0x0A]))
    return _no_blank_line(bytes(out)), False


def _huge_header(rng: random.Random, frame: bytes) -> tuple[bytes, bool]:
    return frame + b"\r\nX-Huge: " + b"A" * (200 * 1024), False


def _repeated_headers(rng: random.Random, frame: bytes) -> tuple[bytes, bool]:
    return frame + b"".join(b"\r\nVariable: V%d=x" % i for i in range(1000)), False


def _response_to_nothing(rng: random.Random, frame: bytes) -> tuple[bytes, bool]:
    return b"Response: Success\r\nActionID: nobody-%d\r\nMessage: stray" % rng.randrange(10**6), True


def _random_bytes(rng: random.Random, frame: bytes) -> tuple[bytes, bool]:
    return _garbage(rng, rng.randrange(16, 4096)), True


MUTATIONS: list[Mutation] = [
    _truncate,
    _overwrite,
    _no_event_line,
    _no_colons,
    _nul_and_stray_eol,
    _huge_header,
    _repeated_headers,
    _response_to_nothing,
    _random_bytes,
]


def _mark(i: int) -> bytes:
    return (
        b"Event: UserEvent\r\nPrivilege: user,all\r\nChannel: PJSIP/fuzz-00000001\r\n"
        b"Uniqueid: fuzz\r\nLinkedid: fuzz\r\nUserEvent: FuzzMark\r\nSeq: %d" % i + EOL2
    )


@contextlib.asynccontextmanager
async def _hostile_asterisk(stream: bytes, chunk_sizes: random.Random) -> AsyncIterator[int]:
    """Logs the client in, sends `stream` in random-sized chunks, then answers Pings like Asterisk."""
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        login = await reader.readuntil(EOL2)
        action_id = _header(login, b"actionid")
        writer.write(
            b"Response: Success\r\nActionID: " + action_id + b"\r\nMessage: Authentication accepted" + EOL2
        )
        i = 0
        while i < len(stream):
            n = chunk_sizes.choice([1, 7, 512, 4096, 65536])
            writer.write(stream[i : i + n])
            i += n
            await writer.drain()
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                action = await reader.readuntil(EOL2)
                if _header(action, b"action").lower() == b"ping":
                    aid = _header(action, b"actionid")
                    writer.write(b"Response: Success\r\nActionID: " + aid + b"\r\nPing: Pong" + EOL2)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=1 << 16)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        await server.wait_closed()


def _header(message: bytes, key: bytes) -> bytes:
    for line in message.split(b"\r\n"):
        k, _, v = line.partition(b": ")
        if k.lower() == key:
            return v
    return b""


def _logged(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, object]]:
    return [r.msg for r in caplog.records if isinstance(r.msg, dict) and r.msg.get("event") == event]


async def test_malformed_frames_are_logged_and_skipped_and_good_frames_between_them_arrive(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rng = random.Random(SEED)
    real = _real_frames()
    assert len(real) > 500  # the transcripts are there
    stream, must_be_skipped = bytearray(), 0
    for i in range(ROUNDS):
        mutate = MUTATIONS[i % len(MUTATIONS)]
        frame, bad = mutate(rng, rng.choice(real))
        must_be_skipped += bad
        stream += frame + EOL2 + _mark(i)
    oversized = b"Event: Newchannel\r\nX-Endless: " + b"B" * (MAX_FRAME_CHARS + 4096)
    stream += oversized + EOL2 + _mark(ROUNDS)
    stream += _garbage(rng, 3 * MAX_FRAME_CHARS) + EOL2 + _mark(ROUNDS + 1)  # no frame boundary inside

    async with _hostile_asterisk(bytes(stream), random.Random(SEED + 1)) as port:
        ami = AmiLink(_settings(port, ping_interval_s=60.0, action_timeout_s=5.0))
        seen = Collector()
        ami.subscribe(seen)
        try:
            await ami.start()
            last = ROUNDS + 1
            await seen.wait_for(lambda e: _seq(e) == last, within=60)
            marks = [_seq(e) for e in seen.items if _seq(e) is not None]
            assert marks == list(range(ROUNDS + 2))  # every good frame, once, in order
            assert ami.up
            assert not [e for e in seen.items if isinstance(e, LinkStatus) and not e.up]  # never dropped
            pong = await ami.action({"Action": "Ping"})  # the reader is still in step
            assert pong.get("Ping") == "Pong"
        finally:
            await ami.close()
    skipped = _logged(caplog, "ami.frame_skipped")
    reasons = [str(r["reason"]) for r in skipped]
    assert reasons.count("larger than the frame limit") == 2
    assert len(skipped) >= must_be_skipped + 2
    assert all("chars" in r for r in skipped)


def _seq(e: LinkEvent) -> int | None:
    if isinstance(e, events.UserEvent) and e.user_event == "FuzzMark":
        return int(e.fields["Seq"])
    return None


async def test_a_frame_ending_in_bare_line_feeds_does_not_swallow_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Lines and the blank line ending in LF alone (not CR LF, as Asterisk sends): that frame is
    skipped and logged, and the good frame right after it arrives (it was read as one frame with
    it, and lost: a Hangup among them, the call never ended)."""
    bare = b"Event: Foo\nX: y\n\n"
    stream = bare + _mark(0) + b"Event: Bar\n\n" + _mark(1)
    async with _hostile_asterisk(stream, random.Random(SEED)) as port:
        ami = AmiLink(_settings(port, ping_interval_s=60.0, action_timeout_s=5.0))
        seen = Collector()
        ami.subscribe(seen)
        try:
            await ami.start()
            await seen.wait_for(lambda e: _seq(e) == 1, within=10)
            assert [_seq(e) for e in seen.items if _seq(e) is not None] == [0, 1]
        finally:
            await ami.close()
    reasons = [str(r["reason"]) for r in _logged(caplog, "ami.frame_skipped")]
    assert reasons == ["lines end in LF alone, not CR LF"] * 2
