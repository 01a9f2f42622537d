"""Lyceum: a self-hosted Telegram storefront for paid knowledge."""

__version__ = "0.1.0"
