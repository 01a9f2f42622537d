"""CallbackData factories. Short prefixes keep every packed value far below 64 bytes."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData


class MenuAction(StrEnum):
    HOME = "home"
    CATALOG = "cat"
    SEARCH = "srch"
    LIBRARY = "lib"
    RECOMMEND = "rec"
    HELP = "help"
    LANGUAGE = "lang"
    INTERESTS = "int"
    CREATORS = "crt"


class MenuCB(CallbackData, prefix="m"):
    action: MenuAction


class LangCB(CallbackData, prefix="l"):
    code: str


class BothLangCB(CallbackData, prefix="lb"):
    # "both": courses in both languages ranked alike; "mine": the learner's first.
    mode: str


class InterestCB(CallbackData, prefix="i"):
    # "" means "done"; otherwise a topic key to toggle.
    key: str


class PageCB(CallbackData, prefix="p"):
    page: int


class CourseCB(CallbackData, prefix="c"):
    id: int
    # The catalog page to go back to; -1 when the card was opened from elsewhere.
    back: int = -1
    # Where the card was opened from (bot.analytics.sources.number); 0: not said.
    src: int = 0


class SimilarCB(CallbackData, prefix="sim"):
    id: int


class BuyCB(CallbackData, prefix="b"):
    id: int


class GiftCB(CallbackData, prefix="gf"):
    """Buy a course as a gift (bot.growth.gifts): the choice of method."""

    id: int


class GiftPayCB(CallbackData, prefix="gfp"):
    """Pay for a gift by a Telegram method ("stars" | "card")."""

    id: int
    m: str


class ShareCB(CallbackData, prefix="sh"):
    """The learner's personal affiliate link for a course."""

    id: int


# The marketplace (bot/handlers/market.py). Every id is re-checked on each press.
class BundleCB(CallbackData, prefix="bd"):
    """A bundle's page (bot/handlers/bundles.py); off=1: its creator unpublishes it."""

    id: int
    off: int = 0


class ModerateCB(CallbackData, prefix="rmod"):
    """A platform owner's decision on a reported review: a=1 hide, a=0 keep."""

    r: int
    a: int


class RateCB(CallbackData, prefix="rt"):
    c: int  # course
    r: int = 0  # stars; 0: show the choice


class VoteCB(CallbackData, prefix="rv"):
    r: int  # review
    k: int  # 0: helpful, 1: report


class CreatorCB(CallbackData, prefix="cr"):
    id: int


class FollowCB(CallbackData, prefix="fo"):
    id: int  # creator
    on: int  # 1: follow, 0: unfollow


class RatedPageCB(CallbackData, prefix="rp"):
    page: int


def packed(factory: type[CallbackData], **values: int) -> str:
    """`factory(**values).pack()` for factories of integer fields, without the model.

    Building and validating a CallbackData model only to turn it into a string costs
    more than the rest of a catalog button; the format is aiogram's (prefix, then each
    field in declaration order, joined by the separator), checked against pack() in
    tests/unit/test_callbacks.py.
    """
    parts = [factory.__prefix__]
    parts += [str(int(values[name])) for name in factory.model_fields]
    data = factory.__separator__.join(parts)
    if len(data.encode()) > 64:
        raise ValueError(f"callback data is longer than 64 bytes: {data!r}")
    return data


class StatsAction(StrEnum):
    VIEW = "v"
    SCOPES = "sc"  # pick a course or a plan
    MONTHS = "mo"  # pick a calendar month
    RISK = "risk"  # list the learners at risk
    NUDGE = "nudge"  # send them a gentle nudge
    # Handled by the charts and exports feature (bot/handlers/exports.py).
    CHART = "chart"
    CSV = "csv"


class StatsCB(CallbackData, prefix="st"):
    """One dashboard button: what to do, for which creator, period and scope.

    period: "7" | "30" | "90" | "all" | "m<YYYY>-<MM>"; scope: "a" | "c<id>" | "p<id>".
    Everything is re-checked on each press: the creator against the presser's rights, the
    scope against the creator's products. At most ~45 bytes packed."""

    a: StatsAction
    c: int
    p: str
    s: str


# Promoted listings (bot/handlers/promote.py).
class PromoteAction(StrEnum):
    PAUSE = "p"
    RESUME = "r"
    WITHDRAW = "w"  # all of the campaign's unused budget


class PromoteCB(CallbackData, prefix="pm"):
    """A creator's campaign button; the campaign is re-checked against the presser."""

    a: PromoteAction
    id: int


class SponsoredCB(CallbackData, prefix="sp"):
    """A sponsored slot: the token of its impression (bot.marketplace.promotions), which
    the server looks up; a click is charged only against a real one of this learner."""

    t: str


class EraseCB(CallbackData, prefix="er"):
    """/deleteme's answer. `u`: whose data; `at`: when the question was asked (Unix
    seconds); `s`: bot.services.privacy.confirmation_stamp then; `ok`: erase or keep."""

    u: int
    at: int
    s: str
    ok: bool
