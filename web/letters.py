"""催告書 on a page: a campaign's households that could not be reached by phone, counted, then listed
as CSV for the reminder letters (dialer/store/letters.py). Municipal staff, their own department.

Counting names nobody and records nothing; the list records each household's letter and is in the
audit log (the store does both in the transaction that reads it).
"""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp_jinja2
from aiohttp import web

from dialer.store import campaigns, db, letters
from web.auth import current, require
from web.exports import csv_download
from web.keys import POOL
from web.pages import context


def _asked(values: Mapping[str, object]) -> tuple[int | None, int, str]:
    """(campaign id or None, again days, error key or '') from the form or the query."""
    typed_campaign, typed_again = (
        str(values.get("campaign", ""))[:20],
        str(values.get("again", "")).strip()[:6],
    )
    again = letters.AGAIN_DAYS
    if typed_again:
        if not typed_again.isdecimal():  # 0-9 after NFKC is what int() reads; '３０' typed is fine
            return None, again, "let.err.again"
        again = int(typed_again)
    if not typed_campaign:
        return None, again, ""
    if not typed_campaign.isdecimal() or len(typed_campaign) > 18:  # (18 digits: a bigint, as routes' ids)
        return None, again, "let.err.campaign"
    return int(typed_campaign), again, ""


async def _page(
    request: web.Request, campaign_id: int | None, again: int, *, error: str = "",
    counted: letters.Count | None = None, nothing: bool = False,
) -> web.Response:  # fmt: skip
    user = current(request).user
    async with db.department(request.app[POOL], user.department_id) as conn:
        choices = await campaigns.listed(conn, user.department_id)
    ctx = context(request, campaigns=choices, campaign_id=campaign_id, again=again, error=error, counted=counted,
                  nothing=nothing)  # fmt: skip
    response = aiohttp_jinja2.render_template("letters.html", request, ctx)
    response.set_status(503 if error == "rep.too_slow" else 422 if error else 200)
    return response


@require("staff")
async def letters_page(request: web.Request) -> web.StreamResponse:
    user = current(request).user
    assert user.department_id is not None  # staff belong to a department
    campaign_id, again, error = _asked(request.query)
    if error or campaign_id is None:
        return await _page(request, campaign_id, again, error=error)
    try:
        async with db.department(request.app[POOL], user.department_id) as conn:
            counted = await letters.count(conn, campaign_id, user.department_id, again)
    except letters.LetterError as exc:
        return await _page(request, campaign_id, again, error=exc.key)
    except TimeoutError:
        return await _page(request, campaign_id, again, error="rep.too_slow")
    return await _page(request, campaign_id, again, counted=counted)


@require("staff")
async def download(request: web.Request) -> web.StreamResponse:
    user = current(request).user
    assert user.department_id is not None
    campaign_id, again, error = _asked(await request.post())
    if campaign_id is None:
        return await _page(request, None, again, error=error or "let.err.campaign")
    if error:
        return await _page(request, campaign_id, again, error=error)
    try:
        made = await letters.make(
            request.app[POOL], campaign_id=campaign_id, department_id=user.department_id, user_id=user.id,
            via="web", again_days=again, remote_addr=request.remote or "",
        )  # fmt: skip
    except letters.LetterError as exc:
        return await _page(request, campaign_id, again, error=exc.key)
    except TimeoutError:
        return await _page(request, campaign_id, again, error="rep.too_slow")
    if made.rows == 0:
        return await _page(request, campaign_id, again, nothing=True)
    return csv_download(made.data, made.encoding, made.filename)


@require("staff")
async def last_again(request: web.Request) -> web.StreamResponse:
    user = current(request).user
    assert user.department_id is not None
    campaign_id, again, _ = _asked(await request.post())
    if campaign_id is None:
        return await _page(request, None, again, error="let.err.campaign")
    try:
        made = await letters.last_again(
            request.app[POOL], campaign_id=campaign_id, department_id=user.department_id, user_id=user.id,
            via="web", remote_addr=request.remote or "",
        )  # fmt: skip
    except letters.LetterError as exc:
        return await _page(request, campaign_id, again, error=exc.key)
    except TimeoutError:
        return await _page(request, campaign_id, again, error="rep.too_slow")
    return csv_download(made.data, made.encoding, made.filename)


def routes(app: web.Application) -> None:
    app.router.add_get("/staff/letters", letters_page)
    app.router.add_post("/staff/letters", download)
    app.router.add_post("/staff/letters/last", last_again)
