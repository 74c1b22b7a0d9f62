"""AMI frame codec: bytes from a client become messages, messages become bytes.

The byte format is the one recorded in ``reference/asterisk-22/raw``: every message is its
``Key: Value`` lines joined by CRLF and closed by an empty line; only the banner is a single line.
Clients may end lines with a bare LF (Asterisk accepts that too). Nothing a client sends may
crash the server: undecodable bytes are replaced, header-less lines are ignored, and a frame that
grows past ``MAX_FRAME`` bytes without ending is reported so the session can drop the link.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

BANNER = b"Asterisk Call Manager/11.0.0\r\n"

# One outgoing message: (key, value) pairs in wire order. Keys may repeat (``Variable``).
Headers = list[tuple[str, str]]
# One parsed client message as handed to tests: repeated keys become lists.
Action = dict[str, str | list[str]]

MAX_FRAME = 64 * 1024
# Asterisk keeps at most 128 headers per message and drops the rest.
MAX_HEADERS = 128

_END = re.compile(rb"\r?\n\r?\n")


class FrameTooLong(Exception):
    """A client kept sending without ending its message; the link should be dropped."""


def encode(headers: Sequence[tuple[str, str]]) -> bytes:
    """Serialise one message: ``Key: Value`` lines, CRLF, and the closing empty line."""
    text = "".join(f"{key}: {value}\r\n" for key, value in headers)
    return (text + "\r\n").encode("utf-8", "replace")


def parse_lines(raw: bytes) -> Headers:
    """Split one frame into headers; lines without a colon are ignored, like Asterisk does."""
    headers: Headers = []
    for line in raw.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(":")
        key = key.strip()
        if not sep or not key:
            continue
        headers.append((key, value.lstrip(" \t").rstrip("\r")))
        if len(headers) >= MAX_HEADERS:
            break
    return headers


def to_action(headers: Iterable[tuple[str, str]]) -> Action:
    """Collect headers into a dict; keys are matched case-insensitively, first spelling wins."""
    out: Action = {}
    spelled: dict[str, str] = {}
    for key, value in headers:
        name = spelled.setdefault(key.lower(), key)
        if name not in out:
            out[name] = value
            continue
        prev = out[name]
        out[name] = [*prev, value] if isinstance(prev, list) else [prev, value]
    return out


def get(action: Action, key: str, default: str = "") -> str:
    """First value of ``key`` (case-insensitive)."""
    for name, value in action.items():
        if name.lower() == key.lower():
            return value[0] if isinstance(value, list) else value
    return default


def get_all(action: Action, key: str) -> list[str]:
    """Every value of a possibly repeated key (case-insensitive)."""
    for name, value in action.items():
        if name.lower() == key.lower():
            return list(value) if isinstance(value, list) else [value]
    return []


class FrameReader:
    """Incremental splitter: feed bytes, get complete frames back."""

    def __init__(self, limit: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._limit = limit

    def feed(self, data: bytes) -> list[Headers]:
        """Return the frames completed by ``data``; raise FrameTooLong for a runaway frame."""
        self._buf += data
        frames: list[Headers] = []
        while True:
            match = _END.search(self._buf)
            if match is None:
                break
            raw = bytes(self._buf[: match.start()])
            del self._buf[: match.end()]
            if len(raw) > self._limit:
                raise FrameTooLong
            headers = parse_lines(raw)
            # Blank lines between messages carry nothing; Asterisk skips them.
            if headers or raw.strip():
                frames.append(headers)
        if len(self._buf) > self._limit:
            self._buf.clear()
            raise FrameTooLong
        return frames
