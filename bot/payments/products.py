"""What can be bought: courses and plans, seen through one shape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.models import Course, PaymentMethod, Plan, ProductKind, Question, QuestionStatus
from bot.money import STARS
from bot.services import access


@dataclass(frozen=True, slots=True)
class Product:
    kind: str
    id: int
    creator_id: int
    title: str
    description: str
    price_minor: int
    currency: str
    stars_price: int
    accepts_stars: bool
    accepts_card: bool
    published: bool
    # None: lifetime access.
    period_days: int | None

    @property
    def is_free(self) -> bool:
        return self.price_minor <= 0 and self.stars_price <= 0

    def list_price(self, method: str) -> tuple[str, int]:
        """(currency, amount in minor units) for a payment method."""
        if method == PaymentMethod.STARS:
            return STARS, self.stars_price
        return self.currency.upper(), self.price_minor


async def load_product(session: AsyncSession, kind: str, product_id: int) -> Product | None:
    if kind == ProductKind.COURSE:
        course = await session.get(Course, product_id)
        if course is None:
            return None
        return Product(
            kind=ProductKind.COURSE,
            id=course.id,
            creator_id=course.creator_id,
            title=course.title,
            description=course.description,
            price_minor=course.price_minor,
            currency=course.currency.upper(),
            stars_price=course.stars_price,
            accepts_stars=course.accepts_stars,
            accepts_card=course.accepts_card,
            published=course.published,
            period_days=None,
        )
    if kind == ProductKind.PLAN:
        plan = await session.get(Plan, product_id)
        if plan is None:
            return None
        return Product(
            kind=ProductKind.PLAN,
            id=plan.id,
            creator_id=plan.creator_id,
            title=plan.title,
            description=plan.description,
            price_minor=plan.price_minor,
            currency=plan.currency.upper(),
            stars_price=plan.stars_price,
            accepts_stars=plan.accepts_stars,
            accepts_card=plan.accepts_card,
            published=plan.published,
            period_days=plan.period_days,
        )
    if kind == ProductKind.QUESTION:
        return await _question_product(session, product_id)
    return None


async def _question_product(session: AsyncSession, question_id: int) -> Product | None:
    """A priced question: on sale (payable) only while it waits for its payment."""
    question = await session.get(Question, question_id)
    course = await session.get(Course, question.course_id) if question else None
    if question is None or course is None:
        return None
    return Product(
        kind=ProductKind.QUESTION,
        id=question.id,
        creator_id=question.creator_id,
        title=course.title,
        description="",
        price_minor=0,
        currency=STARS,
        stars_price=question.stars,
        accepts_stars=True,
        accepts_card=False,
        published=question.status == QuestionStatus.AWAITING_PAYMENT,
        period_days=None,
    )


def available_methods(product: Product, settings: Settings) -> list[str]:
    """How this product can be paid here: the creator's choice ∩ the configuration."""
    methods: list[str] = []
    if settings.payments_stars_enabled and product.accepts_stars and product.stars_price > 0:
        methods.append(PaymentMethod.STARS)
    if product.accepts_card and product.price_minor > 0:
        if settings.provider_token:
            methods.append(PaymentMethod.CARD)
        if settings.stripe_key:
            methods.append(PaymentMethod.WEB)
    return methods


async def already_owned(
    session: AsyncSession, user_id: int, kind: str, product_id: int, now: datetime
) -> bool:
    """Owned for good, so buying again would be a mistake.

    A plan with a period may be bought again while it is active: that is a renewal, and
    access.grant extends it from the current expiry. Courses and lifetime plans may not.
    """
    if kind == ProductKind.QUESTION:
        return False  # paid once per question; the order's state guards a second payment
    if not await access.has_access(session, user_id, kind, product_id, now):
        return False
    if kind != ProductKind.PLAN:
        return True
    plan = await session.get(Plan, product_id)
    return plan is None or plan.period_days is None
