"""Every chat command in one table: /help, /creatorhelp and Telegram's command menu are
drawn from it, and a test holds it equal to the commands the routers register, so a
command cannot be added without its help line (nor a help line outlive its command).

Usage strings are plain text ("<course id>"): they are escaped where they are shown,
since Telegram refuses an HTML message with a bare "<".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from html import escape

from aiogram.types import BotCommand
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __
from babel.support import LazyProxy

from bot.handlers.common import TELEGRAM_TEXT_LIMIT

Text = str | LazyProxy


class Audience(StrEnum):
    LEARNER = "learner"
    CREATOR = "creator"
    # Platform owners (ADMIN_IDS): what they can do beyond a creator.
    OWNER = "owner"


@dataclass(frozen=True, slots=True)
class Group:
    title: Text


@dataclass(frozen=True, slots=True)
class CommandHelp:
    name: str
    audience: Audience
    group: Group
    usage: Text  # the arguments, plain text
    about: Text
    # The label in Telegram's command menu; None: not in the menu.
    menu: Text | None = None


DISCOVER = Group(__("Find a course"))
LEARNING = Group(__("Your learning"))
SUPPORT = Group(__("Help and support"))
COURSES = Group(__("Courses"))
LESSONS = Group(__("Lessons"))
SALES = Group(__("Sales and promo codes"))
PAID_GROUPS = Group(__("Paid groups and plans"))
GENERAL = Group(__("General"))
PLATFORM = Group(__("Platform owners"))

LEARNER, CREATOR, OWNER = Audience.LEARNER, Audience.CREATOR, Audience.OWNER

# One line per form of a command; the order here is the order in the help.
COMMANDS: tuple[CommandHelp, ...] = (
    CommandHelp("start", LEARNER, DISCOVER, "", __("main menu"), __("Main menu")),
    CommandHelp("catalog", LEARNER, DISCOVER, "", __("browse all courses"), __("Browse courses")),
    CommandHelp(
        "search",
        LEARNER,
        DISCOVER,
        __("<words>"),
        __("find a course (or just type the words)"),
        __("Find a course"),
    ),
    CommandHelp("course", LEARNER, DISCOVER, __("<course number>"), __("open a course's card")),
    CommandHelp(
        "foryou",
        LEARNER,
        DISCOVER,
        "",
        __("courses recommended for you"),
        __("Recommended for you"),
    ),
    CommandHelp(
        "plans",
        LEARNER,
        DISCOVER,
        "",
        __("paid groups and channels"),
        __("Paid groups and channels"),
    ),
    CommandHelp("creators", LEARNER, DISCOVER, "", __("creators for you"), __("Creators for you")),
    CommandHelp("creator", LEARNER, DISCOVER, __("<creator number>"), __("a creator's page")),
    CommandHelp(
        "review",
        LEARNER,
        LEARNING,
        __("<course number> [1-5] [text]"),
        __("rate a course you bought (a day after buying); again to edit"),
    ),
    CommandHelp("my", LEARNER, LEARNING, "", __("your library and progress"), __("My library")),
    CommandHelp("subscriptions", LEARNER, LEARNING, "", __("your plans; cancel a renewal")),
    CommandHelp("quiet", LEARNER, LEARNING, "22:00-08:00 | off", __("hours without lessons")),
    CommandHelp(
        "timezone", LEARNER, LEARNING, __("<area/city>"), __("your time zone, e.g. Europe/Berlin")
    ),
    CommandHelp("help", LEARNER, SUPPORT, "", __("this message"), __("Help")),
    CommandHelp(
        "paysupport",
        LEARNER,
        SUPPORT,
        "",
        __("help with a payment or a refund"),
        __("Payment support"),
    ),
    CommandHelp("terms", LEARNER, SUPPORT, "", __("terms of sale")),
    CommandHelp("mydata", LEARNER, SUPPORT, "", __("everything we hold about you, as a file")),
    CommandHelp("deleteme", LEARNER, SUPPORT, "", __("erase your data (asks first; access ends)")),
    CommandHelp(
        "becomecreator", LEARNER, SUPPORT, "", __("sell your own courses (then /creatorhelp)")
    ),
    CommandHelp(
        "share",
        LEARNER,
        LEARNING,
        __("<course number> | plan=<id>"),
        __("your personal link to a course or a plan"),
    ),
    CommandHelp("earnings", LEARNER, LEARNING, "", __("what your shared links earned")),
    CommandHelp(
        "certificate",
        LEARNER,
        LEARNING,
        __("[<course number>]"),
        __("your certificates of finished courses"),
    ),
    CommandHelp(
        "challenge", LEARNER, LEARNING, "", __("check-in challenges you can join or are in")
    ),
    CommandHelp(
        "challenge",
        LEARNER,
        LEARNING,
        __("top <challenge number>"),
        __("the leaderboard: top 10 and your place"),
    ),
    CommandHelp(
        "checkin",
        LEARNER,
        LEARNING,
        __("[<challenge number>]"),
        __("check in for today: then send a text or a photo"),
    ),
    CommandHelp(
        "checkin",
        LEARNER,
        LEARNING,
        __("time 20:00 | time off"),
        __("when the daily check-in reminder comes (your time)"),
    ),
    CommandHelp(
        "partner",
        LEARNER,
        LEARNING,
        __("<course number> | off <course number>"),
        __("find a study partner at your pace (names shown once you both accept)"),
    ),
    CommandHelp(
        "ask",
        LEARNER,
        LEARNING,
        __("<course number>"),
        __("ask the course's creator (then send the question: text, photo, voice…)"),
    ),
    CommandHelp("newcourse", CREATOR, COURSES, "", __("create a course step by step")),
    CommandHelp("courses", CREATOR, COURSES, "", __("your courses")),
    CommandHelp(
        "editcourse",
        CREATOR,
        COURSES,
        __("<id> <field> <value>"),
        __("field: title, description, tags, language, price, stars"),
    ),
    CommandHelp(
        "publish", CREATOR, COURSES, __("<id>"), __("put a course on sale (once it has a lesson)")
    ),
    CommandHelp("unpublish", CREATOR, COURSES, __("<id>"), __("take a course off sale")),
    CommandHelp(
        "protect", CREATOR, COURSES, __("<id> on|off"), __("forbid forwarding and saving lessons")
    ),
    CommandHelp(
        "preview", CREATOR, COURSES, __("<id> <day>"), __("what a learner has on that day")
    ),
    CommandHelp(
        "broadcast",
        CREATOR,
        COURSES,
        __("[<course id> | plan=<id>]"),
        __("message a segment of your learners: pick it, send anything, confirm"),
    ),
    CommandHelp(
        "addlesson",
        CREATOR,
        LESSONS,
        __("<course id>"),
        __("then send the lesson: text, photo, video, document or voice"),
    ),
    CommandHelp(
        "addquiz",
        CREATOR,
        LESSONS,
        __("<course id>"),
        __("add a quiz lesson: type the questions or forward Telegram quizzes"),
    ),
    CommandHelp(
        "quizpass",
        CREATOR,
        LESSONS,
        __("<lesson id> <percent>|off [retry=<hours>]"),
        __("a pass mark that gates the next lesson"),
    ),
    CommandHelp(
        "quizstats", CREATOR, LESSONS, __("<course id>"), __("pass rates per quiz and question")
    ),
    CommandHelp(
        "lessons", CREATOR, LESSONS, __("<course id>"), __("lessons and their release rules")
    ),
    CommandHelp(
        "release",
        CREATOR,
        LESSONS,
        __("<lesson id> days <N> | at <YYYY-MM-DD HH:MM> | after"),
        __("when a lesson arrives"),
    ),
    CommandHelp("movelesson", CREATOR, LESSONS, __("<lesson id> up|down"), __("change the order")),
    CommandHelp(
        "editlesson", CREATOR, LESSONS, __("<lesson id>"), __("replace a lesson's content")
    ),
    CommandHelp("dellesson", CREATOR, LESSONS, __("<lesson id>"), __("delete a lesson")),
    CommandHelp("sales", CREATOR, SALES, "", __("your sales: gross, fee and net per currency")),
    CommandHelp(
        "stats",
        CREATOR,
        SALES,
        __("[7 | 30 | 90 | all | YYYY-MM]"),
        __("your numbers: money, funnel, sources, plans, lessons"),
    ),
    CommandHelp(
        "export",
        CREATOR,
        SALES,
        __("sales|learners|funnel [30d | YYYY-MM | all] [course=<id> | plan=<id>]"),
        __("your numbers as a CSV file"),
    ),
    CommandHelp(
        "chart",
        CREATOR,
        SALES,
        __("[7d | 30d | 90d | YYYY-MM | all] [course=<id> | plan=<id>]"),
        __("revenue per day and the funnel as a picture"),
    ),
    CommandHelp(
        "refund",
        CREATOR,
        SALES,
        __("<order reference | payment id>"),
        __("refund a payment; its access ends"),
    ),
    CommandHelp(
        "coupon",
        CREATOR,
        SALES,
        __("add <CODE> <20% | 5.00USD | 50XTR> [course=<id> | plan=<id>] [uses=<N>] [days=<N>]"),
        __("create a promo code"),
    ),
    CommandHelp("coupon", CREATOR, SALES, "list", __("your promo codes")),
    CommandHelp("coupon", CREATOR, SALES, __("off <CODE>"), __("stop a promo code")),
    CommandHelp(
        "affiliate",
        CREATOR,
        SALES,
        __("<percent> [hold=<days>] [min=<amount>] [course=<id> | plan=<id>]"),
        __("pay affiliates a share of the sales they bring"),
    ),
    CommandHelp("affiliate", CREATOR, SALES, __("off [course=<id> | plan=<id>]"), __("stop it")),
    CommandHelp(
        "affiliates", CREATOR, SALES, "", __("clicks, buyers and commissions per affiliate")
    ),
    CommandHelp(
        "payout",
        CREATOR,
        SALES,
        __("<affiliate id | @username> <amount>"),
        __("record a payout to an affiliate"),
    ),
    CommandHelp(
        "promote",
        CREATOR,
        SALES,
        __("<course> <budget> <max bid per click>"),
        __("promote a course in sponsored slots, paid in Stars"),
    ),
    CommandHelp(
        "promote", CREATOR, SALES, "", __("your campaigns: impressions, clicks, spend, purchases")
    ),
    CommandHelp(
        "promote",
        CREATOR,
        SALES,
        __("withdraw <campaign> [amount]"),
        __("unused budget back to your balance"),
    ),
    CommandHelp(
        "remind",
        CREATOR,
        SALES,
        __("coupon <CODE>|off [course=<id> | plan=<id>]"),
        __("the code abandoned-checkout reminders offer"),
    ),
    CommandHelp(
        "linkgroup", CREATOR, PAID_GROUPS, "", __("connect a group or channel to sell access to")
    ),
    CommandHelp("groups", CREATOR, PAID_GROUPS, "", __("your groups, channels and plans")),
    CommandHelp(
        "plan",
        CREATOR,
        PAID_GROUPS,
        __(
            "new <title> stars=<N> days=<N>|life [trial=<N>] [sub=yes] [publish=yes] "
            "chat=<chat id> [course=<id>]"
        ),
        __("create a plan: paid access to your chats"),
    ),
    CommandHelp(
        "plan",
        CREATOR,
        PAID_GROUPS,
        __("<plan id> stars=… days=… trial=… publish=yes|no chat=… course=… winback=<%>"),
        __("change a plan"),
    ),
    CommandHelp("members", CREATOR, PAID_GROUPS, __("<chat id>"), __("who is in, and until when")),
    CommandHelp(
        "extend",
        CREATOR,
        PAID_GROUPS,
        __("<user id> <days> [plan id]"),
        __("give a member more days"),
    ),
    CommandHelp(
        "kick", CREATOR, PAID_GROUPS, __("<user id> [plan id]"), __("end a member's access")
    ),
    CommandHelp(
        "whitelist",
        CREATOR,
        PAID_GROUPS,
        __("<chat id> <user id> [off]"),
        __("keep someone in a chat without a plan"),
    ),
    CommandHelp(
        "audit", CREATOR, PAID_GROUPS, __("<chat id>"), __("who would be removed (a dry run)")
    ),
    CommandHelp(
        "profile",
        CREATOR,
        GENERAL,
        __("bio <text> | photo | photo off"),
        __("your public page: short bio and photo"),
    ),
    CommandHelp(
        "bundle",
        CREATOR,
        SALES,
        __("new <title> <course ids,comma-separated> <price> | off <bundle id>"),
        __("sell several courses as one (alone: your bundles)"),
    ),
    CommandHelp(
        "answer", CREATOR, GENERAL, __("<review id> <text>"), __("answer a review once, publicly")
    ),
    CommandHelp(
        "challenge",
        CREATOR,
        GENERAL,
        __("new <title> days=<N> course=<id> | plan=<id> [group=<chat id>]"),
        __("start a check-in challenge (打卡); the group gets the weekly leaderboard"),
    ),
    CommandHelp(
        "challenge",
        CREATOR,
        GENERAL,
        __("today <challenge id>"),
        __("the day's check-ins, to feature the best"),
    ),
    CommandHelp(
        "nudges",
        CREATOR,
        COURSES,
        __("<course id> on|off"),
        __("the automatic nudge to learners quiet for 7 days (on by default)"),
    ),
    CommandHelp(
        "askprice",
        CREATOR,
        GENERAL,
        __("<course id> <stars>"),
        __("what a question costs in Stars (0: free); unanswered in 72 h, refunded"),
    ),
    CommandHelp("questions", CREATOR, GENERAL, "", __("questions waiting for your answer")),
    CommandHelp("creatorhelp", CREATOR, GENERAL, "", __("this list")),
    CommandHelp("cancel", CREATOR, GENERAL, "", __("stop the current step")),
    CommandHelp(
        "sales", OWNER, PLATFORM, "", __("everyone's sales; /sales <creator id> for one creator")
    ),
    CommandHelp(
        "coupon",
        OWNER,
        PLATFORM,
        __("add <CODE> <value> creator=<creator id>"),
        __("a promo code for any creator"),
    ),
    CommandHelp("stats", OWNER, PLATFORM, __("<creator id> [period]"), __("any creator's numbers")),
    CommandHelp("refund", OWNER, PLATFORM, __("<order reference | payment id>"), __("any payment")),
    CommandHelp(
        "export",
        OWNER,
        PLATFORM,
        __("sales|learners|funnel [period] [creator=<creator id>]"),
        __("any creator's files; without creator=, the whole platform's"),
    ),
    CommandHelp(
        "chart", OWNER, PLATFORM, __("[period] [creator=<creator id>]"), __("any creator's chart")
    ),
    CommandHelp(
        "hidereview", OWNER, PLATFORM, __("<review id> [off]"), __("hide a reported review")
    ),
    CommandHelp("reported", OWNER, PLATFORM, "", __("reported reviews, most reported first")),
    CommandHelp(
        "platform",
        OWNER,
        PLATFORM,
        __("[30d | YYYY-MM | all]"),
        __("GMV and fee income, active creators and learners, top products, payment methods"),
    ),
)


def names() -> set[str]:
    return {c.name for c in COMMANDS}


def usage(name: str) -> str:
    """`/name <i>arguments</i>` of a command's first form, ready for an HTML message."""
    entry = next(c for c in COMMANDS if c.name == name)
    return _line(entry).partition(" — ")[0]


def _line(entry: CommandHelp) -> str:
    args = str(entry.usage)
    head = f"/{entry.name}" + (f" <i>{escape(args, quote=False)}</i>" if args else "")
    return f"{head} — {escape(str(entry.about), quote=False)}"


def _pages(blocks: Iterable[str], limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    # Whole groups per message: a long help never gets cut inside a tag. (UTF-16 units
    # of the HTML source: never fewer than Telegram counts after parsing it.)
    pages: list[str] = []
    for block in blocks:
        joined = f"{pages[-1]}\n\n{block}" if pages else block
        if pages and len(joined.encode("utf-16-le")) // 2 <= limit:
            pages[-1] = joined
        else:
            pages.append(block)
    return pages


def render(audiences: Iterable[Audience], heading: str) -> list[str]:
    """The help for these audiences: a heading, then each group's commands."""
    wanted = set(audiences)
    groups: dict[int, tuple[Group, list[str]]] = {}
    for entry in COMMANDS:
        if entry.audience in wanted:
            groups.setdefault(id(entry.group), (entry.group, []))[1].append(_line(entry))
    blocks = [heading] + [
        f"<b>{escape(str(group.title), quote=False)}</b>\n" + "\n".join(lines)
        for group, lines in groups.values()
    ]
    return _pages(blocks)


def learner_help() -> list[str]:
    return render(
        [Audience.LEARNER],
        _("<b>Lyceum</b> sells courses and paid communities right in this chat."),
    )


def creator_help(owner: bool) -> list[str]:
    audiences = [Audience.CREATOR, Audience.OWNER] if owner else [Audience.CREATOR]
    return render(audiences, _("<b>Creator commands</b>"))


def menu() -> list[BotCommand]:
    """Telegram's command menu (private chats), in the current locale."""
    return [
        BotCommand(command=c.name, description=str(c.menu)) for c in COMMANDS if c.menu is not None
    ]
