"""Where a card view (and so a buyer) came from.

Sources travel as a short code in the /start payload (`c_<id>_<code>`) and as a small
integer in callback data (CourseCB.src), both far below Telegram's limits.
"""

from __future__ import annotations

from enum import StrEnum


class Source(StrEnum):
    DEEP_LINK = "link"  # t.me/<bot>?start=c_<id>
    REFERRAL = "ref"  # a learner's referral link r_<code>[_c<id>]
    SEARCH = "search"
    RECOMMEND = "rec"  # /foryou, "similar courses", suggestions after onboarding
    INLINE = "inline"  # shared with @bot in another chat
    BROADCAST = "bcast"  # a link in a creator's broadcast
    CATALOG = "catalog"
    DIRECT = "direct"  # typed /course <id>, or no card view within 30 days
    # Last, so the numbers callback data already carries keep their meaning.
    AFFILIATE = "aff"  # an affiliate's link a_<code> that earned a commission
    GIFT = "gift"  # bought as a gift (bot.growth.gifts)
    # A promoted course's sponsored slot (bot.marketplace.sponsored); 8 characters at
    # most, like every stored source.
    SPONSORED = "sponsor"


ORDER: tuple[Source, ...] = tuple(Source)

# Callback data carries an integer; 0 is "not said" (older buttons) and reads as catalog.
_CODES: dict[int, Source] = {i + 1: s for i, s in enumerate(ORDER)}
_NUMBERS: dict[Source, int] = {s: i for i, s in _CODES.items()}

# One letter after c_<id>_ in a deep link.
_LINK_SUFFIX: dict[str, Source] = {
    "i": Source.INLINE,
    "b": Source.BROADCAST,
    "r": Source.REFERRAL,
    "s": Source.SEARCH,
}
LINK_LETTER: dict[Source, str] = {s: k for k, s in _LINK_SUFFIX.items()}

ATTRIBUTION_DAYS = 30


def number(source: Source) -> int:
    return _NUMBERS[source]


def from_number(value: int, default: Source = Source.CATALOG) -> Source:
    return _CODES.get(value, default)


def parse(value: str | None) -> Source:
    """A stored code back to a Source; anything unknown is DIRECT."""
    try:
        return Source(value or Source.DIRECT)
    except ValueError:
        return Source.DIRECT


def from_link_suffix(suffix: str) -> Source:
    return _LINK_SUFFIX.get(suffix, Source.DEEP_LINK)


def deep_link_payload(course_id: int, source: Source = Source.DEEP_LINK) -> str:
    letter = LINK_LETTER.get(source)
    return f"c_{course_id}_{letter}" if letter else f"c_{course_id}"
