"""The bot itself: getMe, logOut/close, and its command menus per scope and language."""

from __future__ import annotations

from typing import Any

from sandbox.core import SandboxCore, bad
from sandbox.state import UserState


class BotProfileApi(SandboxCore):
    def reset(self) -> None:
        super().reset()
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}

    async def api_getMe(self, p: dict[str, Any]) -> Any:
        me = self.bot_user.to_tg()
        me.update(
            can_join_groups=True,
            can_read_all_group_messages=False,
            supports_inline_queries=True,
            can_connect_to_business=False,
            has_main_web_app=False,
        )
        return me

    async def api_logOut(self, p: dict[str, Any]) -> Any:
        return True

    async def api_close(self, p: dict[str, Any]) -> Any:
        return True

    # --- commands -------------------------------------------------------------------------------

    @staticmethod
    def scope_key(scope: dict[str, Any] | None) -> str:
        if not scope:
            return "default"
        key = scope.get("type", "default")
        if "chat_id" in scope:
            key += f":{scope['chat_id']}"
        if "user_id" in scope:
            key += f":{scope['user_id']}"
        return key

    async def api_setMyCommands(self, p: dict[str, Any]) -> Any:
        commands = p["commands"]
        if len(commands) > 100:
            raise bad("BOT_COMMANDS_TOO_MUCH")
        for c in commands:
            cmd = c["command"]
            if not (1 <= len(cmd) <= 32) or not all(ch.isalnum() or ch == "_" for ch in cmd):
                raise bad("BOT_COMMAND_INVALID")
            if cmd.lower() != cmd:
                raise bad("BOT_COMMAND_INVALID")
            if not 1 <= len(c["description"]) <= 256:
                raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
        key = (self.scope_key(p.get("scope")), p.get("language_code") or "")
        self.commands[key] = [{"command": c["command"], "description": c["description"]}
                              for c in commands]  # fmt: skip
        return True

    async def api_getMyCommands(self, p: dict[str, Any]) -> Any:
        key = (self.scope_key(p.get("scope")), p.get("language_code") or "")
        return self.commands.get(key, [])

    async def api_deleteMyCommands(self, p: dict[str, Any]) -> Any:
        key = (self.scope_key(p.get("scope")), p.get("language_code") or "")
        self.commands.pop(key, None)
        return True

    def commands_for(self, user: UserState) -> list[dict[str, Any]]:
        """What the user's command menu shows in the private chat."""
        langs = [user.language_code or "", ""] if user.language_code else [""]
        for scope in (f"chat:{user.id}", "all_private_chats", "default"):
            for lang in langs:
                if (scope, lang) in self.commands:
                    return self.commands[(scope, lang)]
        return []
