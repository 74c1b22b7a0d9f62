"""JSON endpoints the pages call. Errors are {"error": <message key>, "fields": {...}} with a status."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from campaigns import dispositions as rules
from campaigns.dialing import EngineError
from dialer.imports.values import clean
from dialer.store import audit, campaigns, db, dispositions
from dialer.store.db import is_id
from dialer.store.dispositions import DispositionRejected
from dialer.store.inbound import KEYS, IdentifyRefused
from web.auth import current, require
from web.keys import ENGINE, POOL
from web.progress import PROGRESS

MAX_BODY = 64 * 1024
_KEY = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,31}")  # a 宛名番号 or 世帯番号 as imports keep them


def _error(
    key: str, status: int, fields: dict[str, str] | None = None, details: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, Any] = {"error": key, "fields": fields or {}}
    if details:
        body["details"] = details  # by field, shown after its message (the hours a call-back may take)
    return web.json_response(body, status=status)


async def _json(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_BODY, actual_size=request.content_length)
    try:
        body = await request.json()
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json can parse
        raise web.HTTPBadRequest(text='{"error": "error.generic"}', content_type="application/json") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text='{"error": "error.generic"}', content_type="application/json")
    return body


async def _command(request: web.Request, name: str) -> web.Response:
    user = current(request).user
    engine = request.app[ENGINE]
    body = await _json(request) if request.can_read_body else {}
    try:
        if name == "ready":
            campaign_id = body.get("campaign_id")
            if not is_id(campaign_id):
                return _error("error.campaign", 400)
            await engine.ready(user, campaign_id)
        elif name == "pause":
            await engine.pause(user)
        elif name == "dial":
            await engine.dial_preview(user)
        elif name == "skip":
            await engine.skip_preview(user)
        elif name == "hangup":  # the page names its call; without one, whatever call is up
            call = body.get("attempt_id")
            if call is not None and not is_id(call):
                return _error("error.invalid", 400)
            await engine.hangup(user, call)
    except EngineError as exc:
        return _error(exc.key, 409)
    return web.json_response({"ok": True})


def _handler(name: str) -> Any:
    @require("operator")
    async def handle(request: web.Request) -> web.StreamResponse:
        return await _command(request, name)

    return handle


@require("operator")
async def save_disposition(request: web.Request) -> web.Response:
    user = current(request).user
    body = await _json(request)
    async with db.department(request.app[POOL], user.department_id) as conn:
        codes = await dispositions.codes(conn, user.department_id)
        window = await dispositions.calling_window(conn, rules.attempt_of(body))
    checked = rules.validate(body, codes, rules.reference_time(body, datetime.now(UTC)), window)
    if isinstance(checked, list):
        return _error(
            "error.invalid",
            422,
            {e.field: e.key for e in checked},
            {e.field: e.detail for e in checked if e.detail},
        )
    try:
        saved = await request.app[ENGINE].disposition(
            user, checked, codes[checked.code], request.remote or ""
        )
    except DispositionRejected as exc:
        return _error(exc.key, exc.status)
    return web.json_response({"ok": True, "attempt_id": saved.attempt_id, "created": saved.created})


@require("operator")
async def identify(request: web.Request) -> web.Response:
    """A caller matched to no household gives its 宛名番号 or 世帯番号: the household is attached to
    the call and its record shown. Audit-logged, at most a few lookups a call."""
    user = current(request).user
    body = await _json(request)
    attempt_id, key, by = body.get("attempt_id"), body.get("key"), body.get("by", "atena_no")
    if not isinstance(attempt_id, int) or isinstance(attempt_id, bool) or not 0 < attempt_id < 2**63:
        return _error("error.attempt", 400)
    if not isinstance(key, str):
        return _error("error.invalid", 422, {"key": "error.identify_key"})
    if by not in KEYS:
        return _error("error.invalid", 422, {"by": "error.identify_by"})
    key = clean(key)[0]
    if not _KEY.fullmatch(key):
        return _error("error.invalid", 422, {"key": "error.identify_key"})
    try:
        found = await request.app[ENGINE].identify(user, attempt_id, key, by, request.remote or "")
    except EngineError as exc:
        return _error(exc.key, 409)
    except IdentifyRefused as exc:
        return _error(exc.key, exc.status)
    return web.json_response({"ok": True, "found": found})


@require("supervisor")
async def listen(request: web.Request) -> web.Response:
    """Listen in on an operator (their phone session, so the call they are on and the next ones):
    the supervisor's own phone rings. Every listen-in is in the audit log, refused ones too."""
    user = current(request).user
    body = await _json(request)
    operator_id, mode = body.get("operator_id"), body.get("mode", "listen")
    if not is_id(operator_id) or not isinstance(mode, str):
        return _error("error.invalid", 400)
    engine = request.app[ENGINE]
    held = engine.holding(operator_id)
    attempt = held[1].attempt_id if held is not None else None
    detail: dict[str, Any] = {"mode": mode[:16], "attempt_id": attempt}
    try:
        detail["channel_id"] = await engine.listen(user, operator_id, mode)
    except EngineError as exc:
        detail["refused"] = exc.key
    await audit.record(
        request.app[POOL], action="listen", user_id=user.id, department_id=user.department_id,
        object_type="operator", object_id=operator_id, detail=detail, remote_addr=request.remote or "",
    )  # fmt: skip
    if "refused" in detail:
        return _error(detail["refused"], 409)
    return web.json_response({"ok": True, "channel_id": detail["channel_id"]})


@require("supervisor")
async def stop_listening(request: web.Request) -> web.Response:
    """終了: the supervisor's listen-in ends (their phone is hung up), audit-logged."""
    user = current(request).user
    channel_id = (await _json(request)).get("channel_id")
    if not isinstance(channel_id, str) or len(channel_id) > 64:
        return _error("error.invalid", 400)
    try:
        operator_id = await request.app[ENGINE].stop_listening(user, channel_id)
    except EngineError as exc:
        return _error(exc.key, 409)
    await audit.record(
        request.app[POOL], action="listen.stop", user_id=user.id, department_id=user.department_id,
        object_type="operator", object_id=operator_id, detail={"channel_id": channel_id},
        remote_addr=request.remote or "",
    )  # fmt: skip
    return web.json_response({"ok": True})


@require("operator")
async def open_campaigns(request: web.Request) -> web.Response:
    """The campaigns the operator may take calls for now (active, open to them): the page's list
    follows a supervisor's changes without a reload (read again when it is about to be used)."""
    user = current(request).user
    async with db.department(request.app[POOL], user.department_id) as conn:
        active = await campaigns.open_to(conn, user.department_id, user.id)
    return web.json_response([{"id": c.id, "name": c.name, "dial_mode": c.dial_mode} for c in active])


@require("supervisor", "staff", "admin")
async def floor(request: web.Request) -> web.Response:
    user = current(request).user
    engine = request.app[ENGINE]
    agents = [
        {"user_id": s.user.id, "display_name": s.user.display_name, **s.view()}
        for s in engine.slots()
        if user.department_id is None or s.user.department_id == user.department_id
    ]
    if user.department_id is not None:  # the whole team, those not logged in too (as VICIdial shows it)
        here = {a["user_id"] for a in agents}
        async with db.department(request.app[POOL], user.department_id) as conn:
            roster = await campaigns.operators_of(conn, user.department_id)
        agents += [
            {"user_id": uid, "display_name": name, "state": "offline", "since": None, "campaign": None,
             "phone_ready": False, "inbound": False}
            for uid, _, name in roster if uid not in here
        ]  # fmt: skip
    progress = await request.app[PROGRESS].of(request.app[POOL], user.department_id)
    return web.json_response(
        {
            "agents": agents,
            "campaigns": progress,
            "listening": engine.listening(user),
            "pbx_up": all(link.up for link in engine.links),
            "pbx": {link.name: link.up for link in engine.links},
        },
        dumps=lambda o: json.dumps(o, ensure_ascii=False, default=str),
    )


async def session_alive(request: web.Request) -> web.Response:
    """Whether the page's session still holds (web/static/session.js asks, as a poll: not a
    person's doing). A session that has ended never gets here: the middleware answers 401."""
    current(request)
    return web.json_response({"ok": True})


def routes(app: web.Application) -> None:
    app.router.add_get("/api/session", session_alive)
    for name in ("ready", "pause", "dial", "skip", "hangup"):
        app.router.add_post(f"/api/agent/{name}", _handler(name))
    app.router.add_post("/api/dispositions", save_disposition)
    app.router.add_post("/api/inbound/identify", identify)
    app.router.add_get("/api/floor", floor)
    app.router.add_get("/api/agent/campaigns", open_campaigns)
    app.router.add_post("/api/supervisor/listen", listen)
    app.router.add_post("/api/supervisor/listen/stop", stop_listening)
