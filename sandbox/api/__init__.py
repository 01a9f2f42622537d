"""The Bot API by area. ``Sandbox`` is the whole simulated Telegram with no HTTP around it;
``sandbox.server.SandboxServer`` serves it, ``sandbox.control`` drives the users' side."""

from sandbox.api.chats import ChatsApi
from sandbox.api.commands import BotProfileApi
from sandbox.api.files import FilesApi
from sandbox.api.inline import InlineApi
from sandbox.api.messages import MessagesApi
from sandbox.api.payments import PaymentsApi
from sandbox.api.polls import PollsApi
from sandbox.api.updates import UpdatesApi


class Sandbox(
    FilesApi, PaymentsApi, PollsApi, MessagesApi, ChatsApi, UpdatesApi, InlineApi, BotProfileApi
):
    """One bot's world: every area on one shared core (``sandbox.core.SandboxCore``).

    Files, payments and polls build on messages (a photo, an invoice or a quiz is a message the
    bot sends),
    so they come before it here; Python's method order then runs each area's ``reset`` once."""


__all__ = ["Sandbox"]
