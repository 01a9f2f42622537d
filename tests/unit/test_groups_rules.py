"""Paid groups' pure rules: what blocks linking, how /plan arguments parse."""

from __future__ import annotations

from bot.services.groups import MemberView, Missing, missing_rights, parse_plan_spec


def admin(invite: bool = True, restrict: bool = True) -> MemberView:
    return MemberView("administrator", can_invite_users=invite, can_restrict_members=restrict)


def test_linking_needs_an_admin_caller_and_both_bot_rights() -> None:
    assert missing_rights(MemberView("creator"), admin()) == []
    assert missing_rights(MemberView("administrator"), admin()) == []
    assert missing_rights(MemberView("member"), admin()) == [Missing.CALLER_NOT_ADMIN]
    assert missing_rights(MemberView("creator"), MemberView("member")) == [Missing.BOT_NOT_ADMIN]
    assert missing_rights(MemberView("creator"), admin(invite=False, restrict=False)) == [
        Missing.CAN_INVITE,
        Missing.CAN_RESTRICT,
    ]
    assert missing_rights(MemberView("left"), admin(restrict=False)) == [
        Missing.CALLER_NOT_ADMIN,
        Missing.CAN_RESTRICT,
    ]


def test_plan_spec_parses_terms_and_rejects_nonsense() -> None:
    spec = parse_plan_spec("Inner circle stars=500 days=90 trial=7 sub=no publish=yes chat=-100123")
    assert spec is not None
    assert (spec.title, spec.stars, spec.days, spec.trial) == ("Inner circle", 500, 90, 7)
    assert spec.subscription is False and spec.publish is True and spec.chats == [-100123]
    life = parse_plan_spec("Forever days=life price=9.99:eur")
    assert life is not None and life.lifetime and life.price_minor == 999 and life.currency == "EUR"
    assert parse_plan_spec("x days=0") is None
    assert parse_plan_spec("x stars=-1") is None
    assert parse_plan_spec("x days=soon") is None
    assert parse_plan_spec("x colour=red") is None
    empty = parse_plan_spec("")
    assert empty is not None and empty.title is None
