"""Updates and webhooks: getUpdates (offsets, long polling, 409 conflicts) and webhook
delivery (secret header, per-chat ordering, retries with backoff, a method in the reply).
The queue itself is the core's (``push_update``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import aiohttp

from sandbox.core import ApiError, SandboxCore, bad

log = logging.getLogger(__name__)


class UpdatesApi(SandboxCore):
    # Outlives reset(): one HTTP client for webhook deliveries, closed by shutdown().
    _http: aiohttp.ClientSession | None = None

    def reset(self) -> None:
        super().reset()
        self.webhook: dict[str, Any] | None = None
        self.webhook_errors: dict[str, Any] = {}
        self._poll_generation = 0
        self._poll_interrupts = 0
        self._webhook_task: asyncio.Task[None] | None = None
        self._delivery_tasks: set[asyncio.Task[None]] = set()

    async def shutdown(self) -> None:
        await super().shutdown()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        for task in list(self._delivery_tasks):
            task.cancel()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def api_getUpdates(self, p: dict[str, Any]) -> Any:
        if self.webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use "
                "deleteWebhook to delete the webhook first",
            )
        if p.get("allowed_updates") is not None:
            self.allowed_updates = list(p["allowed_updates"])
        offset = p.get("offset")
        self.confirm(offset)
        limit = min(max(p.get("limit") or 100, 1), 100)
        timeout = min(max(p.get("timeout") or 0, 0), self.config.max_poll_timeout)
        self._poll_generation += 1
        generation = self._poll_generation

        interrupts = self._poll_interrupts

        def ready() -> bool:
            return (
                bool(self.updates)
                or generation != self._poll_generation
                or interrupts != self._poll_interrupts
                or self._stopping
            )

        if not self.updates and timeout > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout), self.updates_changed:
                    await self.updates_changed.wait_for(ready)
        if interrupts != self._poll_interrupts:
            return []
        if generation != self._poll_generation:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only one bot "
                "instance is running",
            )
        return self.updates[:limit]

    async def interrupt_polling(self) -> None:
        """End every waiting getUpdates now with no updates (a bot shutting down need not
        wait out its long-poll timeout)."""
        self._poll_interrupts += 1
        await self._notify(self.updates_changed)

    def confirm(self, offset: int | None) -> None:
        """Telegram's offset: every update below it is confirmed and forgotten;
        a negative offset keeps only the last -offset updates."""
        if offset is None:
            return
        if offset < 0:
            self.updates = self.updates[offset:]
        else:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]

    # --- webhooks -------------------------------------------------------------------------------

    async def api_setWebhook(self, p: dict[str, Any]) -> Any:
        url = p["url"]
        if not url:
            return await self.api_deleteWebhook(p)
        if not url.startswith(("http://", "https://")):
            raise bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        secret = p.get("secret_token")
        if secret is not None and (
            not 1 <= len(secret) <= 256 or not all(c.isalnum() or c in "_-" for c in secret)
        ):
            raise bad("secret token contains unallowed characters")
        max_conn = p.get("max_connections") or 40
        if not 1 <= max_conn <= 100:
            raise bad("bad webhook: max_connections must be between 1 and 100")
        if p.get("drop_pending_updates"):
            self.updates.clear()
        if p.get("allowed_updates") is not None:
            self.allowed_updates = list(p["allowed_updates"])
        self.webhook = {"url": url, "secret_token": secret, "max_connections": max_conn}
        self.webhook_errors = {}
        self._poll_generation += 1  # a waiting getUpdates ends with 409
        await self._notify(self.updates_changed)
        self.start_webhook_delivery()
        return True

    async def api_deleteWebhook(self, p: dict[str, Any]) -> Any:
        if p.get("drop_pending_updates"):
            self.updates.clear()
        self.webhook = None
        await self._notify(self.updates_changed)
        return True

    async def api_getWebhookInfo(self, p: dict[str, Any]) -> Any:
        out: dict[str, Any] = {
            "url": self.webhook["url"] if self.webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.updates),
        }
        if self.webhook:
            out["max_connections"] = self.webhook["max_connections"]
            if self.allowed_updates:
                out["allowed_updates"] = list(self.allowed_updates)
            if self.webhook_errors:
                out["last_error_date"] = self.webhook_errors["date"]
                out["last_error_message"] = self.webhook_errors["message"]
        return out

    def start_webhook_delivery(self) -> None:
        """Deliver to the webhook in the background while the server runs."""
        if not self.serving:
            return
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.get_running_loop().create_task(self._webhook_loop())

    @staticmethod
    def update_key(update: dict[str, Any]) -> Any:
        """Updates about one chat (or user) are delivered in order, one at a time."""
        body = next(v for k, v in update.items() if k != "update_id")
        if "chat" in body:
            return ("chat", body["chat"]["id"])
        if "message" in body and isinstance(body["message"], dict):
            return ("chat", body["message"]["chat"]["id"])
        if "from" in body:
            return ("user", body["from"]["id"])
        return ("update", update["update_id"])

    async def _webhook_loop(self) -> None:
        inflight: dict[int, Any] = {}
        retry_at: dict[int, float] = {}
        attempts: dict[int, int] = {}
        while True:
            if self.webhook is None:
                async with self.updates_changed:
                    await self.updates_changed.wait_for(lambda: self.webhook is not None)
                continue
            busy = set(inflight.values())
            now = time.monotonic()
            next_wake = 1.0
            for update in list(self.updates):
                if len(inflight) >= self.webhook["max_connections"]:
                    break
                uid = update["update_id"]
                key = self.update_key(update)
                if uid in inflight or key in busy:
                    continue
                when = retry_at.get(uid, 0.0)
                if when > now:
                    busy.add(key)  # keep per-chat order behind the failing update
                    next_wake = min(next_wake, when - now)
                    continue
                inflight[uid] = key
                busy.add(key)
                task = asyncio.get_running_loop().create_task(
                    self._deliver(update, inflight, retry_at, attempts)
                )
                self._delivery_tasks.add(task)
                task.add_done_callback(self._delivery_tasks.discard)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(next_wake, 0.01)), self.updates_changed:
                    await self.updates_changed.wait()

    async def _deliver(
        self,
        update: dict[str, Any],
        inflight: dict[int, Any],
        retry_at: dict[int, float],
        attempts: dict[int, int],
    ) -> None:
        uid = update["update_id"]
        webhook = self.webhook
        try:
            if webhook is None:
                return
            if self._http is None:
                self._http = aiohttp.ClientSession()
            headers = {"Content-Type": "application/json"}
            if webhook["secret_token"]:
                headers["X-Telegram-Bot-Api-Secret-Token"] = webhook["secret_token"]
            error: str | None = None
            reply: Any = None
            try:
                async with self._http.post(
                    webhook["url"],
                    data=json.dumps(update),
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout),
                ) as resp:
                    if 200 <= resp.status < 300:
                        body = await resp.read()
                        if body:
                            with contextlib.suppress(ValueError):
                                reply = json.loads(body)
                    else:
                        error = f"Wrong response from the webhook: {resp.status} {resp.reason}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = f"Connection failed: {type(exc).__name__}"
            if error is None:
                self.updates = [u for u in self.updates if u["update_id"] != uid]
                retry_at.pop(uid, None)
                attempts.pop(uid, None)
                if isinstance(reply, dict) and reply.get("method"):
                    await self._webhook_reply(reply)
            else:
                n = attempts.get(uid, 0) + 1
                attempts[uid] = n
                delay = min(
                    self.config.webhook_retry_delay * 2 ** (n - 1),
                    self.config.webhook_max_retry_delay,
                )
                retry_at[uid] = time.monotonic() + delay
                self.webhook_errors = {"date": self.now(), "message": error}
        finally:
            inflight.pop(uid, None)
            await self._notify(self.updates_changed)

    async def _webhook_reply(self, reply: dict[str, Any]) -> None:
        """A bot may answer a webhook request with one method call (Telegram runs it)."""
        name = self.spec.method_name(str(reply.pop("method")))
        if name is None:
            self.violation("unknown_method", "webhook reply", reply)
            return
        result = await self.call(name, reply, from_json=True)
        if not result["ok"]:
            log.info("webhook reply %s failed: %s", name, result["description"])
