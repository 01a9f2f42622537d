"""The marketplace between creators and learners: reviews and ratings, creator profiles
and follows, and creator matching. Plain async functions over an AsyncSession; no aiogram.
"""
