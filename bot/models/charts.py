"""Charts already sent: Telegram keeps the picture, we keep its file_id by a key that
names what it shows (scope, period and a digest of the figures)."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from bot.models.base import Base, TimestampMixin


class ChartCache(TimestampMixin, Base):
    __tablename__ = "chart_cache"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    file_id: Mapped[str] = mapped_column(String(256))
