"""A local Telegram Bot API server and the learner's side, for tests, demos and benchmarks.

The bot never imports this package; point it at ``SandboxServer.api_url`` through
TELEGRAM_API_URL instead.
"""

from sandbox.core import ApiError
from sandbox.limits import RateLimits, SandboxConfig
from sandbox.server import SandboxServer

__all__ = ["ApiError", "RateLimits", "SandboxConfig", "SandboxServer"]
