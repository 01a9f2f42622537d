"""Stars reconciliation finds every kind of gap between Telegram and our books."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.models import Payment
from bot.payments.gateways import StarTxn
from bot.payments.reconcile import compare, fetch_all


def txn(charge: str, amount: int, direction: str = "in") -> StarTxn:
    return StarTxn(charge, amount, 0, direction, 1001, "ref" if direction == "in" else None)


def pay(charge: str, amount: int, refunded: bool = False) -> Payment:
    return Payment(
        telegram_payment_charge_id=charge,
        amount_minor=amount,
        refunded_at=datetime.now(UTC) if refunded else None,
    )


def test_agreeing_books_are_ok() -> None:
    report = compare(
        [txn("a", 5), txn("b", 7), txn("b", 7, "out")], [pay("a", 5), pay("b", 7, True)]
    )
    assert report.ok and report.remote_payments == 2 and report.local_payments == 2
    assert report.lines()[-1] == "OK: no gaps"


def test_every_gap_is_reported() -> None:
    remote = [txn("lost", 5), txn("amt", 9), txn("ref-remote", 3), txn("ref-remote", 3, "out"),
              txn("ref-local", 4)]  # fmt: skip
    local = [pay("amt", 8), pay("ref-remote", 3), pay("ref-local", 4, True), pay("ghost", 2)]
    report = compare(remote, local)
    assert [t.id for t in report.missing_locally] == ["lost"]
    assert report.missing_remotely == ["ghost"]
    assert report.amount_mismatch == [("amt", 9, 8)]
    assert report.refunded_only_remotely == ["ref-remote"]
    assert report.refunded_only_locally == ["ref-local"]
    assert not report.ok and "GAPS FOUND" in report.lines()


async def test_fetch_all_pages() -> None:
    class Fake:
        def __init__(self) -> None:
            self.txns = [txn(str(i), 1) for i in range(250)]

        async def refund_star_payment(self, user_id: int, charge: str) -> None:
            raise AssertionError

        async def star_transactions(self, offset: int, limit: int) -> list[StarTxn]:
            return self.txns[offset : offset + limit]

    assert len(await fetch_all(Fake())) == 250


def test_a_refund_with_its_own_id_is_matched_by_user_payload_and_amount() -> None:
    refund = StarTxn("rf-1", 7, 0, "out", 1001, "ref")
    report = compare([txn("b", 7), refund], [pay("b", 7, True)])
    assert report.ok


def test_a_telegram_affiliate_cut_explains_the_difference() -> None:
    cut = StarTxn("a", 90, 0, "in", 1001, "ref", affiliate_amount=10, affiliate_per_mille=100)
    refund = StarTxn("rf-a", 90, 0, "out", 1001, "ref", affiliate_amount=-10)
    earned = StarTxn("p", 3, 0, "in", None, None, partner="affiliate_program")
    report = compare([cut, refund, earned], [pay("a", 100, refunded=True)])
    assert report.ok, report.lines()
    assert report.telegram_affiliate == [("a", 10, 100)]
    assert report.affiliate_income == [("p", 3)]
    # A cut that does not add up is still a mismatch.
    off = StarTxn("b", 80, 0, "in", 1001, "ref2", affiliate_amount=10, affiliate_per_mille=100)
    assert compare([off], [pay("b", 100)]).amount_mismatch == [("b", 80, 100)]
