"""The web application: pages, JSON API, WebSocket pushes, probes."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import asyncpg
import jinja2
from aiohttp import web

from campaigns.fleet import Fleet
from dialer.config import Settings
from dialer.metrics import Metrics
from web import api, campaigns, data, exports, handovers, health, letters, live, pages, reports, retention
from web.auth import SESSIONS, SessionCache, security_headers, session_middleware
from web.error_pages import error_pages
from web.i18n import (
    date_for_page,
    fiscal_year_for_page,
    phone_display,
    tokyo_time,
    translate,
    translate_count,
    yen_for_page,
)
from web.keys import ENGINE, HUB, METRICS, POOL, SETTINGS
from web.outage import database_errors
from web.progress import PROGRESS, Progress
from web.push import Hub

HERE = Path(__file__).parent


def build(
    *, pool: asyncpg.Pool, engine: Fleet, hub: Hub, metrics: Metrics, settings: Settings
) -> web.Application:
    app = web.Application(
        middlewares=[error_pages, database_errors, session_middleware], client_max_size=256 * 1024
    )
    app.on_response_prepare.append(security_headers)
    app[POOL] = pool
    app[ENGINE] = engine
    app[HUB] = hub
    app[METRICS] = metrics
    app[SETTINGS] = settings
    app[SESSIONS] = SessionCache()
    app[PROGRESS] = Progress()
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(t=translate, tn=translate_count)
    env.filters.update(
        wareki=date_for_page,
        fiscal_year=fiscal_year_for_page,
        yen=yen_for_page,
        phone=phone_display,
        tokyo=tokyo_time,
    )
    pages.routes(app)
    data.routes(app)
    exports.routes(app)
    reports.routes(app)
    handovers.routes(app)
    letters.routes(app)
    retention.routes(app)
    api.routes(app)
    campaigns.routes(app)
    health.routes(app)
    app.router.add_get("/ws", live.websocket)
    app.router.add_static("/static/", HERE / "static", name="static", append_version=True)
    return app
