"""Creator analytics: sources, daily rollups, the /stats dashboard's figures, nudges,
charts (matplotlib) and CSV exports.

No aiogram in here: services take an AsyncSession and return plain dataclasses.
"""
