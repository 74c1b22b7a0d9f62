"""Typed application keys: what the composition root hands to the web layer."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from campaigns.engine import Engine
from dialer.ami.link import AmiLink
from dialer.config import Settings
from dialer.metrics import Metrics
from web.push import Hub

POOL = web.AppKey("pool", asyncpg.Pool)
ENGINE = web.AppKey("engine", Engine)
HUB = web.AppKey("hub", Hub)
METRICS = web.AppKey("metrics", Metrics)
SETTINGS = web.AppKey("settings", Settings)
LINK = web.AppKey("link", AmiLink)
