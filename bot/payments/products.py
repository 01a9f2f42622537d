"""What can be bought: courses and plans, seen through one shape."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.marketplace import bundles
from bot.models import (
    Bundle,
    Course,
    Order,
    PaymentMethod,
    Plan,
    ProductKind,
    Question,
    QuestionStatus,
)
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
    if kind == ProductKind.BUNDLE:
        return await _load_bundle(session, product_id)
    if kind == ProductKind.QUESTION:
        return await _question_product(session, product_id)
    return None


async def _load_bundle(session: AsyncSession, bundle_id: int) -> Product | None:
    bundle = await session.get(Bundle, bundle_id)
    if bundle is None:
        return None
    courses = await bundles.members(session, bundle.id)
    return Product(
        kind=ProductKind.BUNDLE,
        id=bundle.id,
        creator_id=bundle.creator_id,
        title=bundle.title,
        description=" · ".join(c.title for c in courses),
        price_minor=bundle.price_minor,
        currency=bundle.currency.upper(),
        stars_price=bundle.stars_price,
        accepts_stars=bundle.stars_price > 0,
        accepts_card=bundle.price_minor > 0,
        published=bundles.on_sale(bundle, courses),
        period_days=None,
    )


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


async def for_buyer(
    session: AsyncSession, user_id: int, product: Product, now: datetime
) -> Product | None:
    """The product at the price this learner pays. Only a bundle's depends on the learner
    (bot.marketplace.bundles.reduced_price); None: a bundle not worth buying for them."""
    if product.kind != ProductKind.BUNDLE:
        return product
    courses = await bundles.members(session, product.id)
    owned = [
        await access.has_access(session, user_id, ProductKind.COURSE, c.id, now) for c in courses
    ]
    stars = card = None
    if product.stars_price > 0:
        lists = [bundles.stars_list(c) for c in courses]
        stars = bundles.reduced_price(product.stars_price, lists, owned)
    if product.price_minor > 0:
        lists = [bundles.card_list(c, product.currency) for c in courses]
        card = bundles.reduced_price(product.price_minor, lists, owned)
    if stars is None and card is None:
        return None
    return replace(
        product,
        stars_price=stars or 0,
        price_minor=card or 0,
        accepts_stars=stars is not None,
        accepts_card=card is not None,
    )


async def grant_order(session: AsyncSession, order: Order, product: Product, now: datetime) -> None:
    """Access for a paid order. A bundle grants each of its courses the buyer does not
    already have, each naming this order: its refund takes back exactly those."""
    if order.product_kind != ProductKind.BUNDLE:
        await access.grant(
            session,
            order.user_id,
            order.product_kind,
            order.product_id,
            days=product.period_days,
            now=now,
            source_order_id=order.id,
        )
        return
    for course in await bundles.members(session, order.product_id):
        if not await access.has_access(session, order.user_id, ProductKind.COURSE, course.id, now):
            await access.grant(
                session,
                order.user_id,
                ProductKind.COURSE,
                course.id,
                days=None,
                now=now,
                source_order_id=order.id,
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
    if kind == ProductKind.BUNDLE:
        # Owned when every course in it is, however each was bought.
        courses = await bundles.members(session, product_id)
        return bool(courses) and all(
            [
                await access.has_access(session, user_id, ProductKind.COURSE, c.id, now)
                for c in courses
            ]
        )
    if kind == ProductKind.QUESTION:
        return False  # paid once per question; the order's state guards a second payment
    if not await access.has_access(session, user_id, kind, product_id, now):
        return False
    if kind != ProductKind.PLAN:
        return True
    plan = await session.get(Plan, product_id)
    return plan is None or plan.period_days is None
