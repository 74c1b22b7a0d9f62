"""Typed application keys: what the composition root hands to the web layer."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from campaigns.fleet import Fleet
from dialer.config import Settings
from dialer.metrics import Metrics
from web.push import Hub

POOL = web.AppKey("pool", asyncpg.Pool)
ENGINE = web.AppKey("engine", Fleet)  # one engine per Asterisk server
HUB = web.AppKey("hub", Hub)
METRICS = web.AppKey("metrics", Metrics)
SETTINGS = web.AppKey("settings", Settings)
