"""/healthz and /metrics over HTTP: on the webhook server, or on a small listener of
their own (METRICS_PORT; the only HTTP server in polling mode)."""

from __future__ import annotations

import json

from aiohttp import web

from bot.ops import metrics
from bot.ops.health import HealthProbe

PROBE = web.AppKey("lyceum_health_probe", HealthProbe)


async def healthz(request: web.Request) -> web.Response:
    healthy, report = await request.app[PROBE].check()
    return web.Response(
        status=200 if healthy else 503,
        text=json.dumps(report, sort_keys=True),
        content_type="application/json",
    )


async def metrics_endpoint(request: web.Request) -> web.Response:
    await request.app[PROBE].refresh_gauges()
    response = web.Response(body=metrics.render())
    response.headers["Content-Type"] = metrics.CONTENT_TYPE
    return response


def add_routes(web_app: web.Application, probe: HealthProbe) -> None:
    web_app[PROBE] = probe
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/metrics", metrics_endpoint)


async def start_server(probe: HealthProbe, host: str, port: int) -> web.AppRunner:
    web_app = web.Application()
    add_routes(web_app, probe)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
