"""Callback queries and inline queries: the bot's answers (the user's side is control.py)."""

from __future__ import annotations

from typing import Any

from sandbox.core import QUERY_INVALID, SandboxCore, bad


class InlineApi(SandboxCore):
    def reset(self) -> None:
        super().reset()
        self.callback_queries: dict[str, dict[str, Any]] = {}
        self.inline_queries: dict[str, dict[str, Any]] = {}

    async def api_answerCallbackQuery(self, p: dict[str, Any]) -> Any:
        q = self.callback_queries.get(p["callback_query_id"])
        if q is None or q["answered"]:
            raise bad(QUERY_INVALID.removeprefix("Bad Request: "))
        text = p.get("text")
        if text and len(text) > 200:
            raise bad("MESSAGE_TOO_LONG")
        q.update(answered=True, text=text, show_alert=bool(p.get("show_alert")), url=p.get("url"))
        self.bump()
        return True

    async def api_answerInlineQuery(self, p: dict[str, Any]) -> Any:
        q = self.inline_queries.get(p["inline_query_id"])
        if q is None or q["answered"]:
            raise bad(QUERY_INVALID.removeprefix("Bad Request: "))
        if len(p["results"]) > 50:
            raise bad("RESULTS_TOO_MUCH")
        ids = [r.get("id") for r in p["results"]]
        if len(set(ids)) != len(ids):
            raise bad("RESULT_ID_DUPLICATE")
        q.update(answered=True, results=p["results"], next_offset=p.get("next_offset", ""))
        self.bump()
        return True
