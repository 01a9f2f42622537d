"""Outer middlewares on every update: throttling, DB session, current user, i18n."""
