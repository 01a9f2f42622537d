"""Domain logic. Plain async functions over an AsyncSession; never imports aiogram."""
