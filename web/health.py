"""Probes for load balancers and Prometheus."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from dialer.aio import within
from dialer.store.db import UNAVAILABLE
from web.keys import ENGINE, METRICS, POOL


async def _database_ok(request: web.Request) -> bool:
    try:
        await within(2.0, request.app[POOL].fetchval("select 1"))
    except UNAVAILABLE as exc:
        await request.app[ENGINE].db.down(exc, "probe")
        return False
    except asyncpg.PostgresError:
        return False
    return True


async def healthz(request: web.Request) -> web.Response:
    db_ok = await _database_ok(request)
    links = request.app[ENGINE].links
    # Degraded when any server is down: its operators cannot work (the others go on). Out of
    # service (503, for a load balancer) only when nobody can: the database or every server down;
    # with one of several servers down the others' operators still need this web app (admin QA).
    serving = db_ok and any(link.up for link in links)
    body = {
        "status": "ok" if db_ok and all(link.up for link in links) else "degraded",
        "database": "ok" if db_ok else "unreachable",
        "ami": {link.name: "up" if link.up else "down" for link in links},
    }
    return web.json_response(body, status=200 if serving else 503)


async def metrics(request: web.Request) -> web.Response:
    m = request.app[METRICS]
    await _database_ok(request)  # a failure sets dialer_database_up to 0 (dialer.store.watch)
    return web.Response(
        body=m.render(),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Prometheus-Format": "0.0.4"},
    )


def routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
