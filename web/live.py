"""The WebSocket every page keeps open: pushes only, no polling.

On (re)connect the page gets a fresh snapshot, so a reload or a dropped socket shows the truth.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from web.auth import DatabaseAway, current, load_session, token_of
from web.keys import ENGINE, HUB, SETTINGS


async def websocket(request: web.Request) -> web.StreamResponse:
    session = current(request)
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise web.HTTPForbidden(text="cross-origin WebSocket refused")
    user = session.user
    ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096)
    await ws.prepare(request)
    hub, engine = request.app[HUB], request.app[ENGINE]
    if user.role == "operator":
        hub.add_user(user.id, ws)
        await engine.attach(user, address=request.remote or "")
    else:
        hub.add_supervisor(user.department_id, ws, user.id)
        await ws.send_json({"type": "database", "up": engine.db.up})  # (either way, as to operators)
    watcher = asyncio.create_task(_close_when_session_ends(request, ws), name=f"ws-session-{user.id}")
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT and msg.data == "ping":
                await ws.send_str('{"type": "pong"}')
    finally:
        watcher.cancel()
        hub.remove(user.id, ws)
        if user.role == "operator":
            await engine.detach(user)
    return ws


async def _close_when_session_ends(request: web.Request, ws: web.WebSocketResponse) -> None:
    token = token_of(request)
    while not ws.closed:
        # A page whose session expired or was closed stops receiving residents' records.
        await asyncio.sleep(request.app[SETTINGS].session_check_s)
        try:
            session = await load_session(request, token)
        except DatabaseAway:
            continue  # checked again once the database is back; no record is read meanwhile
        if session is None:
            await ws.close(code=4001, message=b"session ended")
