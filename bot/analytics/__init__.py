"""Creator analytics: sources, daily rollups, the /stats dashboard's figures, nudges.

No aiogram in here: services take an AsyncSession and return plain dataclasses.
"""
