"""WebSocket pushes to the pages: each operator's own events, and the floor for supervisors.

A slow or dead socket never blocks the engine: sends have a deadline and a failed socket is
dropped (the page reconnects and receives a fresh snapshot).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from dialer import logs
from dialer.aio import within

log = logs.get("web.push")
SEND_TIMEOUT_S = 2.0


class Hub:
    def __init__(self) -> None:
        self._users: dict[int, set[web.WebSocketResponse]] = {}
        self._supervisors: dict[web.WebSocketResponse, str | None] = {}
        self._supervisor_of: dict[web.WebSocketResponse, int] = {}  # whose page (logout closes it)

    def add_user(self, user_id: int, ws: web.WebSocketResponse) -> None:
        self._users.setdefault(user_id, set()).add(ws)

    def add_supervisor(self, department_id: str | None, ws: web.WebSocketResponse, user_id: int) -> None:
        self._supervisors[ws] = department_id
        self._supervisor_of[ws] = user_id

    def remove(self, user_id: int, ws: web.WebSocketResponse) -> None:
        self._users.get(user_id, set()).discard(ws)
        if not self._users.get(user_id):
            self._users.pop(user_id, None)
        self._supervisors.pop(ws, None)
        self._supervisor_of.pop(ws, None)

    async def to_user(self, user_id: int, message: dict[str, Any]) -> None:
        await self._send(list(self._users.get(user_id, ())), message)

    async def to_supervisors(self, department_id: str | None, message: dict[str, Any]) -> None:
        targets = [ws for ws, dept in self._supervisors.items() if dept is None or dept == department_id]
        await self._send(targets, message)

    async def to_all_supervisors(self, message: dict[str, Any]) -> None:
        await self._send(list(self._supervisors), message)

    async def to_all(self, message: dict[str, Any]) -> None:
        sockets = {ws for group in self._users.values() for ws in group} | set(self._supervisors)
        await self._send(list(sockets), message)

    async def _send(self, sockets: list[web.WebSocketResponse], message: dict[str, Any]) -> None:
        if not sockets:
            return
        data = json.dumps(message, ensure_ascii=False, default=str)
        results = await asyncio.gather(
            *(within(SEND_TIMEOUT_S, ws.send_str(data)) for ws in sockets), return_exceptions=True
        )
        for ws, result in zip(sockets, results, strict=True):
            if isinstance(result, BaseException):
                log.info("push.socket_dropped", error=type(result).__name__)
                await _close(ws)

    async def close_user(self, user_id: int) -> None:
        """Logout: the user's other pages stop receiving residents' records (or the floor) at once."""
        mine = [ws for ws, uid in self._supervisor_of.items() if uid == user_id]
        for ws in [*self._users.get(user_id, ()), *mine]:
            await _close(ws)

    async def close_all(self) -> None:
        sockets = {ws for group in self._users.values() for ws in group} | set(self._supervisors)
        for ws in sockets:
            await _close(ws, code=1001, message=b"server shutdown")


async def _close(ws: web.WebSocketResponse, code: int = 1000, message: bytes = b"") -> None:
    """Close a socket without letting a dead peer hold us (the engine waits on these sends)."""
    try:
        await within(SEND_TIMEOUT_S, ws.close(code=code, message=message))
    except (TimeoutError, ConnectionError, RuntimeError):
        log.info("push.close_timeout")
