"""A page's view of the product over real HTTP and a real WebSocket (what the browser does)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import asyncpg

from tests import factory


class PageClient:
    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""
        self.messages: list[dict[str, Any]] = []
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._new = asyncio.Event()

    async def login(self, login: str, password: str, page: str = "/operator") -> int:
        async with self.http.post(
            f"{self.base}/login", data={"login": login, "password": password}, allow_redirects=False
        ) as r:
            if r.status != 302:
                return r.status
        async with self.http.get(f"{self.base}{page}") as r:
            html = await r.text()
            m = re.search(r'(?:data-csrf|name="csrf" value)="([^"]+)"', html)
            self.csrf = m.group(1) if m else ""
            return r.status

    async def open_as(self, login: str, password: str = factory.PASSWORD) -> None:
        """Log in as an operator and open the page's WebSocket (as the operator page does)."""
        assert await self.login(login, password) == 200
        await self.connect()

    async def ready_as(self, login: str, campaign_id: int, password: str = factory.PASSWORD) -> None:
        """Log in as an operator, open the page's WebSocket, press Ready on a campaign."""
        await self.open_as(login, password)
        # offline, or paused: a phone left in its bridge by a dialer that died is taken over
        await self.wait(lambda m: m["type"] == "agent" and m["state"] in ("offline", "paused"))
        status, body = await self.post("/api/agent/ready", {"campaign_id": campaign_id})
        assert status == 200, body

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(f"{self.base}{path}", allow_redirects=False) as r:
            return r.status, await r.text()

    async def post(
        self, path: str, body: Any = None, *, csrf: bool = True, raw: bytes | None = None
    ) -> tuple[int, Any]:
        headers = {"X-CSRF-Token": self.csrf} if csrf else {}
        data = raw if raw is not None else json.dumps(body or {})
        headers["Content-Type"] = "application/json"
        async with self.http.post(
            f"{self.base}{path}", data=data, headers=headers, allow_redirects=False
        ) as r:
            text = await r.text()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text

    async def connect(self) -> None:
        self._ws = await self.http.ws_connect(f"{self.base}/ws")
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                self.messages.append(json.loads(msg.data))
                self._new.set()

    async def wait(
        self, predicate: Callable[[dict[str, Any]], bool], within: float = 10.0, since: int = 0
    ) -> dict[str, Any]:
        """The first pushed message (already received or still to come; from the `since`-th) that matches."""
        seen = since
        async with asyncio.timeout(within):
            while True:
                for msg in self.messages[seen:]:
                    if predicate(msg):
                        return msg
                seen = len(self.messages)
                self._new.clear()
                await self._new.wait()

    async def hang_up(self, within: float = 10.0) -> dict[str, Any]:
        """Press Hang up; returns the call_ended message pushed for it."""
        before = len(self.messages)
        status, body = await self.post("/api/agent/hangup")
        assert status == 200, body
        return await self.wait(lambda m: m["type"] == "call_ended", within, since=before)

    async def save(self, attempt_id: int, code: str, **fields: str) -> dict[str, Any]:
        """Record an outcome for a call, as the page sends it (a fresh token); asserts it was stored."""
        body = {"attempt_id": attempt_id, "token": str(uuid.uuid4()), "code": code, **fields}
        status, reply = await self.post("/api/dispositions", body)
        assert status == 200, reply
        assert isinstance(reply, dict)
        return reply

    async def next_call(self, attempt_id: int, code: str = "refused", within: float = 20.0) -> dict[str, Any]:
        """Hang up the call `attempt_id`, record `code` in wrap-up, and wait for the next call to
        be put through; returns its record."""
        await self.hang_up(within)
        await self.wait_state("wrap_up", within)
        await self.save(attempt_id, code)
        pop = await self.wait(lambda m: m["type"] == "record" and m["attempt_id"] != attempt_id, within)
        await self.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected", within)
        return pop

    async def wait_state(self, state: str, within: float = 10.0) -> dict[str, Any]:
        return await self.wait(lambda m: m.get("type") == "agent" and m.get("state") == state, within)

    async def wait_closed(self, within: float = 5.0) -> None:
        """Until the server has closed this page's WebSocket."""
        assert self._reader is not None
        await asyncio.wait_for(asyncio.shield(self._reader), within)

    def forget(self) -> None:
        """Ignore what was pushed so far: wait() looks only at what comes next."""
        self.messages.clear()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.http.close()


async def fetched(pool: asyncpg.Pool, query: str, *args: object, within: float = 10.0) -> Any:
    """Poll a query until it gives a value (not null, not false) and return it: a row the product
    writes in its own time."""
    try:
        async with asyncio.timeout(within):
            while True:
                value = await pool.fetchval(query, *args)
                if value is not None and value is not False:
                    return value
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"nothing within {within} s for: {query}") from None


async def until(condition: Callable[[], object], within: float = 10.0) -> None:
    """Poll a condition on what a test can see (the simulated PBX, a row) until it holds."""
    async with asyncio.timeout(within):
        while True:  # nothing to wait on: the simulated PBX and the database are looked at, not awaited
            if condition():
                return
            await asyncio.sleep(0.05)


async def logged_in(product: Any, login: str, page: str) -> PageClient:
    """A page client of the running product, logged in as `login` and on `page`."""
    c = PageClient(product.url)
    assert await c.login(login, factory.PASSWORD, page) == 200
    return c
