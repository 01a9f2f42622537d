"""Inline keyboards and CallbackData factories (each packed value stays within 64 bytes)."""
