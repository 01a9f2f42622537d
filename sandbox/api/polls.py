"""Polls and quizzes: sendPoll (regular or quiz), stopPoll, and what happens when a person
votes — the message's counts change, a non-anonymous poll sends ``poll_answer`` and every
change of a poll the bot sent sends ``poll`` (the new state), as Telegram does."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.api.messages import MessagesApi
from sandbox.core import bad
from sandbox.formatting import utf16_len
from sandbox.state import ChatState, StoredMessage, UserState, new_id

QUESTION_LIMIT = 300
OPTION_LIMIT = 100
EXPLANATION_LIMIT = 200
MAX_OPTIONS = 12


class VoteError(Exception):
    """Why a person cannot vote (the control API's 409/400)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class PollState:
    id: str
    question: str
    options: list[str]
    persistent_ids: list[str]
    type: str = "regular"
    is_anonymous: bool = True
    allows_multiple_answers: bool = False
    allows_revoting: bool = True
    correct_option_ids: list[int] = field(default_factory=list)
    explanation: str | None = None
    is_closed: bool = False
    # Who chose what (user id -> option ids); counts are derived from it.
    votes: dict[int, list[int]] = field(default_factory=dict)
    sent_by_bot: bool = True

    def counts(self) -> list[int]:
        counts = [0] * len(self.options)
        for chosen in self.votes.values():
            for i in chosen:
                counts[i] += 1
        return counts

    def to_tg(self, with_answer: bool) -> dict[str, Any]:
        """The Poll object; the right answer only where Telegram shows it to the bot."""
        counts = self.counts()
        out: dict[str, Any] = {
            "id": self.id,
            "question": self.question,
            "options": [
                {"persistent_id": pid, "text": text, "voter_count": n}
                for pid, text, n in zip(self.persistent_ids, self.options, counts, strict=True)
            ],
            "total_voter_count": len(self.votes),
            "is_closed": self.is_closed,
            "is_anonymous": self.is_anonymous,
            "type": self.type,
            "allows_multiple_answers": self.allows_multiple_answers,
            "allows_revoting": self.allows_revoting,
            "members_only": False,
        }
        if self.type == "quiz" and (with_answer or self.is_closed):
            out["correct_option_ids"] = list(self.correct_option_ids)
            if self.explanation:
                out["explanation"] = self.explanation
        return out


def _options(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_OPTIONS:
        raise bad(f"poll must have 1-{MAX_OPTIONS} options")
    texts = [str(o.get("text", "")) if isinstance(o, dict) else str(o) for o in raw]
    for text in texts:
        if not text.strip():
            raise bad("poll options must be non-empty")
        if utf16_len(text) > OPTION_LIMIT:
            raise bad(f"poll options length must not exceed {OPTION_LIMIT}")
    return texts


def _correct_ids(raw: Any, n_options: int, multiple: bool) -> list[int]:
    if not raw:
        raise bad("quiz polls need correct_option_ids")
    ids = [int(i) for i in raw]
    if any(not 0 <= i < n_options for i in ids) or ids != sorted(set(ids)):
        raise bad("wrong correct option ids specified")
    if len(ids) > 1 and not multiple:
        raise bad("a quiz with one answer has exactly one correct option")
    return ids


class PollsApi(MessagesApi):
    def reset(self) -> None:
        super().reset()
        self.polls: dict[str, PollState] = {}

    def new_poll(self, p: dict[str, Any], sent_by_bot: bool = True) -> PollState:
        """A poll from sendPoll's parameters (or a person's, made in the app)."""
        question = str(p.get("question") or "")
        if not question.strip():
            raise bad("poll question must be non-empty")
        if utf16_len(question) > QUESTION_LIMIT:
            raise bad(f"poll question length must not exceed {QUESTION_LIMIT}")
        options = _options(p.get("options"))
        kind = p.get("type") or "regular"
        if kind not in ("regular", "quiz"):
            raise bad("poll type is invalid")
        multiple = bool(p.get("allows_multiple_answers"))
        poll = PollState(
            id=new_id("", 9).lower(),
            question=question,
            options=options,
            persistent_ids=[str(i) for i in range(len(options))],
            type=kind,
            is_anonymous=p.get("is_anonymous", True) is not False,
            allows_multiple_answers=multiple,
            # Quizzes cannot be re-voted unless asked; regular polls can.
            allows_revoting=bool(p.get("allows_revoting", kind == "regular")),
            is_closed=bool(p.get("is_closed")),
            sent_by_bot=sent_by_bot,
        )
        if kind == "quiz":
            poll.correct_option_ids = _correct_ids(
                p.get("correct_option_ids"), len(options), multiple
            )
            explanation = p.get("explanation")
            if explanation:
                if utf16_len(explanation) > EXPLANATION_LIMIT:
                    raise bad(f"explanation length must not exceed {EXPLANATION_LIMIT}")
                poll.explanation = str(explanation)
        elif p.get("correct_option_ids") or p.get("explanation"):
            raise bad("correct options and explanations are for quizzes only")
        self.polls[poll.id] = poll
        return poll

    async def api_sendPoll(self, p: dict[str, Any]) -> Any:
        chat = self.writable_chat(p["chat_id"])
        if chat.type == "channel" and p.get("is_anonymous") is False:
            raise bad("non-anonymous polls can't be sent to channel chats")
        poll = self.new_poll(p)
        msg = self.bot_sends(p, {"poll": poll.to_tg(with_answer=True)}, chat,
                             meta={"poll_id": poll.id})  # fmt: skip
        return msg

    async def api_stopPoll(self, p: dict[str, Any]) -> Any:
        chat = self.chat(p["chat_id"])
        msg = self.message(chat, p["message_id"])
        poll = self.poll_of(msg)
        if msg is None or poll is None or not msg.outgoing:
            raise bad("message with poll to stop not found")
        if poll.is_closed:
            raise bad("poll has already been closed")
        poll.is_closed = True
        markup = p.get("reply_markup")
        if markup:
            msg.tg["reply_markup"] = self.check_inline_markup(markup)
        else:
            msg.tg.pop("reply_markup", None)
        self.refresh_poll(msg, poll)
        return poll.to_tg(with_answer=True)

    # --- the people's side -------------------------------------------------------------------

    def poll_of(self, msg: StoredMessage | None) -> PollState | None:
        if msg is None:
            return None
        poll_id = msg.meta.get("poll_id")
        return self.polls.get(poll_id) if poll_id else None

    def refresh_poll(self, msg: StoredMessage, poll: PollState) -> None:
        """The message shows the new counts; the bot hears the new state of its own polls."""
        msg.tg["poll"] = poll.to_tg(with_answer=msg.outgoing or msg.tg["chat"]["type"] == "private")
        msg.seq = self.bump()
        if poll.sent_by_bot:
            self.push_update("poll", poll.to_tg(with_answer=True))

    def vote(
        self, user: UserState, chat: ChatState, message_id: int, option_ids: list[int]
    ) -> dict[str, Any]:
        """A person chooses options (an empty list takes the vote back)."""
        msg = self.message(chat, message_id)
        poll = self.poll_of(msg)
        if msg is None or poll is None:
            raise VoteError(404, "no poll in that message")
        if poll.is_closed:
            raise VoteError(409, "the poll is closed")
        if any(not 0 <= i < len(poll.options) for i in option_ids):
            raise VoteError(400, "no such option")
        if len(set(option_ids)) > 1 and not poll.allows_multiple_answers:
            raise VoteError(400, "this poll takes one answer")
        before = poll.votes.get(user.id)
        if before is not None and not poll.allows_revoting:
            raise VoteError(409, "already answered; this poll can't be re-voted")
        if not option_ids and before is None:
            raise VoteError(400, "choose an option")
        chosen = sorted(set(option_ids))
        if chosen:
            poll.votes[user.id] = chosen
        else:
            poll.votes.pop(user.id, None)
        self.refresh_poll(msg, poll)
        if not poll.is_anonymous:
            self.push_update(
                "poll_answer",
                {
                    "poll_id": poll.id,
                    "user": user.to_tg(),
                    "option_ids": chosen,
                    "option_persistent_ids": [poll.persistent_ids[i] for i in chosen],
                },
            )
        out: dict[str, Any] = {"poll": msg.tg["poll"]}
        if poll.type == "quiz" and chosen:
            # What the app shows right after the tap: right or wrong, and the explanation.
            out["correct"] = chosen == poll.correct_option_ids
            out["correct_option_ids"] = list(poll.correct_option_ids)
            if poll.explanation:
                out["explanation"] = poll.explanation
        return out
