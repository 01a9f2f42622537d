"""Course discovery: fuzzy search and the hybrid recommender. Pure: no DB, no aiogram."""

from bot.recommend.model import Interaction, Profile, Recommender
from bot.recommend.search import SearchHit, SearchIndex
from bot.recommend.text import CourseDoc

__all__ = ["CourseDoc", "Interaction", "Profile", "Recommender", "SearchHit", "SearchIndex"]
