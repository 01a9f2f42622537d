"""A refund takes the course back and with it the certificate: the refund path of
bot/payments/refunds.py revokes access, whose hook revokes the certificate, in the same
transaction; `start=v_<serial>` then says revoked. Money stays booked either way."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Certificate, Enrollment, utcnow
from bot.services import certificates
from tests.integration.test_payments_admin import ANN, MAYA, paid_stars_order
from tests.support.payments import make_course
from tests.support.updates import Harness, tg_user

BO = tg_user(1002, "Bo")


pytestmark = pytest.mark.payments  # conftest's settings and app: pay_settings, invoices


async def test_a_refund_revokes_the_certificate(harness: Harness, db: AsyncSession) -> None:
    _, course_id = await make_course(db)
    ref = await paid_stars_order(harness, course_id)
    enrollment = await db.scalar(select(Enrollment).where(Enrollment.user_id == ANN.id))
    assert enrollment is not None
    cert = await certificates.issue(db, enrollment, utcnow())
    assert cert is not None
    serial = cert.serial
    await db.commit()
    await db.close()
    await harness.send(f"/start v_{serial}", BO)
    assert "is valid" in harness.last_text()

    await harness.send(f"/refund {ref}", MAYA)
    cert = await db.scalar(select(Certificate))
    assert cert is not None and cert.revoked_at is not None
    await db.close()
    await harness.send(f"/start v_{serial}", BO)
    assert f"Certificate {serial} was revoked" in harness.last_text()
    # Lower case, a space: still the same serial, still revoked.
    await harness.send(f"/start v_{serial.lower()}", BO)
    assert "was revoked" in harness.last_text()
