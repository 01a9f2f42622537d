"""The sandbox served over HTTP: a local Telegram Bot API server (aiohttp).

``/bot<token>/<method>`` and ``/file/bot<token>/<path>`` speak the Bot API (the methods live
in ``sandbox/api/`` by area); ``/sandbox/api/`` is the learner's side and ``/`` the web chat
(both in control.py).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sandbox.api import Sandbox
from sandbox.control import setup_control_routes
from sandbox.core import ApiError, bad
from sandbox.spec import FileUpload

__all__ = ["ApiError", "SandboxServer"]


class SandboxServer(Sandbox):
    """One bot's world. ``await start(host, port)``, drive it, ``await stop()``."""

    _runner: web.AppRunner | None = None

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_bot_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        setup_control_routes(app, self)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 = any free port); returns the base URL."""
        self._runner = web.AppRunner(self.make_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        real_port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.base_url = f"http://{host}:{real_port}"
        self.serving = True
        self.start_webhook_delivery()
        return self.base_url

    async def stop(self) -> None:
        await self.shutdown()
        self.serving = False
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_url(self) -> str:
        """TELEGRAM_API_URL for the bot (aiogram's TelegramAPIServer.from_base)."""
        return self.base_url

    @property
    def chat_url(self) -> str:
        return f"{self.base_url}/"

    # --- the Bot API over HTTP ----------------------------------------------------------------

    async def _handle_bot_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _json(ApiError(401, "Unauthorized").to_json(), 401)
        name = self.spec.method_name(request.match_info["method"])
        if name is None:
            return _json(ApiError(404, "Not Found").to_json(), 404)
        try:
            raw, from_json = await _read_params(request)
        except ValueError:
            return _json(bad("can't parse request body").to_json(), 400)
        response = await self.call(name, raw, from_json=from_json)
        return _json(response, 200 if response["ok"] else response["error_code"])

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            raise web.HTTPUnauthorized()
        f = self.file_by_path(request.match_info["path"])
        if f is None:
            raise web.HTTPNotFound()
        return web.Response(body=f.data, content_type=f.mime_type or "application/octet-stream")


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False), status=status, content_type="application/json"
    )


async def _read_params(request: web.Request) -> tuple[dict[str, Any], bool]:
    params: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return params, False
    ctype = request.content_type
    if ctype == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("JSON body is not an object")
        params.update(body)
        return params, True
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            params[key] = FileUpload(
                filename=value.filename, content_type=value.content_type, data=value.file.read()
            )
        else:
            params[key] = value
    # aiogram (and Telegram's docs) name an upload by "attach://<part>" in the field itself.
    for key, value in list(params.items()):
        if isinstance(value, str) and value.startswith("attach://"):
            part = value[len("attach://") :]
            if isinstance(params.get(part), FileUpload):
                params[key] = params.pop(part)
    return params, False
