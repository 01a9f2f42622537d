"""Just enough of the W3C WebDriver protocol (chromedriver's HTTP API) over aiohttp to drive
headless Chromium from a test — no selenium or playwright needed."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1200,900",
]


def available() -> str | None:
    """None when Chromium and chromedriver are installed, else why not."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is absent (apt-get install chromium chromium-driver)"
    if not (Path(CHROMEDRIVER).exists() or shutil.which("chromedriver")):
        return f"{CHROMEDRIVER} is absent (apt-get install chromium-driver)"
    return None


def _driver_path() -> str:
    return CHROMEDRIVER if Path(CHROMEDRIVER).exists() else str(shutil.which("chromedriver"))


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


class WebDriverError(RuntimeError):
    pass


class Browser:
    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.base = ""
        self.session_id = ""
        self.http: aiohttp.ClientSession | None = None
        self.profile = tempfile.TemporaryDirectory(prefix="lyceum-chromium-")

    async def start(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        driver = _driver_path()
        self.proc = await asyncio.create_subprocess_exec(
            driver, f"--port={port}",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        self.base = f"http://127.0.0.1:{port}"
        self.http = aiohttp.ClientSession()
        deadline = time.monotonic() + 15
        while True:
            try:
                async with self.http.get(f"{self.base}/status") as r:
                    if (await r.json())["value"].get("ready"):
                        break
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise WebDriverError("chromedriver did not start")
            await asyncio.sleep(0.1)
        caps = {
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [*CHROMIUM_ARGS, f"--user-data-dir={self.profile.name}"],
                    },
                }
            }
        }
        value = await self._call("POST", "/session", caps, session=False)
        self.session_id = value["sessionId"]

    async def stop(self) -> None:
        if self.http is not None:
            if self.session_id:
                with contextlib.suppress(Exception):
                    await self._call("DELETE", "")
            await self.http.close()
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 5)
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        self.profile.cleanup()

    async def _call(
        self, method: str, path: str, payload: dict[str, Any] | None = None, session: bool = True
    ) -> Any:
        assert self.http is not None
        url = f"{self.base}/session/{self.session_id}{path}" if session else self.base + path
        async with self.http.request(method, url, json=payload) as r:
            data = await r.json()
        if r.status >= 400:
            raise WebDriverError(f"{method} {path}: {data.get('value')}")
        return data.get("value")

    async def get(self, url: str) -> None:
        await self._call("POST", "/url", {"url": url})

    async def find(self, css: str) -> str:
        value = await self._call("POST", "/element", {"using": "css selector", "value": css})
        return str(value[ELEMENT])

    async def type(self, css: str, text: str) -> None:
        await self._call("POST", f"/element/{await self.find(css)}/value", {"text": text})

    async def click(self, css: str) -> None:
        await self._call("POST", f"/element/{await self.find(css)}/click", {})

    async def run(self, script: str, *args: Any) -> Any:
        return await self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    async def wait_for(self, script: str, *args: Any, timeout: float = 10.0) -> Any:
        """Until the script returns something truthy."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.run(script, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for: {script}")
            await asyncio.sleep(0.1)

    async def screenshot(self, path: Path) -> None:
        png = await self._call("GET", "/screenshot")
        _write(path, base64.b64decode(png))
