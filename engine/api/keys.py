"""The typed application keys the handlers read: settings, the database pool, the use-case context."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from engine.services.context import Context
from engine.settings import EngineSettings

SETTINGS = web.AppKey("settings", EngineSettings)
POOL = web.AppKey("pool", asyncpg.Pool)
CONTEXT = web.AppKey("context", Context)
