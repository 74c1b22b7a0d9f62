"""The supervisor's campaign console: create a campaign, tune it, see how many households its
segment matches before it starts, and fill it.

Plain forms (POST with the CSRF field), Post/Redirect/Get after a save. Everything runs inside the
supervisor's department scope (row-level security): another department's campaign is a 404, and a
segment never counts or adds another department's households. Every change, preview and fill is
in the audit log. The engine reads a campaign again before each call, so a saved change applies
at once.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import aiohttp_jinja2
import asyncpg
from aiohttp import web

from campaigns import segments
from campaigns.hours import TOKYO
from dialer.store import audit, campaigns, db
from dialer.store import segments as segment_store
from dialer.store.campaigns import CampaignInfo
from dialer.store.db import Connection
from web import campaign_form
from web.auth import current, require
from web.keys import POOL
from web.pages import ID, context

ACTIONS = ("save", "preview", "fill")


def _id(request: web.Request) -> int:
    return int(request.match_info["id"])  # the route takes 1 to 18 digits: a bigint


async def _choices(conn: Connection, department_id: str | None) -> dict[str, Any]:
    """What the form offers: the department's debt types and operators."""
    rows = await conn.fetch(
        "select distinct debt_type from debt where department_id = $1 order by 1", department_id
    )
    return {
        "debt_types": [r["debt_type"] for r in rows],
        "operators": await campaigns.operators_of(conn, department_id),
    }


def _page(
    request: web.Request,
    c: CampaignInfo,
    fields: dict[str, Any],
    choices: dict[str, Any],
    *,
    status: int = 200,
    **extra: Any,
) -> web.Response:
    # The fields as the page first showed them (kept through error pages: campaign_form.merge).
    extra.setdefault("base", json.dumps(campaign_form.values(c), ensure_ascii=False))
    extra.setdefault("clash", [])
    extra.setdefault("errors", {})
    extra.setdefault("details", {})
    extra.setdefault("english", {})  # the checking code's words: shown on the English page only
    extra.setdefault("script_mine", "")  # a talk script this supervisor wrote that clashed: shown to copy
    ctx = context(
        request, campaign=c, v=fields, debt_types=sorted(set(choices["debt_types"]) | set(fields["s_debt_types"])),
        operators=choices["operators"],
        days=campaign_form.DAYS, retry_keys=campaign_form.RETRY_KEYS, modes=campaign_form.MODES,
        statuses=campaign_form.STATUSES, saved=request.query.get("saved", ""), **extra,
    )  # fmt: skip
    response = aiohttp_jinja2.render_template("campaign.html", request, ctx)
    response.set_status(status)
    return response


@require("supervisor")
async def show(request: web.Request) -> web.StreamResponse:
    user = current(request).user
    async with db.department(request.app[POOL], user.department_id) as conn:
        c = await campaigns.get(conn, _id(request), user.department_id)
        if c is None:
            raise web.HTTPNotFound()
        types = await _choices(conn, user.department_id)
    return _page(request, c, campaign_form.values(c), types, details=campaign_form.notes(c))


@require("supervisor")
async def change(request: web.Request) -> web.StreamResponse:
    user = current(request).user
    posted = await request.post()
    form = {key: [str(v) for v in posted.getall(key)] for key in set(posted.keys())}
    action = (form.get("action") or [""])[0]
    if action not in ACTIONS:
        raise web.HTTPBadRequest(text="unknown action")
    today = datetime.now(TOKYO).date()
    async with db.department(request.app[POOL], user.department_id) as conn:
        c = await campaigns.get(conn, _id(request), user.department_id)
        if c is None:
            raise web.HTTPNotFound()
        types = await _choices(conn, user.department_id)

        async def logged(what: str, detail: dict[str, Any]) -> None:
            await audit.record(
                conn, action=f"campaign.{what}", user_id=user.id, department_id=user.department_id,
                object_type="campaign", object_id=c.id, detail=detail, remote_addr=request.remote or "",
            )  # fmt: skip

        if action == "fill":  # the stored rules, not the form's (save first)
            try:
                stored = segments.parse(c.segment)
            except segments.SegmentError as exc:
                return _page(request, c, campaign_form.values(c), types, status=422,
                             errors={"segment": "camp.err.segment"}, english={"segment": str(exc)})  # fmt: skip
            filled = await segment_store.fill(conn, c.id, c.department_id, stored, today)
            await logged(
                "fill", {"matched": filled.matched, "added": filled.added, "set_aside": filled.set_aside}
            )
            return _page(
                request, c, campaign_form.values(c), types, filled=filled, details=campaign_form.notes(c)
            )
        parsed = campaign_form.read(form)
        fields = campaign_form.submitted(form)
        base_form = campaign_form.base_of((form.get("base") or [""])[0])
        base = campaign_form.read(base_form) if base_form is not None else None
        if base is None or base.errors:
            base, base_text = None, json.dumps(campaign_form.values(c), ensure_ascii=False)
        else:
            base_text = (form.get("base") or [""])[0]
        if parsed.errors:
            return _page(request, c, fields, types, status=422, errors=parsed.errors, details=parsed.details,
                         english=parsed.english, base=base_text)  # fmt: skip
        if action == "preview":  # the form's rules, stored or not
            segment = segments.parse(parsed.changes["segment"])
            seen = await segment_store.preview(conn, c.id, c.department_id, segment, today)
            await logged("preview", {"households": seen.households})
            return _page(request, c, fields, types, preview=seen, details=parsed.details, base=base_text)
        stored_fields = campaign_form.values(c)
        mine, clash = campaign_form.merge(
            parsed, base, campaign_form.read(campaign_form.as_form(stored_fields))
        )
        if clash:  # changed here and, differently, by someone else since the page was opened
            # The page is based on the campaign as it is now: what this supervisor changed (and no
            # one else) stays as typed; everything else, the clashes too, is shown as stored (shown
            # with the old values, another's change would be written back by the next save).
            kept = [k for k in mine if k not in clash]
            shown = dict(stored_fields)
            shown |= {k: v for k, v in fields.items() if any(campaign_form.fields_of(x)(k) for x in kept)}
            # a talk script is long free text: what this supervisor wrote is shown beside it, to copy
            script_mine = parsed.changes.get("script", "") if "script" in clash else ""
            return _page(request, c, shown, types, status=409, clash=clash, details=parsed.details,
                         base=json.dumps(stored_fields, ensure_ascii=False), script_mine=script_mine)  # fmt: skip
        changed = sorted(k for k in mine if k != "operators" and getattr(c, k) != parsed.changes[k])
        if "name" in changed and await campaigns.name_taken(
            conn, c.department_id, parsed.changes["name"], c.id
        ):
            return _page(
                request, c, fields, types, status=422, errors={"name": "camp.err.name_taken"}, base=base_text
            )
        try:
            async with conn.transaction():  # all of it or nothing (a savepoint)
                if "operators" in mine and set(parsed.operators) != set(c.operators):
                    await campaigns.set_operators(conn, c.id, parsed.operators)
                    changed.append("operators")
                if changed:
                    await campaigns.update(
                        conn, c.id, {k: parsed.changes[k] for k in changed if k != "operators"}
                    )
        except campaigns.NotOperators:
            return _page(request, c, fields, types, status=422, errors={"operators": "camp.err.operators"},
                         base=base_text)  # fmt: skip
        except asyncpg.UniqueViolationError:  # renamed at the same moment by someone else
            return _page(request, c, fields, types, status=422, errors={"name": "camp.err.name_taken"},
                         base=base_text)  # fmt: skip
        if changed:  # (a script's wording: who wrote what, before and after)
            script = (
                {"script": {"before": c.script, "after": parsed.changes["script"]}}
                if "script" in changed
                else {}
            )
            await logged("update", {"changed": sorted(changed), **script})
    # new rules change the list only when it is filled again: the page says so, with the button
    raise web.HTTPSeeOther(f"/supervisor/campaigns/{c.id}?saved={'segment' if 'segment' in changed else '1'}")


@require("supervisor")
async def create(request: web.Request) -> web.StreamResponse:
    user = current(request).user
    posted = await request.post()
    name = campaigns.clean_name(str(posted.get("name", "")))
    mode = str(posted.get("dial_mode", "preview"))
    if name is None:
        raise web.HTTPSeeOther("/supervisor?error=camp.err.name")
    if mode not in campaign_form.MODES:
        raise web.HTTPSeeOther("/supervisor?error=camp.err.choice")
    assert user.department_id is not None
    async with db.department(request.app[POOL], user.department_id) as conn:
        if await campaigns.name_taken(conn, user.department_id, name):
            raise web.HTTPSeeOther("/supervisor?error=camp.err.name_taken")
        try:
            async with conn.transaction():
                cid = await campaigns.create(conn, user.department_id, name, mode, "")
        except asyncpg.UniqueViolationError:  # created at the same moment by someone else
            raise web.HTTPSeeOther("/supervisor?error=camp.err.name_taken") from None
        await audit.record(
            conn, action="campaign.create", user_id=user.id, department_id=user.department_id,
            object_type="campaign", object_id=cid, detail={"name": name, "dial_mode": mode},
            remote_addr=request.remote or "",
        )  # fmt: skip
    raise web.HTTPSeeOther(f"/supervisor/campaigns/{cid}")


def routes(app: web.Application) -> None:
    app.router.add_get(f"/supervisor/campaigns/{ID}", show)
    app.router.add_post(f"/supervisor/campaigns/{ID}", change)
    app.router.add_post("/supervisor/campaigns", create)
