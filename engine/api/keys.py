"""The typed keys the handlers read: settings and the use-case context on the application,
the authenticated caller on the request."""

from __future__ import annotations

from aiohttp import web

from engine.metrics import EngineMetrics
from engine.services.context import Context
from engine.settings import EngineSettings

SETTINGS = web.AppKey("settings", EngineSettings)
CONTEXT = web.AppKey("context", Context)
METRICS = web.AppKey("metrics", EngineMetrics)
CALLER = "caller"  # request key: the Caller the auth middleware recognised
