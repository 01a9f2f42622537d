"""Creator analytics: dashboard figures, charts (matplotlib) and CSV exports. No aiogram."""
