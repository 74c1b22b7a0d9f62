"""A bare AMI client on asyncio streams, for tests and benchmarks (never panoramisk).

It writes exactly the bytes it is given and returns every message the server sends, in order,
with repeated keys and header order preserved, so wire-level assertions stay possible.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .wire import BANNER, encode, parse_lines


@dataclass(frozen=True)
class Msg:
    """One message from the server, headers in wire order."""

    pairs: tuple[tuple[str, str], ...]

    @property
    def kind(self) -> str:
        """``Event`` or ``Response`` (the first line's key)."""
        return self.pairs[0][0] if self.pairs else ""

    @property
    def name(self) -> str:
        """The first line's value: the event name, or Success/Error/Goodbye for a response."""
        return self.pairs[0][1] if self.pairs else ""

    def keys(self) -> list[str]:
        return [key for key, _ in self.pairs]

    def get(self, key: str, default: str | None = None) -> str | None:
        for name, value in self.pairs:
            if name.lower() == key.lower():
                return value
        return default

    def __getitem__(self, key: str) -> str:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def is_event(self, name: str | None = None) -> bool:
        return self.kind == "Event" and (name is None or self.name == name)


class AmiProbe:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, banner: bytes) -> None:
        self.reader, self.writer, self.banner = reader, writer, banner
        self.log: list[Msg] = []  # everything read so far
        self._ids = itertools.count(1)

    @classmethod
    async def connect(cls, host: str, port: int, within: float = 5.0) -> AmiProbe:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), within)
        try:
            banner = await asyncio.wait_for(reader.readline(), within)
        except BaseException:
            writer.close()
            await writer.wait_closed()
            raise
        return cls(reader, writer, banner)

    @property
    def banner_ok(self) -> bool:
        return self.banner == BANNER

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send(self, headers: Sequence[tuple[str, str]]) -> None:
        await self.send_raw(encode(headers))

    async def action(self, name: str, *fields: tuple[str, str]) -> str:
        """Send an action with a fresh ActionID; returns the ActionID."""
        aid = f"probe-{next(self._ids)}"
        await self.send([("Action", name), ("ActionID", aid), *fields])
        return aid

    async def read(self, within: float = 5.0) -> Msg | None:
        """The next message, or None at EOF. Raises TimeoutError if nothing comes."""
        try:
            block = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), within)
        except asyncio.IncompleteReadError:
            return None
        except ConnectionResetError:
            return None
        msg = Msg(tuple(parse_lines(block)))
        self.log.append(msg)
        return msg

    async def until(self, match: Callable[[Msg], bool], within: float = 5.0) -> Msg:
        """Read until a message matches (the ones before it stay in ``log``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            msg = await self.read(max(0.0, deadline - loop.time()))
            if msg is None:
                raise EOFError("server closed the connection")
            if match(msg):
                return msg

    async def response(self, aid: str, within: float = 5.0) -> Msg:
        return await self.until(lambda m: m.kind == "Response" and m.get("ActionID") == aid, within)

    async def login(self, user: str, secret: str, events: str | None = None) -> Msg:
        fields = [("Username", user), ("Secret", secret)]
        if events is not None:
            fields.append(("Events", events))
        aid = await self.action("Login", *fields)
        return await self.response(aid)

    async def eof(self, within: float = 5.0) -> bool:
        """Read until the server closes; True if it did so within ``within`` seconds."""
        try:
            while await self.read(within) is not None:
                pass
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()
