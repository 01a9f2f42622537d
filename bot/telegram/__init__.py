"""Adapters from our services' ports to aiogram (Stars, the scheduler's sender).

Services and the scheduler declare small protocols and never import aiogram; the
handlers and app.py build these adapters and hand them in.
"""
